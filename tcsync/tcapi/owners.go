package tcapi

import (
	"context"
	"errors"
	"slices"
	"strings"
)

// AllOwners is the sync.owners value that selects every owner the
// credentials can read.
const AllOwners = "*"

// OwnerScope resolves the configured owner list against the owners the
// credentials can read (GET /v3/security/owners):
//
//   - empty: the account's own organization, as the seed feed says ("If not
//     specified will retrieve only indicators owned by the account") — the
//     visible owner(s) of type Organization (an API user belongs to one);
//   - ["*"]: every readable owner, returned as nil (no ownerName clause);
//   - anything else: the names as given.
//
// It is an error when the list is empty and no Organization owner is
// visible, because syncing "everything" instead would silently widen the scope.
func OwnerScope(configured []string, visible []Owner) ([]string, error) {
	if slices.Contains(configured, AllOwners) {
		return nil, nil
	}
	if len(configured) > 0 {
		return configured, nil
	}
	var own []string
	for _, o := range visible {
		if strings.EqualFold(o.Type, "Organization") {
			own = append(own, o.Name)
		}
	}
	if len(own) == 0 {
		return nil, errors.New("sync.owners is empty, which selects the API user's own organization, but the credentials see no owner of type Organization; name the owners, or use [\"*\"] for every readable owner")
	}
	slices.Sort(own)
	return own, nil
}

// CheckIndicatorTQL asks ThreatConnect for one indicator matching tql, so a
// query it rejects is reported (with its message, through *APIError and
// ErrTQLParse) before a sync starts rather than in the middle of one.
func (c *Client) CheckIndicatorTQL(ctx context.Context, tql string) error {
	return c.Indicators(ctx, Query{TQL: tql, PageSize: 1, Limit: 1, OffsetPaging: true}, func([]Indicator) error { return nil })
}

// CheckGroupTQL is CheckIndicatorTQL for /v3/groups.
func (c *Client) CheckGroupTQL(ctx context.Context, tql string) error {
	return c.Groups(ctx, Query{TQL: tql, PageSize: 1, Limit: 1, OffsetPaging: true}, func([]Group) error { return nil })
}
