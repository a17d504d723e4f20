package tcsync

import (
	"context"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

// BareFetch pages every indicator and group a first sync reads, with the
// same filter, fields and page size, and keeps nothing: the baseline the
// sync's own cost is measured against (issue 12's budget). It needs the
// owner scope resolved without listing owners, i.e. sync.owners ["*"].
func (w *Worker) BareFetch(ctx context.Context) (int, error) {
	owners, err := w.ownerScope()
	if err != nil {
		return 0, err
	}
	f := w.filter(streamState{Window: &window{}}, owners)
	n := 0
	err = w.src.Indicators(ctx, tcapi.Query{TQL: f.IndicatorTQL(), Fields: w.indicatorFields(), PageSize: w.opt.Sync.PageSize},
		func(p []tcapi.Indicator) error { n += len(p); return nil })
	if err != nil {
		return n, err
	}
	err = w.src.Groups(ctx, tcapi.Query{TQL: f.GroupTQL(), Fields: w.groupFields(), PageSize: groupPage(w.opt.Sync.PageSize)},
		func(p []tcapi.Group) error { n += len(p); return nil })
	return n, err
}
