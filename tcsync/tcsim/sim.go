package tcsim

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

// Options configures a Simulator.
type Options struct {
	// Seed makes the generated data reproducible: the same Seed and counts
	// always serve the same objects.
	Seed int64
	// Indicators and Groups are how many objects are generated (lazily: the
	// cost in memory does not grow with them).
	Indicators, Groups int
	// AccessID and SecretKey are the HMAC credentials accepted; APIToken the
	// accepted TC-Token. Any may be empty (then that method is refused).
	AccessID, SecretKey, APIToken string
	// Now is the simulator's clock, for the ±5 minute HMAC window and the
	// lastModified of mutations. Default time.Now.
	Now func() time.Time
	// IncludeInactiveByDefault makes /v3/indicators return inactive
	// indicators when the TQL does not mention indicatorActive. The default
	// (false) follows the documentation: active only (threatconnect-v3.md §6.6).
	IncludeInactiveByDefault bool
	// EmbedLimit caps embedded association expansions (associatedGroups on
	// indicators, associatedIndicators on groups); a capped list carries the
	// full "count" so clients know to page with hasGroup()/hasIndicator()
	// (§9.3, §19.5: the real cap is undocumented). Default 100.
	EmbedLimit int
	// Log receives nothing by default; set it to log requests at Debug.
	Log *slog.Logger
}

// Simulator is an in-process ThreatConnect API v3. It implements
// http.Handler. Its methods are safe for concurrent use with serving.
type Simulator struct {
	seed          int64
	nInd, nGrp    int64
	accessID      string
	secretKey     string
	token         string
	now           func() time.Time
	activeDefault bool
	embedLimit    int
	log           *slog.Logger

	mu         sync.RWMutex
	maxInd     int64 // highest indicator index, generated or added
	maxGrp     int64
	indOver    map[int64]*tcapi.Indicator // by id: modified or added indicators
	grpOver    map[int64]*tcapi.Group
	deletedInd map[int64]bool
	deletedGrp map[int64]bool
	deletedLog []tcapi.DeletedIndicator
	extraIG    map[int64][]int64 // indicator id → group ids, added associations
	extraGI    map[int64][]int64 // group id → indicator ids
	extraGG    map[int64][]int64
	extraII    map[int64][]iiLink
	unlinked   map[[2]int64]bool // {indicator id, group id} associations removed
	version    uint64            // bumped by every mutation
	memoMu     sync.Mutex
	memo       map[string]int64 // offset-paging resume points, see memoPut

	itemBytes atomic.Int64 // average encoded size of a list item, see envelope

	faultMu  sync.Mutex
	faults   []pendingFault
	requests atomic.Int64
}

type iiLink struct {
	other int64
	name  string
}

// New returns a simulator serving opts.Indicators indicators and opts.Groups groups.
func New(opts Options) (*Simulator, error) {
	if opts.Indicators < 0 || opts.Groups < 0 {
		return nil, fmt.Errorf("new simulator: negative counts %d indicators, %d groups", opts.Indicators, opts.Groups)
	}
	if opts.AccessID == "" && opts.APIToken == "" {
		return nil, errors.New("new simulator: no credentials: set AccessID and SecretKey, or APIToken")
	}
	if opts.AccessID != "" && opts.SecretKey == "" {
		return nil, errors.New("new simulator: access id without a secret key")
	}
	s := &Simulator{
		seed: opts.Seed, nInd: int64(opts.Indicators), nGrp: int64(opts.Groups),
		accessID: opts.AccessID, secretKey: opts.SecretKey, token: opts.APIToken,
		now: opts.Now, activeDefault: !opts.IncludeInactiveByDefault, embedLimit: opts.EmbedLimit,
		log:    opts.Log,
		maxInd: int64(opts.Indicators), maxGrp: int64(opts.Groups),
		indOver: map[int64]*tcapi.Indicator{}, grpOver: map[int64]*tcapi.Group{},
		deletedInd: map[int64]bool{}, deletedGrp: map[int64]bool{},
		extraIG: map[int64][]int64{}, extraGI: map[int64][]int64{}, extraGG: map[int64][]int64{}, extraII: map[int64][]iiLink{}, unlinked: map[[2]int64]bool{},
		memo: map[string]int64{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.embedLimit <= 0 {
		s.embedLimit = 100
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// IndicatorID returns the id of generated indicator number n (1-based).
func IndicatorID(n int) int64 { return IndicatorIDBase + int64(n) }

// GroupID returns the id of generated group number n (1-based).
func GroupID(n int) int64 { return GroupIDBase + int64(n) }

// indicator returns the current indicator with this id, or nil. Callers hold s.mu.
func (s *Simulator) indicator(id int64) *tcapi.Indicator {
	if s.deletedInd[id] {
		return nil
	}
	if in, ok := s.indOver[id]; ok {
		return in
	}
	if n := id - IndicatorIDBase; n >= 1 && n <= s.nInd {
		return s.genIndicator(n)
	}
	return nil
}

func (s *Simulator) group(id int64) *tcapi.Group {
	if s.deletedGrp[id] {
		return nil
	}
	if g, ok := s.grpOver[id]; ok {
		return g
	}
	if n := id - GroupIDBase; n >= 1 && n <= s.nGrp {
		return s.genGroup(n)
	}
	return nil
}

// generatedGroupOf returns the group id a generated indicator belongs to, or 0.
func (s *Simulator) generatedGroupOf(indID int64) int64 {
	n := indID - IndicatorIDBase
	if n < 1 || n > s.nInd || s.nGrp == 0 || n%3 == 0 {
		return 0
	}
	return GroupIDBase + (n-1)%s.nGrp + 1
}

func (s *Simulator) groupIDsOfIndicator(id int64) []int64 {
	var ids []int64
	if g := s.generatedGroupOf(id); g != 0 && !s.unlinked[[2]int64{id, g}] {
		ids = append(ids, g)
	}
	for _, g := range s.extraIG[id] {
		if !slices.Contains(ids, g) && !s.unlinked[[2]int64{id, g}] {
			ids = append(ids, g)
		}
	}
	return ids
}

func (s *Simulator) groupsOfIndicator(id int64, limit int) ([]*tcapi.Group, int) {
	var out []*tcapi.Group
	total := 0
	for _, gid := range s.groupIDsOfIndicator(id) {
		if g := s.group(gid); g != nil {
			total++
			if len(out) < limit {
				out = append(out, g)
			}
		}
	}
	return out, total
}

// indicatorIDsOfGroup calls fn for each associated indicator id of a group, in id order for generated ones.
func (s *Simulator) indicatorIDsOfGroup(gid int64, fn func(id int64) bool) {
	if n := gid - GroupIDBase; n >= 1 && n <= s.nGrp {
		for i := n; i <= s.nInd; i += s.nGrp {
			if i%3 == 0 || s.unlinked[[2]int64{IndicatorIDBase + i, gid}] {
				continue
			}
			if !fn(IndicatorIDBase + i) {
				return
			}
		}
	}
	for _, id := range s.extraGI[gid] {
		if s.unlinked[[2]int64{id, gid}] {
			continue
		}
		if !fn(id) {
			return
		}
	}
}

func (s *Simulator) indicatorsOfGroup(gid int64, limit int) ([]*tcapi.Indicator, int) {
	var out []*tcapi.Indicator
	total := 0
	s.indicatorIDsOfGroup(gid, func(id int64) bool {
		if s.deletedInd[id] {
			return true
		}
		total++
		if len(out) < limit {
			if in := s.indicator(id); in != nil {
				out = append(out, in)
			}
		}
		return true
	})
	return out, total
}

func (s *Simulator) groupIDsOfGroup(gid int64) []int64 {
	var ids []int64
	if n := gid - GroupIDBase; n >= 1 && n <= s.nGrp {
		switch {
		case n%4 == 1 && n+1 <= s.nGrp:
			ids = append(ids, gid+1)
		case n%4 == 2:
			ids = append(ids, gid-1)
		}
	}
	return append(ids, s.extraGG[gid]...)
}

func (s *Simulator) groupsOfGroup(gid int64) []*tcapi.Group {
	var out []*tcapi.Group
	for _, id := range s.groupIDsOfGroup(gid) {
		if g := s.group(id); g != nil {
			out = append(out, g)
		}
	}
	return out
}

type link struct {
	name  string
	other *tcapi.Indicator
}

// customLinks returns an indicator's custom i→i associations, both directions (§9.4).
func (s *Simulator) customLinks(in *tcapi.Indicator) []link {
	var out []link
	n := in.ID - IndicatorIDBase
	if n >= 1 && n <= s.nInd {
		for _, r := range linkRules {
			if r.file {
				continue
			}
			var other int64
			switch in.Type {
			case r.from:
				other = n + r.offset()
			case r.to:
				other = n - r.offset()
			default:
				continue
			}
			if other < 1 || other > s.nInd {
				continue
			}
			if o := s.indicator(IndicatorIDBase + other); o != nil {
				out = append(out, link{name: r.name, other: o})
			}
		}
	}
	for _, l := range s.extraII[in.ID] {
		if o := s.indicator(l.other); o != nil {
			out = append(out, link{name: l.name, other: o})
		}
	}
	return out
}

// dnsResolutions returns a Host's DNS resolutions (fields=dnsResolution,
// threatconnect-v3.md §4.2): a DNS-active generated host n resolved, on the
// day it was added, to the Address indicator just before it in the type
// cycle (n−1), so the resolution's address is itself an indicator.
func (s *Simulator) dnsResolutions(in *tcapi.Indicator) []tcapi.DNSResolution {
	n := in.ID - IndicatorIDBase
	if in.Type != tcapi.TypeHost || !in.DNSActive || n < 2 || n > s.nInd {
		return nil
	}
	a := s.indicator(IndicatorIDBase + n - 1)
	if a == nil || a.Type != tcapi.TypeAddress {
		return nil
	}
	return []tcapi.DNSResolution{{ID: n, ResolutionDate: in.DateAdded, Addresses: tcapi.List[tcapi.Indicator]{Data: []tcapi.Indicator{*a}}}}
}

// fileActions returns a File's behaviour links (§9.5).
func (s *Simulator) fileActions(in *tcapi.Indicator) []link {
	var out []link
	n := in.ID - IndicatorIDBase
	if in.Type != tcapi.TypeFile || n < 1 || n > s.nInd {
		return nil
	}
	for _, r := range linkRules {
		if !r.file {
			continue
		}
		if other := n + r.offset(); other <= s.nInd {
			if o := s.indicator(IndicatorIDBase + other); o != nil {
				out = append(out, link{name: r.name, other: o})
			}
		}
	}
	return out
}

// Subjects for TQL evaluation.

type indSubject struct {
	s  *Simulator
	in *tcapi.Indicator
}

func (x indSubject) values(key string) []any {
	in := x.in
	switch key {
	case "id":
		return []any{in.ID}
	case "typename":
		return []any{in.Type}
	case "summary":
		return []any{in.Summary}
	case "ownername":
		return []any{in.OwnerName}
	case "owner":
		return []any{in.OwnerID}
	case "dateadded":
		return []any{in.DateAdded}
	case "lastmodified":
		return []any{in.LastModified}
	case "rating":
		if in.Rating != nil {
			return []any{*in.Rating}
		}
	case "confidence":
		if in.Confidence != nil {
			return []any{int64(*in.Confidence)}
		}
	case "threatassessscore":
		if in.ThreatAssessScore != nil {
			return []any{int64(*in.ThreatAssessScore)}
		}
	case "calscore":
		if in.CalScore != nil {
			return []any{int64(*in.CalScore)}
		}
	case "indicatoractive":
		return []any{in.Active}
	case "activelocked":
		return []any{in.ActiveLocked}
	case "tag":
		var v []any
		for _, t := range in.Tags.Data {
			v = append(v, t.Name)
		}
		return v
	case "securitylabel":
		var v []any
		for _, l := range in.SecurityLabels.Data {
			v = append(v, l.Name)
		}
		return v
	case "description":
		if in.Description != "" {
			return []any{in.Description}
		}
	case "source":
		if in.Source != "" {
			return []any{in.Source}
		}
	case "associatedgroup":
		var v []any
		for _, g := range x.s.groupIDsOfIndicator(in.ID) {
			v = append(v, g)
		}
		return v
	case "value1", "value2", "value3":
		vals := in.Values()
		if i := int(key[5] - '1'); i < len(vals) && vals[i] != "" {
			return []any{vals[i]}
		}
	}
	return nil
}

func (x indSubject) children(fn string) []subject {
	var out []subject
	switch fn {
	case "hasgroup":
		gs, _ := x.s.groupsOfIndicator(x.in.ID, 1<<30)
		for _, g := range gs {
			out = append(out, grpSubject{x.s, g})
		}
		// Custom i→i associations are hidden, non-group association groups (§9.3).
		for _, l := range x.s.customLinks(x.in) {
			out = append(out, assocSubject{x.s, []*tcapi.Indicator{x.in, l.other}})
		}
	case "hastag":
		for i := range x.in.Tags.Data {
			out = append(out, tagSubject{&x.in.Tags.Data[i]})
		}
	case "hassecuritylabel":
		for i := range x.in.SecurityLabels.Data {
			out = append(out, labelSubject{&x.in.SecurityLabels.Data[i]})
		}
	case "hasindicator":
		for _, l := range x.s.customLinks(x.in) {
			out = append(out, indSubject{x.s, l.other})
		}
	}
	return out
}

type grpSubject struct {
	s *Simulator
	g *tcapi.Group
}

func (x grpSubject) values(key string) []any {
	g := x.g
	switch key {
	case "id":
		return []any{g.ID}
	case "typename":
		return []any{g.Type}
	case "summary":
		return []any{g.Name}
	case "ownername":
		return []any{g.OwnerName}
	case "owner":
		return []any{g.OwnerID}
	case "dateadded":
		return []any{g.DateAdded}
	case "lastmodified":
		return []any{g.LastModified}
	case "isgroup":
		return []any{true}
	case "status":
		if g.Status != "" {
			return []any{g.Status}
		}
	case "eventdate":
		if !g.EventDate.IsZero() {
			return []any{g.EventDate}
		}
	case "tag":
		var v []any
		for _, t := range g.Tags.Data {
			v = append(v, t.Name)
		}
		return v
	case "securitylabel":
		var v []any
		for _, l := range g.SecurityLabels.Data {
			v = append(v, l.Name)
		}
		return v
	case "associatedindicator":
		var v []any
		x.s.indicatorIDsOfGroup(g.ID, func(id int64) bool { v = append(v, id); return true })
		return v
	}
	return nil
}

func (x grpSubject) children(fn string) []subject {
	var out []subject
	switch fn {
	case "hasindicator":
		inds, _ := x.s.indicatorsOfGroup(x.g.ID, 1<<30)
		for _, in := range inds {
			out = append(out, indSubject{x.s, in})
		}
	case "hasgroup":
		for _, g := range x.s.groupsOfGroup(x.g.ID) {
			out = append(out, grpSubject{x.s, g})
		}
	case "hastag":
		for i := range x.g.Tags.Data {
			out = append(out, tagSubject{&x.g.Tags.Data[i]})
		}
	case "hassecuritylabel":
		for i := range x.g.SecurityLabels.Data {
			out = append(out, labelSubject{&x.g.SecurityLabels.Data[i]})
		}
	}
	return out
}

// assocSubject is the hidden group behind one custom association.
type assocSubject struct {
	s    *Simulator
	ends []*tcapi.Indicator
}

func (x assocSubject) values(key string) []any {
	switch key {
	case "isgroup":
		return []any{false}
	case "typename":
		return []any{"Association"}
	}
	return nil
}

func (x assocSubject) children(fn string) []subject {
	if fn != "hasindicator" {
		return nil
	}
	return []subject{indSubject{x.s, x.ends[0]}, indSubject{x.s, x.ends[1]}}
}

type tagSubject struct{ t *tcapi.Tag }

func (x tagSubject) values(key string) []any {
	switch key {
	case "id":
		return []any{x.t.ID}
	case "name", "summary":
		return []any{x.t.Name}
	case "techniqueid":
		if x.t.TechniqueID != "" {
			return []any{x.t.TechniqueID}
		}
	}
	return nil
}

func (tagSubject) children(string) []subject { return nil }

type labelSubject struct{ l *tcapi.SecurityLabel }

func (x labelSubject) values(key string) []any {
	switch key {
	case "id":
		return []any{x.l.ID}
	case "name", "summary":
		return []any{x.l.Name}
	}
	return nil
}

func (labelSubject) children(string) []subject { return nil }
