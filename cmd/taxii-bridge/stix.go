package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/taxii-bridge/taxii-bridge/config"
	"github.com/taxii-bridge/taxii-bridge/stixmap"
	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

// maxListedErrors caps how many unmappable indicators one error names.
const maxListedErrors = 10

// writeIndicatorBundle writes fetched indicators to w as one STIX 2.1
// bundle for tc-get-indicators -format stix: the marking definitions of the
// configured TLP mode, the bridge identity, one identity per owner, then
// every object the indicators map to (stix-mapping.md §4.1), each once. The
// bundle id is determined by the object ids (stixmap.BundleID), so the same
// indicators give the same bytes. Indicators that cannot be mapped make it
// fail, before anything is written, with an error naming them (nothing is
// dropped silently); Hashtags map to nothing by design.
func writeIndicatorBundle(w io.Writer, cfg *config.Config, inds []tcapi.Indicator) error {
	m, err := newMapper(cfg)
	if err != nil {
		return err
	}
	var objs []stixmap.Object
	seen := map[string]bool{}
	add := func(os ...stixmap.Object) {
		for _, o := range os {
			if !seen[o.ID] {
				seen[o.ID] = true
				objs = append(objs, o)
			}
		}
	}
	add(m.Markings()...)
	add(m.Bridge())
	var errs []error
	failed := 0
	for _, ind := range inds {
		owner, err := m.OwnerByName(ind.OwnerID, ind.OwnerName)
		if err == nil {
			var mapped []stixmap.Object
			if mapped, err = m.Indicator(ind); err == nil {
				add(owner)
				add(mapped...)
				continue
			}
		}
		if failed++; failed <= maxListedErrors {
			errs = append(errs, err)
		}
	}
	if failed > 0 {
		if failed > maxListedErrors {
			errs = append(errs, fmt.Errorf("and %d more", failed-maxListedErrors))
		}
		return fmt.Errorf("%d of %d indicators cannot be mapped to STIX (use -format json to inspect them): %w",
			failed, len(inds), errors.Join(errs...))
	}
	return stixmap.WriteBundle(w, objs)
}
