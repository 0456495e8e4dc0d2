package ipam

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/allocator"
)

// pools, in that order. foreign is set when the status names an address
// another Service holds.
func (s *State) obtainLocked(f allocator.Family, in ServiceInput, ref v1alpha1.ServiceReference, lookup ShareLookup) (*record, *Failure, netip.Addr) {
	if a, ok := in.Req.Addrs[f]; ok {
		rec, fail := s.obtainRequestedLocked(a, in, ref, lookup)
		return rec, fail, netip.Addr{}
	}
	for _, a := range in.Ingress {
		if allocator.FamilyOf(a) != f {
			continue
		}
		if rec, fail, handled := s.adoptLocked(a, in, ref, lookup); handled {
			if fail != nil {
				return nil, fail, a
			}
			return rec, nil, netip.Addr{}
		}
	}
	if in.Req.SharingKey != "" {
		if rec := s.findSharedLocked(f, in, lookup); rec != nil {
			s.joinLocked(rec, ref)
			return rec, nil, netip.Addr{}
		}
	}
	cands, fail := Candidates(s.pools, in.Req.Pool, in.Key.Namespace, in.NSLabels, in.SvcLabels)
	if fail != nil {
		return nil, fail, netip.Addr{}
	}
	var names []string
	for _, p := range cands {
		if !p.HasFamily(f) {
			continue
		}
		names = append(names, p.Name)
		addr, err := s.alloc.AllocateNext(p.Name, f, nil)
		if err != nil {
			continue
		}
		return s.newRecordLocked(addr, p.Name, in.Req.SharingKey, ref), nil, netip.Addr{}
	}
	if len(names) == 0 {
		var all []string
		for _, p := range cands {
			all = append(all, p.Name)
		}
		return nil, &Failure{v1alpha1.ReasonNoMatchingPool, fmt.Sprintf("no %s address: the pools that serve this Service (%s) have no %s range",
			f, strings.Join(all, ", "), f)}, netip.Addr{}
	}
	return nil, &Failure{v1alpha1.ReasonPoolExhausted, fmt.Sprintf("no free %s address in pool(s) %s", f, strings.Join(names, ", "))}, netip.Addr{}
}

func (s *State) obtainRequestedLocked(a netip.Addr, in ServiceInput, ref v1alpha1.ServiceReference, lookup ShareLookup) (*record, *Failure) {
	unavailable := func(format string, args ...any) *Failure {
		return &Failure{v1alpha1.ReasonRequestedAddressUnavailable, fmt.Sprintf("requested address %s ", a) + fmt.Sprintf(format, args...)}
	}
	if rec := s.recs[a]; rec != nil {
		if len(rec.want) == 0 {
			return nil, unavailable("is being released by its previous holder")
		}
		if in.Req.SharingKey == "" || rec.key != in.Req.SharingKey {
			return nil, unavailable("is held by %s", holders(rec.want))
		}
		if s.byNam[rec.pool] == nil {
			// Its pool was deleted: the holders keep it, nobody new joins.
			return nil, unavailable("is held by %s and its pool %s no longer exists: no new Service can share it", holders(rec.want), rec.pool)
		}
		if in.Req.Pool != "" && rec.pool != in.Req.Pool {
			return nil, unavailable("is in pool %s, not in pool %s", rec.pool, in.Req.Pool)
		}
		if err := s.compatibleLocked(rec, in.Key, in.Share, lookup); err != nil {
			return nil, &Failure{v1alpha1.ReasonSharingConflict, fmt.Sprintf("cannot share requested address %s: %v", a, err)}
		}
		s.joinLocked(rec, ref)
		return rec, nil
	}
	s.unclaimLocked(a, in.Key) // its own status shows it: take it over
	if other, ok := s.claimedByOtherLocked(a, in.Key); ok {
		return nil, unavailable("is shown in the status of %s, which the controller has not taken over yet", other)
	}
	names := s.alloc.PoolsContaining(a)
	if len(names) == 0 {
		for _, p := range s.pools {
			if p.AvoidBuggyIPs && slices.ContainsFunc(p.Ranges, func(r allocator.Range) bool { return r.Contains(a) }) {
				return nil, unavailable("is in pool %s, which skips addresses ending in .0 and .255 (avoidBuggyIPs)", p.Name)
			}
		}
		return nil, unavailable("is not in any pool")
	}
	if in.Req.Pool != "" && !slices.Contains(names, in.Req.Pool) {
		return nil, unavailable("is not in pool %s", in.Req.Pool)
	}
	var why []string
	for _, n := range names {
		p := s.byNam[n]
		if p == nil || (in.Req.Pool != "" && n != in.Req.Pool) {
			continue
		}
		if w := p.whyNot(); w != "" {
			why = append(why, w)
			continue
		}
		if !p.AllocatesTo(in.Key.Namespace, in.NSLabels, in.SvcLabels) {
			why = append(why, fmt.Sprintf("pool %s does not allocate to this Service", n))
			continue
		}
		if err := s.alloc.Reserve(n, a); err != nil {
			why = append(why, err.Error())
			continue
		}
		return s.newRecordLocked(a, n, in.Req.SharingKey, ref), nil
	}
	return nil, unavailable("cannot be given: %s", strings.Join(why, "; "))
}

// adoptLocked takes over an address a Service already carries in its status
// (installed over another controller, restored from backup, or our own
// allocation deleted behind our back). handled=false when the address is in
// no pool or does not meet the request: then it is allocated normally.
func (s *State) adoptLocked(a netip.Addr, in ServiceInput, ref v1alpha1.ServiceReference, lookup ShareLookup) (*record, *Failure, bool) {
	s.unclaimLocked(a, in.Key)
	if rec := s.recs[a]; rec != nil {
		if in.Req.Pool != "" && rec.pool != in.Req.Pool {
			return nil, nil, false
		}
		if len(rec.want) > 0 && in.Req.SharingKey != "" && rec.key == in.Req.SharingKey &&
			s.compatibleLocked(rec, in.Key, in.Share, lookup) == nil {
			s.joinLocked(rec, ref)
			return rec, nil, true
		}
		who := holders(rec.want)
		if who == "" {
			who = "a Service being deleted"
		}
		return nil, &Failure{v1alpha1.ReasonAddressConflict, fmt.Sprintf("the Service's status shows %s, which %s holds; "+
			"it stays pending until that address is released", a, who)}, true
	}
	var pick string
	for _, n := range s.alloc.PoolsContaining(a) {
		p := s.byNam[n]
		if p == nil || p.Deleting || p.Invalid != "" || (in.Req.Pool != "" && n != in.Req.Pool) {
			continue
		}
		if pick == "" || (p.OverlapsWith == "" && s.byNam[pick].OverlapsWith != "") {
			pick = n
		}
	}
	if pick == "" || s.alloc.Reserve(pick, a) != nil {
		return nil, nil, false
	}
	return s.newRecordLocked(a, pick, in.Req.SharingKey, ref), nil, true
}

func (s *State) findSharedLocked(f allocator.Family, in ServiceInput, lookup ShareLookup) *record {
	var best *record
	for rec := range s.byKey[in.Req.SharingKey] {
		if rec.fam != f || len(rec.want) == 0 || (best != nil && best.addr.Less(rec.addr)) {
			continue
		}
		if in.Req.Pool != "" && rec.pool != in.Req.Pool {
			continue
		}
		if p := s.byNam[rec.pool]; p == nil || p.Deleting {
			continue // a deleted pool: its holders keep the address, nobody joins
		}
		if s.compatibleLocked(rec, in.Key, in.Share, lookup) != nil {
			continue
		}
		best = rec
	}
	return best
}

// compatibleLocked checks the Service against every other holder of rec.
func (s *State) compatibleLocked(rec *record, self svcKey, si ShareInfo, lookup ShareLookup) error {
	for _, h := range rec.want {
		k := refKey(h)
		if k == self {
			continue
		}
		other, ok := s.share[k]
		if !ok && lookup != nil {
			other, ok = lookup(k)
		}
		if !ok {
			return fmt.Errorf("holder %s is not known yet", k)
		}
		if err := CanShare(si, other); err != nil {
			return err
		}
	}
	return nil
}
