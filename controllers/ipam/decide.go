package ipam

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/allocator"
)

// ServiceInput is what a decision for one Service needs.
type ServiceInput struct {
	Key    svcKey
	UID    types.UID
	Manage bool // the Service exists and qualifies
	// Families wanted, primary first; RequireAll: all of them or none.
	Families   []allocator.Family
	RequireAll bool
	Req        Request
	ReqErr     error
	Share      ShareInfo
	// Ingress are the IPs in the Service's status (for adoption).
	Ingress   []netip.Addr
	NSLabels  labels.Set
	SvcLabels labels.Set
	// Verified is set once the addresses in Decision.Verify were read from
	// the API, so the next decision takes memory as it is.
	Verified bool
}

// Decision is what a Service reconcile must write.
type Decision struct {
	Outcome Outcome
	// Acquire are the records the Service holds: their objects are synced
	// before the status is written.
	Acquire []*record
	// Release are the records the Service left: synced after the status.
	Release []*record
	// Released are the addresses the Service no longer holds.
	Released []netip.Addr
	// Foreign are status addresses the Service claims but another Service
	// holds (AddressConflict); the status keeps them as they are.
	Foreign []netip.Addr
	// Fresh is true when the decision took a new address.
	Fresh bool
	// Verify lists status addresses that memory says another Service
	// holds: memory may lag another controller, so their objects are read
	// from the API before deciding (nothing else in the Decision is set).
	Verify []netip.Addr
}

// ShareLookup returns the sharing facts of a Service the State has not
// seen yet (it reads the cache); ok=false if the Service does not exist.
type ShareLookup func(svcKey) (ShareInfo, bool)

// Decide computes, under the mutex, the addresses a Service holds and
// records them in memory (reserving new ones in the allocator). The caller
// then writes the records in Acquire, the status, then the records in Release.
func (s *State) Decide(in ServiceInput, lookup ShareLookup) Decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.decideLocked(in, lookup)
	if len(d.Verify) > 0 {
		return d
	}
	if in.Manage {
		d.Outcome.AliasConflicts = in.Req.AliasConflicts
	}
	s.dropClaimsLocked(in.Key)
	if d.Outcome.Complete() {
		delete(s.pending, in.Key)
	} else {
		s.pending[in.Key] = struct{}{}
	}
	for rec := range s.releasing[in.Key] {
		d.Release = append(d.Release, rec)
		d.Released = append(d.Released, rec.addr)
	}
	slices.SortFunc(d.Release, func(a, b *record) int { return a.addr.Compare(b.addr) })
	slices.SortFunc(d.Released, netip.Addr.Compare)
	return d
}

func (s *State) decideLocked(in ServiceInput, lookup ShareLookup) Decision {
	d := Decision{Outcome: Outcome{Manage: in.Manage}}
	s.rememberLocked(in)
	if in.Manage && !in.Verified {
		if d.Verify = s.toVerifyLocked(in); len(d.Verify) > 0 {
			return d
		}
	}
	mine := s.heldLocked(in)
	if !in.Manage {
		return d
	}
	if fail := requestProblem(in); fail != nil {
		d.Acquire = mine
		d.Outcome.Failure = fail
		d.Outcome.Addrs = s.assignedLocked(mine, in.Families)
		return d
	}
	byFam := s.byFamilyLocked(mine, in)
	ch := choice{res: map[allocator.Family]famResult{}}
	for _, f := range in.Families {
		s.chooseLocked(&ch, f, byFam[f], in, lookup)
	}
	d.Foreign = ch.foreign
	s.concludeLocked(&d, &ch, in)
	return d
}

// rememberLocked keeps the sharing facts of a managed Service and forgets
// everything about one that is not.
func (s *State) rememberLocked(in ServiceInput) {
	if in.Manage {
		s.share[in.Key] = in.Share
		return
	}
	delete(s.share, in.Key)
	delete(s.memo, in.Key)
}

// heldLocked returns the records the Service holds, sorted by address, after
// releasing those it may no longer hold (not managed, or held by an earlier
// Service of the same name).
func (s *State) heldLocked(in ServiceInput) []*record {
	if in.Manage {
		// A release decided earlier is not written until the status no
		// longer shows the address; if the status still shows it (that
		// status write failed, and another controller may have written this
		// very address since), the Service takes it back: the status wins.
		ref := v1alpha1.ServiceReference{Namespace: in.Key.Namespace, Name: in.Key.Name, UID: in.UID}
		for rec := range s.releasing[in.Key] {
			others := len(rec.want) > 0 && (in.Req.SharingKey == "" || rec.key != in.Req.SharingKey)
			if s.recs[rec.addr] == rec && slices.Contains(in.Ingress, rec.addr) && !others {
				s.joinLocked(rec, ref)
			}
		}
	}
	var mine []*record
	for rec := range s.bySvc[in.Key] {
		if !in.Manage || !holdsUID(rec, in.Key, in.UID) {
			s.releaseLocked(rec, in.Key)
			continue
		}
		mine = append(mine, rec)
	}
	slices.SortFunc(mine, func(a, b *record) int { return a.addr.Compare(b.addr) })
	return mine
}

// requestProblem reports a request that cannot be met whatever the pools:
// the Service then keeps what it holds.
func requestProblem(in ServiceInput) *Failure {
	if in.ReqErr != nil {
		return &Failure{v1alpha1.ReasonInvalidRequest, in.ReqErr.Error()}
	}
	for f, a := range in.Req.Addrs {
		if !slices.Contains(in.Families, f) {
			return &Failure{v1alpha1.ReasonInvalidRequest, fmt.Sprintf(
				"requested address %s is %s but the Service has ipFamilyPolicy SingleStack with ipFamilies [%s]", a, f, in.Families[0])}
		}
	}
	return nil
}

// byFamilyLocked groups held records by family, each family's preferred
// first (shown in the status, then lowest address), releasing those of
// families the Service no longer wants.
func (s *State) byFamilyLocked(mine []*record, in ServiceInput) map[allocator.Family][]*record {
	byFam := map[allocator.Family][]*record{}
	for _, rec := range mine {
		if !slices.Contains(in.Families, rec.fam) {
			s.releaseLocked(rec, in.Key)
			continue
		}
		byFam[rec.fam] = append(byFam[rec.fam], rec)
	}
	shown := func(rec *record) bool { return slices.Contains(in.Ingress, rec.addr) }
	for f, recs := range byFam {
		slices.SortStableFunc(recs, func(a, b *record) int {
			switch sa, sb := shown(a), shown(b); {
			case sa && !sb:
				return -1
			case sb && !sa:
				return 1
			}
			return 0
		})
		byFam[f] = recs
	}
	return byFam
}

// famResult is what one family got: a record, and why it falls short.
type famResult struct {
	rec  *record
	fail *Failure
}

// choice accumulates the per-family results of one decision.
type choice struct {
	res     map[allocator.Family]famResult
	fresh   []*record    // newly taken, given back if the Service needs all families and one is missing
	foreign []netip.Addr // status addresses another Service holds
}

// chooseLocked decides one family: the address the status shows if memory
// knew nothing of it, else a held record that still meets the request, else
// a new one (requested, adopted, shared or free); failing that the Service
// keeps what it has, flagged.
func (s *State) chooseLocked(ch *choice, f allocator.Family, recs []*record, in ServiceInput, lookup ShareLookup) {
	ref := v1alpha1.ServiceReference{Namespace: in.Key.Namespace, Name: in.Key.Name, UID: in.UID}
	releaseAllBut := func(keep *record) {
		for _, rec := range recs {
			if rec != keep {
				s.releaseLocked(rec, in.Key)
			}
		}
	}
	if rec := s.adoptShownLocked(f, recs, in, ref, lookup); rec != nil {
		releaseAllBut(rec)
		ch.res[f] = famResult{rec: rec}
		return
	}
	for _, rec := range recs {
		if s.satisfiesLocked(rec, in, lookup) == nil {
			releaseAllBut(rec)
			if len(rec.want) == 1 && rec.key != in.Req.SharingKey {
				rec.key = in.Req.SharingKey // sole holder: the key follows the Service
				s.reindexKeyLocked(rec)
			}
			ch.res[f] = famResult{rec: rec}
			return
		}
	}
	rec, fail, foreign := s.obtainLocked(f, in, ref, lookup)
	if foreign.IsValid() {
		ch.foreign = append(ch.foreign, foreign)
	}
	switch {
	case rec != nil:
		releaseAllBut(nil)
		ch.fresh = append(ch.fresh, rec)
		ch.res[f] = famResult{rec: rec}
	case len(recs) > 0:
		// Keep what it has until the request can be met: never drop a
		// working address for one that cannot be had.
		releaseAllBut(recs[0])
		if why := s.satisfiesLocked(recs[0], in, lookup); why != nil && fail == nil {
			fail = why
		}
		ch.res[f] = famResult{rec: recs[0], fail: fail}
	default:
		ch.res[f] = famResult{fail: fail}
	}
}

// concludeLocked turns the families' results into the decision: what the
// Service holds, and the condition to show.
func (s *State) concludeLocked(d *Decision, ch *choice, in ServiceInput) {
	var missing []allocator.Family
	var missingWhy []string
	var keptFail, missFail *Failure
	for _, f := range in.Families {
		r := ch.res[f]
		switch {
		case r.rec != nil && r.fail != nil && keptFail == nil:
			keptFail = r.fail
		case r.rec == nil:
			missing = append(missing, f)
			if r.fail != nil {
				missingWhy = append(missingWhy, r.fail.Message)
				if missFail == nil {
					missFail = r.fail
				}
			}
		}
	}
	if in.RequireAll && len(missing) > 0 {
		for _, rec := range ch.fresh {
			s.releaseLocked(rec, in.Key)
			delete(ch.res, rec.fam)
		}
		ch.fresh = nil
	}
	var kept []*record
	for _, f := range in.Families {
		if r := ch.res[f]; r.rec != nil {
			kept = append(kept, r.rec)
		}
	}
	d.Acquire = kept
	d.Fresh = len(ch.fresh) > 0
	d.Outcome.Addrs = s.assignedLocked(kept, in.Families)
	switch {
	case (in.RequireAll || len(kept) == 0) && len(missing) > 0:
		d.Outcome.Failure = missFail
		if d.Outcome.Failure == nil {
			d.Outcome.Failure = &Failure{v1alpha1.ReasonNoMatchingPool, "no address for " + joinFamilies(missing)}
		}
	case keptFail != nil:
		d.Outcome.Failure = keptFail
	default:
		d.Outcome.Missing = missing
		d.Outcome.MissingWhy = strings.Join(missingWhy, "; ")
	}
}

// toVerifyLocked lists the addresses the Service's status shows that memory
// says the Service does not hold: another Service holds it, or nobody does
// (a release of ours in flight for another Service). With several
// controllers at once, memory can lag the API (another controller gave the
// address to this Service): they are read from the API before a decision
// would overwrite the status. Skipping the holder-less case let a lagging
// controller replace a shown address while the other controller, agreeing
// with the status, released the replacement from the same Service version:
// both writes succeeded and one address showed on two Services.
func (s *State) toVerifyLocked(in ServiceInput) []netip.Addr {
	var out []netip.Addr
	for _, a := range in.Ingress {
		f := allocator.FamilyOf(a)
		if _, requested := in.Req.Addrs[f]; requested || !slices.Contains(in.Families, f) {
			continue
		}
		rec := s.recs[a]
		if rec == nil || holdsUID(rec, in.Key, in.UID) {
			continue
		}
		if _, own := s.releasing[in.Key][rec]; own && len(rec.want) == 0 {
			continue // this Service's own release, not written yet: heldLocked takes it back
		}
		out = append(out, a)
	}
	return out
}

// adoptShownLocked takes the address the status shows for family f when the
// Service holds another one in memory and nothing is known of the shown one:
// another controller gave it (its IPAllocation names the Service and our
// watch has not caught up). The status wins over memory, so the address a
// user sees does not change; writing its IPAllocation settles whose it is.
func (s *State) adoptShownLocked(f allocator.Family, recs []*record, in ServiceInput, ref v1alpha1.ServiceReference, lookup ShareLookup) *record {
	if _, requested := in.Req.Addrs[f]; requested || len(recs) == 0 {
		return nil
	}
	for _, a := range in.Ingress {
		if allocator.FamilyOf(a) != f || s.recs[a] != nil {
			continue
		}
		if rec, fail, ok := s.adoptLocked(a, in, ref, lookup); ok && fail == nil {
			return rec
		}
	}
	return nil
}

// assignedLocked lists records as Assigned in family order.
func (s *State) assignedLocked(recs []*record, fams []allocator.Family) []Assigned {
	var out []Assigned
	for _, f := range fams {
		for _, rec := range recs {
			if rec.fam == f {
				out = append(out, Assigned{Addr: rec.addr, Pool: rec.pool, Outside: !s.alloc.InPool(rec.pool, rec.addr),
					PoolGone: s.byNam[rec.pool] == nil})
			}
		}
	}
	return out
}

// satisfiesLocked returns nil if a held record still meets the Service's
// request, else why not.
func (s *State) satisfiesLocked(rec *record, in ServiceInput, lookup ShareLookup) *Failure {
	if a, ok := in.Req.Addrs[rec.fam]; ok && a != rec.addr {
		return &Failure{v1alpha1.ReasonRequestedAddressUnavailable, fmt.Sprintf("requested address %s is not available yet", a)}
	}
	if in.Req.Pool != "" && in.Req.Pool != rec.pool {
		return &Failure{v1alpha1.ReasonNoMatchingPool, fmt.Sprintf("no address from pool %s yet", in.Req.Pool)}
	}
	if len(rec.want) > 1 {
		if rec.key != in.Req.SharingKey {
			return &Failure{v1alpha1.ReasonSharingConflict, fmt.Sprintf("%s is shared under key %q, the Service now has %q", rec.addr, rec.key, in.Req.SharingKey)}
		}
		if err := s.compatibleLocked(rec, in.Key, in.Share, lookup); err != nil {
			return &Failure{v1alpha1.ReasonSharingConflict, fmt.Sprintf("cannot keep sharing %s: %v", rec.addr, err)}
		}
	}
	return nil
}

// obtainLocked finds a new address of family f: the requested one, the one
// in the status (adoption), a shared one, or a free one from the candidate
