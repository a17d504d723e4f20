package tcsync

import (
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
	"github.com/taxii-bridge/taxii-bridge/tlp"
)

// exclusions is the compiled sync.exclusions list: values never published.
type exclusions struct {
	values  map[string]bool // lower-cased exact values
	prefix  []netip.Prefix
	domains []string // lower-cased, without a leading dot
}

func newExclusions(e Exclusions) exclusions {
	x := exclusions{values: make(map[string]bool, len(e.Values))}
	for _, v := range e.Values {
		x.values[strings.ToLower(strings.TrimSpace(v))] = true
	}
	for _, c := range e.CIDRs {
		if p, err := netip.ParsePrefix(strings.TrimSpace(c)); err == nil {
			x.prefix = append(x.prefix, p.Masked())
		} else if a, err := netip.ParseAddr(strings.TrimSpace(c)); err == nil {
			x.prefix = append(x.prefix, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	for _, d := range e.Domains {
		x.domains = append(x.domains, strings.Trim(strings.ToLower(strings.TrimSpace(d)), "."))
	}
	return x
}

func (x exclusions) empty() bool {
	return len(x.values) == 0 && len(x.prefix) == 0 && len(x.domains) == 0
}

// excluded reports whether an indicator hits the exclusion list: an exact
// value, an address (or CIDR block) inside an excluded block, or a host, URL
// host or e-mail domain equal to or below an excluded domain.
func (x exclusions) excluded(ind tcapi.Indicator) bool {
	if x.empty() {
		return false
	}
	for _, v := range ind.Values() {
		if x.values[strings.ToLower(strings.TrimSpace(v))] {
			return true
		}
	}
	v := strings.TrimSpace(ind.Value())
	switch ind.Type {
	case tcapi.TypeAddress:
		if a, err := netip.ParseAddr(v); err == nil {
			return x.inPrefix(netip.PrefixFrom(a, a.BitLen()))
		}
	case tcapi.TypeCIDR:
		if p, err := netip.ParsePrefix(v); err == nil {
			return x.inPrefix(p.Masked())
		}
	case tcapi.TypeHost:
		return x.inDomain(v)
	case tcapi.TypeURL:
		if u, err := url.Parse(v); err == nil {
			h := u.Hostname()
			if a, err := netip.ParseAddr(h); err == nil {
				return x.inPrefix(netip.PrefixFrom(a, a.BitLen()))
			}
			return x.inDomain(h)
		}
	case tcapi.TypeEmailAddress:
		if at := strings.LastIndexByte(v, '@'); at >= 0 {
			return x.inDomain(v[at+1:])
		}
	}
	return false
}

// inPrefix reports whether p lies entirely inside an excluded block.
func (x exclusions) inPrefix(p netip.Prefix) bool {
	for _, e := range x.prefix {
		if e.Addr().BitLen() == p.Addr().BitLen() && e.Bits() <= p.Bits() && e.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

func (x exclusions) inDomain(host string) bool {
	h := strings.Trim(strings.ToLower(host), ".")
	for _, d := range x.domains {
		if h == d || strings.HasSuffix(h, "."+d) {
			return true
		}
	}
	return false
}

// item is what collection filters look at: the TC item an object came from.
type item struct {
	owner      string
	tags       []string
	confidence int
	tlp        tlp.Level // the item's own (most restrictive) marking
}

// filterMatches reports whether a filter collection holds an object of the
// given STIX type and marking that was mapped from it. Item-level criteria
// (owner, tags, confidence) decide for all objects of an item together, so an
// indicator's observable and based-on relationship travel with it; type and
// TLP are checked per object.
// itemOf is a ThreatConnect item as the mapper read it: its owner, tags,
// confidence and TLP are those its primary object carries, so that the
// sync's thresholds and filters judge exactly what is published.
func itemOf(u unit) item {
	p, ok := primaryObject(u)
	if !ok && len(u.objs) > 0 {
		p = u.objs[0]
	}
	return item{owner: p.Owner, tags: p.Tags, confidence: p.Confidence, tlp: p.TLP}
}

func filterMatches(f Filter, it item, stixType string, objTLP tlp.Level) bool {
	if len(f.Owners) > 0 && !slices.Contains(f.Owners, it.owner) {
		return false
	}
	if f.MaxTLP != tlp.None && (objTLP > f.MaxTLP || it.tlp > f.MaxTLP) {
		return false
	}
	if len(f.STIXTypes) > 0 && !slices.Contains(f.STIXTypes, stixType) {
		return false
	}
	if len(f.Tags) > 0 && !slices.ContainsFunc(it.tags, func(t string) bool {
		return slices.ContainsFunc(f.Tags, func(w string) bool { return strings.EqualFold(t, w) })
	}) {
		return false
	}
	if f.MinConfidence > 0 && it.confidence < f.MinConfidence {
		return false
	}
	return true
}
