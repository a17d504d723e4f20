package tcsim

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/taxii-bridge/taxii-bridge/tcsync/tcapi"
)

// FaultKind is a kind of injected failure.
type FaultKind int

// The injectable faults.
const (
	// FaultStatus answers with Fault.Status (default 503) and the error
	// envelope, with Retry-After when Fault.RetryAfter is set.
	FaultStatus FaultKind = iota
	// FaultRateLimit answers 429 with Retry-After: Fault.RetryAfter (rounded up to seconds).
	FaultRateLimit
	// FaultSlow waits Fault.Delay before answering normally (client timeouts).
	FaultSlow
	// FaultTruncate sends the headers and half the body, then drops the connection.
	FaultTruncate
	// FaultReset closes the connection with a TCP reset before answering.
	FaultReset
)

// Fault describes an injected failure.
type Fault struct {
	Kind       FaultKind
	Status     int
	RetryAfter time.Duration
	Delay      time.Duration
}

type pendingFault struct {
	f    Fault
	left int
}

// Fail makes the next n requests (any route, before authentication) fail
// with f. Calls queue up: the first fault is used up before the next starts.
func (s *Simulator) Fail(n int, f Fault) {
	if n <= 0 {
		return
	}
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults = append(s.faults, pendingFault{f: f, left: n})
}

// ClearFaults drops every pending fault.
func (s *Simulator) ClearFaults() {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults = nil
}

func (s *Simulator) nextFault() (Fault, bool) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	for len(s.faults) > 0 {
		p := &s.faults[0]
		if p.left > 0 {
			p.left--
			f := p.f
			if p.left == 0 {
				s.faults = s.faults[1:]
			}
			return f, true
		}
		s.faults = s.faults[1:]
	}
	return Fault{}, false
}

// Requests returns how many requests the simulator has received.
func (s *Simulator) Requests() int64 { return s.requests.Load() }

// Now returns the simulator's clock truncated to the second, the
// lastModified that a mutation made now gets.
func (s *Simulator) Now() time.Time { return s.now().UTC().Truncate(time.Second) }

// touched is called with s.mu held after a mutation.
func (s *Simulator) touched() {
	s.version++
	s.memoMu.Lock()
	clear(s.memo)
	s.memoMu.Unlock()
}

// materialize returns the stored copy of an indicator, copying a generated
// one into the overlay. Callers hold s.mu for writing.
func (s *Simulator) materialize(id int64) (*tcapi.Indicator, error) {
	in := s.indicator(id)
	if in == nil {
		return nil, fmt.Errorf("indicator %d: %w", id, ErrNotFound)
	}
	if _, ok := s.indOver[id]; !ok {
		c := *in
		s.indOver[id] = &c
		in = &c
	}
	return in, nil
}

func (s *Simulator) materializeGroup(id int64) (*tcapi.Group, error) {
	g := s.group(id)
	if g == nil {
		return nil, fmt.Errorf("group %d: %w", id, ErrNotFound)
	}
	if _, ok := s.grpOver[id]; !ok {
		c := *g
		s.grpOver[id] = &c
		g = &c
	}
	return g, nil
}

// ErrNotFound is returned by mutations of an id that does not exist.
var ErrNotFound = errors.New("not found in simulator")

// Modify applies fn to an indicator and bumps its lastModified to Now. The
// id, type and dateAdded cannot be changed.
func (s *Simulator) Modify(id int64, fn func(*tcapi.Indicator)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, err := s.materialize(id)
	if err != nil {
		return fmt.Errorf("modify: %w", err)
	}
	keep := *in
	fn(in)
	in.ID, in.Type, in.DateAdded = keep.ID, keep.Type, keep.DateAdded
	in.LastModified = s.Now()
	s.touched()
	return nil
}

// Deactivate marks an indicator inactive and bumps its lastModified.
func (s *Simulator) Deactivate(id int64) error {
	return s.Modify(id, func(in *tcapi.Indicator) { in.Active = false })
}

// Delete removes an indicator and records it for /v3/indicators/deleted.
func (s *Simulator) Delete(id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.indicator(id)
	if in == nil {
		return fmt.Errorf("delete indicator %d: %w", id, ErrNotFound)
	}
	s.deletedInd[id] = true
	delete(s.indOver, id)
	s.deletedLog = append(s.deletedLog, tcapi.DeletedIndicator{
		OwnerName: in.OwnerName, Type: in.Type, Summary: in.Summary, DateAdded: s.Now(),
	})
	s.touched()
	return nil
}

// Add stores a new indicator and returns its id, which is higher than every
// existing one. dateAdded and lastModified are Now; an empty owner is the
// organization; an empty summary is derived from the values. Active and the
// other flags are taken as given (the zero value is inactive).
func (s *Simulator) Add(in tcapi.Indicator) (int64, error) {
	if in.Type == "" {
		return 0, fmt.Errorf("add indicator: type is empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxInd++
	in.ID = IndicatorIDBase + s.maxInd
	if in.OwnerName == "" {
		in.OwnerID, in.OwnerName = owners[0].ID, owners[0].Name
	}
	in.DateAdded, in.LastModified = s.Now(), s.Now()
	if in.Summary == "" {
		var parts []string
		for _, v := range in.Values() {
			if v != "" {
				parts = append(parts, v)
			}
		}
		in.Summary = strings.Join(parts, " : ")
	}
	s.indOver[in.ID] = &in
	s.touched()
	return in.ID, nil
}

// ModifyGroup applies fn to a group and bumps its lastModified.
func (s *Simulator) ModifyGroup(id int64, fn func(*tcapi.Group)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.materializeGroup(id)
	if err != nil {
		return fmt.Errorf("modify: %w", err)
	}
	keep := *g
	fn(g)
	g.ID, g.Type, g.DateAdded = keep.ID, keep.Type, keep.DateAdded
	g.LastModified = s.Now()
	s.touched()
	return nil
}

// DeleteGroup removes a group (ThreatConnect keeps no deleted list for groups, §6.5).
func (s *Simulator) DeleteGroup(id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.group(id) == nil {
		return fmt.Errorf("delete group %d: %w", id, ErrNotFound)
	}
	s.deletedGrp[id] = true
	delete(s.grpOver, id)
	s.touched()
	return nil
}

// AddGroup stores a new group and returns its id.
func (s *Simulator) AddGroup(g tcapi.Group) (int64, error) {
	if g.Type == "" || g.Name == "" {
		return 0, fmt.Errorf("add group: type and name are required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxGrp++
	g.ID = GroupIDBase + s.maxGrp
	if g.OwnerName == "" {
		g.OwnerID, g.OwnerName = owners[0].ID, owners[0].Name
	}
	g.DateAdded, g.LastModified = s.Now(), s.Now()
	s.grpOver[g.ID] = &g
	s.touched()
	return g.ID, nil
}

// Associations do not change lastModified on either end: the docs say
// nothing (threatconnect-v3.md §9.7) and ThreatConnect was seen to leave it
// alone, so the simulator does too. A bridge that trusts lastModified for
// associations misses them; that is what the reconciliation is for.

// Associate links an indicator and a group (both ends see it). It removes
// an earlier Disassociate of the same pair.
func (s *Simulator) Associate(indicatorID, groupID int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.indicator(indicatorID) == nil || s.group(groupID) == nil {
		return fmt.Errorf("associate indicator %d with group %d: %w", indicatorID, groupID, ErrNotFound)
	}
	delete(s.unlinked, [2]int64{indicatorID, groupID})
	s.extraIG[indicatorID] = append(s.extraIG[indicatorID], groupID)
	s.extraGI[groupID] = append(s.extraGI[groupID], indicatorID)
	s.touched()
	return nil
}

// Disassociate removes the association of an indicator and a group,
// generated or added; neither end's lastModified changes.
func (s *Simulator) Disassociate(indicatorID, groupID int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.indicator(indicatorID) == nil || s.group(groupID) == nil {
		return fmt.Errorf("disassociate indicator %d from group %d: %w", indicatorID, groupID, ErrNotFound)
	}
	s.unlinked[[2]int64{indicatorID, groupID}] = true
	s.touched()
	return nil
}

// AssociateGroups links two groups.
func (s *Simulator) AssociateGroups(a, b int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.group(a) == nil || s.group(b) == nil || a == b {
		return fmt.Errorf("associate groups %d and %d: %w", a, b, ErrNotFound)
	}
	s.extraGG[a] = append(s.extraGG[a], b)
	s.extraGG[b] = append(s.extraGG[b], a)
	s.touched()
	return nil
}

// AssociateIndicators adds a custom indicator-to-indicator association
// named name (e.g. "URL Host").
func (s *Simulator) AssociateIndicators(a, b int64, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.indicator(a) == nil || s.indicator(b) == nil || a == b {
		return fmt.Errorf("associate indicators %d and %d: %w", a, b, ErrNotFound)
	}
	s.extraII[a] = append(s.extraII[a], iiLink{other: b, name: name})
	s.extraII[b] = append(s.extraII[b], iiLink{other: a, name: name})
	s.touched()
	return nil
}

// Indicator returns a copy of the current indicator with this id, with its
// tags, labels and attributes, or false when it does not exist.
func (s *Simulator) Indicator(id int64) (tcapi.Indicator, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	in := s.indicator(id)
	if in == nil {
		return tcapi.Indicator{}, false
	}
	return *in, true
}

// Group returns a copy of the current group with this id.
func (s *Simulator) Group(id int64) (tcapi.Group, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.group(id)
	if g == nil {
		return tcapi.Group{}, false
	}
	return *g, true
}

// MaxIndicatorID returns the highest indicator id ever assigned.
func (s *Simulator) MaxIndicatorID() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return IndicatorIDBase + s.maxInd
}
