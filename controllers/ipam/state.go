package ipam

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/ipam"
)

// svcKey names a Service.
type svcKey = types.NamespacedName

// State is the controller's memory: the allocator, the pools, and who holds
// which address. Decisions are made under its mutex and are short; API
// writes happen outside it.
type State struct {
	mu    sync.Mutex
	built bool
	alloc *ipam.Allocator
	pools []*PoolView // sorted by name
	byNam map[string]*PoolView
	recs  map[netip.Addr]*record
	bySvc map[svcKey]map[*record]struct{}
	byKey map[string]map[*record]struct{}
	// releasing holds records a Service left; they are written (patched or
	// deleted) after that Service's status no longer shows them.
	releasing map[svcKey]map[*record]struct{}
	// pending are Services left wanting (no address, a missing family, a
	// request not met); they are retried when addresses are freed or pools change.
	pending map[svcKey]struct{}
	share   map[svcKey]ShareInfo
	memo    map[svcKey]statusMemo

	// OnFreed is called (under the mutex; it must not block) when an
	// address is freed or pools change, with the Services to retry.
	OnRetry func(keys []svcKey)
	// OnPoolUsage is called (under the mutex; must not block) when a
	// pool's allocations change.
	OnPoolUsage func(pool string)
}

// statusMemo remembers the last status written for a Service: base is the
// resourceVersion the write was based on, so a reconcile that still sees
// that version (the cache has not caught up) does not write again.
type statusMemo struct {
	base string
	st   ServiceStatus
}

// NewState returns an empty State.
func NewState() *State {
	return &State{
		alloc:     ipam.New(),
		byNam:     map[string]*PoolView{},
		recs:      map[netip.Addr]*record{},
		bySvc:     map[svcKey]map[*record]struct{}{},
		byKey:     map[string]map[*record]struct{}{},
		releasing: map[svcKey]map[*record]struct{}{},
		pending:   map[svcKey]struct{}{},
		share:     map[svcKey]ShareInfo{},
		memo:      map[svcKey]statusMemo{},
	}
}

// Build fills an empty State from the pools and allocations that exist. It
// runs once, before the first decision, so an address held before a
// restart is never handed out again. It returns the Services named by
// allocations, which must be reconciled (some may be gone).
func (s *State) Build(pools []v1alpha1.IPPool, allocs []v1alpha1.IPAllocation) []svcKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.built {
		return nil
	}
	s.setPoolsLocked(BuildPoolViews(pools))
	var keys []svcKey
	for i := range allocs {
		keys = append(keys, s.observeLocked(&allocs[i])...)
	}
	s.built = true
	return keys
}

// Built reports whether Build ran.
func (s *State) Built() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.built
}

// SetPools installs new pool views and returns the names of the pools whose
// view changed, and the Services to reconcile because of it: the pending
// ones and those holding addresses of changed pools.
func (s *State) SetPools(views []*PoolView) (changed []string, retry []svcKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed = s.setPoolsLocked(views)
	if len(changed) == 0 {
		return nil, nil
	}
	seen := map[svcKey]struct{}{}
	for k := range s.pending {
		seen[k] = struct{}{}
	}
	for _, rec := range s.recs {
		if slices.Contains(changed, rec.pool) {
			for _, r := range rec.want {
				seen[refKey(r)] = struct{}{}
			}
		}
	}
	for k := range seen {
		retry = append(retry, k)
	}
	return changed, retry
}

func (s *State) setPoolsLocked(views []*PoolView) []string {
	var changed []string
	names := map[string]bool{}
	for _, v := range views {
		names[v.Name] = true
		if v.Invalid == "" {
			s.alloc.SetPool(ipam.Pool{Name: v.Name, Ranges: v.Ranges, AvoidBuggyIPs: v.AvoidBuggyIPs})
		} else {
			s.alloc.DeletePool(v.Name)
		}
		if old := s.byNam[v.Name]; old == nil || !samePoolView(old, v) {
			changed = append(changed, v.Name)
		}
	}
	for name := range s.byNam {
		if !names[name] {
			s.alloc.DeletePool(name)
			changed = append(changed, name)
		}
	}
	s.pools = views
	s.byNam = make(map[string]*PoolView, len(views))
	for _, v := range views {
		s.byNam[v.Name] = v
	}
	slices.Sort(changed)
	return changed
}

func samePoolView(a, b *PoolView) bool {
	if a.Name != b.Name || a.Invalid != b.Invalid || a.AutoAssign != b.AutoAssign || a.AvoidBuggyIPs != b.AvoidBuggyIPs ||
		a.Disabled != b.Disabled || a.Deleting != b.Deleting || a.HasAllocateTo != b.HasAllocateTo ||
		a.Priority != b.Priority || a.OverlapsWith != b.OverlapsWith || a.Generation != b.Generation ||
		!slices.Equal(a.Ranges, b.Ranges) || !slices.Equal(a.Namespaces, b.Namespaces) {
		return false
	}
	return selString(a.NamespaceSelector) == selString(b.NamespaceSelector) && selString(a.ServiceSelector) == selString(b.ServiceSelector)
}

func selString(s labels.Selector) string {
	if s == nil {
		return "<none>"
	}
	return s.String()
}

// Pool returns the view of a pool.
func (s *State) Pool(name string) *PoolView {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byNam[name]
}

// NeedsNamespaceLabels reports whether some pool selects namespaces by label.
func (s *State) NeedsNamespaceLabels() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pools {
		if p.NamespaceSelector != nil {
			return true
		}
	}
	return false
}

// ServiceInput is what a decision for one Service needs.
type ServiceInput struct {
	Key    svcKey
	UID    types.UID
	Manage bool // the Service exists and qualifies
	// Families wanted, primary first; RequireAll: all of them or none.
	Families   []ipam.Family
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
	var d Decision
	ref := v1alpha1.ServiceReference{Namespace: in.Key.Namespace, Name: in.Key.Name, UID: in.UID}
	if in.Manage {
		s.share[in.Key] = in.Share
	} else {
		delete(s.share, in.Key)
		delete(s.memo, in.Key)
	}
	if in.Manage && !in.Verified {
		if d.Verify = s.toVerifyLocked(in); len(d.Verify) > 0 {
			return d
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
	d.Outcome.Manage = in.Manage
	if !in.Manage {
		return d
	}
	inIngress := func(rec *record) bool { return slices.Contains(in.Ingress, rec.addr) }
	keepAll := func(f *Failure) Decision {
		d.Acquire = mine
		d.Outcome.Failure = f
		d.Outcome.Addrs = s.assignedLocked(mine, in.Families)
		return d
	}
	if in.ReqErr != nil {
		return keepAll(&Failure{ReasonInvalidRequest, in.ReqErr.Error()})
	}
	for f, a := range in.Req.Addrs {
		if !slices.Contains(in.Families, f) {
			return keepAll(&Failure{ReasonInvalidRequest, fmt.Sprintf(
				"requested address %s is %s but the Service has ipFamilyPolicy SingleStack with ipFamilies [%s]", a, f, in.Families[0])})
		}
	}

	byFam := map[ipam.Family][]*record{}
	for _, rec := range mine {
		if !slices.Contains(in.Families, rec.fam) {
			s.releaseLocked(rec, in.Key)
			continue
		}
		byFam[rec.fam] = append(byFam[rec.fam], rec)
	}
	// prefer: in the status first, then lowest address.
	prefer := func(recs []*record) []*record {
		out := slices.Clone(recs)
		slices.SortStableFunc(out, func(a, b *record) int {
			ia, ib := inIngress(a), inIngress(b)
			switch {
			case ia && !ib:
				return -1
			case ib && !ia:
				return 1
			}
			return 0
		})
		return out
	}

	var fresh []*record
	type famResult struct {
		rec  *record
		fail *Failure
	}
	res := map[ipam.Family]famResult{}
	for _, f := range in.Families {
		recs := prefer(byFam[f])
		if rec := s.adoptShownLocked(f, recs, in, ref, lookup); rec != nil {
			for _, old := range recs {
				s.releaseLocked(old, in.Key)
			}
			res[f] = famResult{rec: rec}
			continue
		}
		var keep *record
		for _, rec := range recs {
			if s.satisfiesLocked(rec, in, lookup) == nil {
				keep = rec
				break
			}
		}
		if keep != nil {
			for _, rec := range recs {
				if rec != keep {
					s.releaseLocked(rec, in.Key)
				}
			}
			if len(keep.want) == 1 && keep.key != in.Req.SharingKey {
				keep.key = in.Req.SharingKey // sole holder: the key follows the Service
				s.reindexKeyLocked(keep)
			}
			res[f] = famResult{rec: keep}
			continue
		}
		rec, fail, foreign := s.obtainLocked(f, in, ref, lookup)
		if foreign.IsValid() {
			d.Foreign = append(d.Foreign, foreign)
		}
		if rec != nil {
			for _, old := range recs {
				s.releaseLocked(old, in.Key)
			}
			fresh = append(fresh, rec)
			res[f] = famResult{rec: rec}
			continue
		}
		if len(recs) > 0 {
			// Keep what it has until the request can be met: never drop a
			// working address for one that cannot be had.
			for _, rec := range recs[1:] {
				s.releaseLocked(rec, in.Key)
			}
			if why := s.satisfiesLocked(recs[0], in, lookup); why != nil && fail == nil {
				fail = why
			}
			res[f] = famResult{rec: recs[0], fail: fail}
		} else {
			res[f] = famResult{fail: fail}
		}
	}

	var missing []ipam.Family
	var missingWhy []string
	var keptFail, missFail *Failure
	for _, f := range in.Families {
		r := res[f]
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
		for _, rec := range fresh {
			s.releaseLocked(rec, in.Key)
			delete(res, rec.fam)
		}
		fresh = nil
	}
	var kept []*record
	for _, f := range in.Families {
		if r := res[f]; r.rec != nil {
			kept = append(kept, r.rec)
		}
	}
	d.Acquire = kept
	d.Fresh = len(fresh) > 0
	d.Outcome.Addrs = s.assignedLocked(kept, in.Families)
	switch {
	case (in.RequireAll || len(kept) == 0) && len(missing) > 0:
		d.Outcome.Failure = missFail
		if d.Outcome.Failure == nil {
			d.Outcome.Failure = &Failure{ReasonNoMatchingPool, "no address for " + joinFamilies(missing)}
		}
	case keptFail != nil:
		d.Outcome.Failure = keptFail
	default:
		d.Outcome.Missing = missing
		d.Outcome.MissingWhy = strings.Join(missingWhy, "; ")
	}
	return d
}

// toVerifyLocked lists the addresses the Service's status shows that memory
// says another Service holds. With several controllers at once, memory can
// lag the API (another controller gave the address to this Service): they
// are read from the API before a decision would overwrite the status.
func (s *State) toVerifyLocked(in ServiceInput) []netip.Addr {
	var out []netip.Addr
	for _, a := range in.Ingress {
		f := ipam.FamilyOf(a)
		if _, requested := in.Req.Addrs[f]; requested || !slices.Contains(in.Families, f) {
			continue
		}
		if rec := s.recs[a]; rec != nil && len(rec.want) > 0 && !holdsUID(rec, in.Key, in.UID) {
			out = append(out, a)
		}
	}
	return out
}

// adoptShownLocked takes the address the status shows for family f when the
// Service holds another one in memory and nothing is known of the shown one:
// another controller gave it (its IPAllocation names the Service and our
// watch has not caught up). The status wins over memory, so the address a
// user sees does not change; writing its IPAllocation settles whose it is.
func (s *State) adoptShownLocked(f ipam.Family, recs []*record, in ServiceInput, ref v1alpha1.ServiceReference, lookup ShareLookup) *record {
	if _, requested := in.Req.Addrs[f]; requested || len(recs) == 0 {
		return nil
	}
	for _, a := range in.Ingress {
		if ipam.FamilyOf(a) != f || s.recs[a] != nil {
			continue
		}
		if rec, fail, ok := s.adoptLocked(a, in, ref, lookup); ok && fail == nil {
			return rec
		}
	}
	return nil
}

// assignedLocked lists records as Assigned in family order.
func (s *State) assignedLocked(recs []*record, fams []ipam.Family) []Assigned {
	var out []Assigned
	for _, f := range fams {
		for _, rec := range recs {
			if rec.fam == f {
				out = append(out, Assigned{Addr: rec.addr, Pool: rec.pool, Outside: !s.alloc.InPool(rec.pool, rec.addr)})
			}
		}
	}
	return out
}

// satisfiesLocked returns nil if a held record still meets the Service's
// request, else why not.
func (s *State) satisfiesLocked(rec *record, in ServiceInput, lookup ShareLookup) *Failure {
	if a, ok := in.Req.Addrs[rec.fam]; ok && a != rec.addr {
		return &Failure{ReasonRequestedAddressUnavailable, fmt.Sprintf("requested address %s is not available yet", a)}
	}
	if in.Req.Pool != "" && in.Req.Pool != rec.pool {
		return &Failure{ReasonNoMatchingPool, fmt.Sprintf("no address from pool %s yet", in.Req.Pool)}
	}
	if len(rec.want) > 1 {
		if rec.key != in.Req.SharingKey {
			return &Failure{ReasonSharingConflict, fmt.Sprintf("%s is shared under key %q, the Service now has %q", rec.addr, rec.key, in.Req.SharingKey)}
		}
		if err := s.compatibleLocked(rec, in.Key, in.Share, lookup); err != nil {
			return &Failure{ReasonSharingConflict, fmt.Sprintf("cannot keep sharing %s: %v", rec.addr, err)}
		}
	}
	return nil
}

// obtainLocked finds a new address of family f: the requested one, the one
// in the status (adoption), a shared one, or a free one from the candidate
// pools, in that order. foreign is set when the status names an address
// another Service holds.
func (s *State) obtainLocked(f ipam.Family, in ServiceInput, ref v1alpha1.ServiceReference, lookup ShareLookup) (*record, *Failure, netip.Addr) {
	if a, ok := in.Req.Addrs[f]; ok {
		rec, fail := s.obtainRequestedLocked(a, in, ref, lookup)
		return rec, fail, netip.Addr{}
	}
	for _, a := range in.Ingress {
		if ipam.FamilyOf(a) != f {
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
		return nil, &Failure{ReasonNoMatchingPool, fmt.Sprintf("no %s address: the pools that serve this Service (%s) have no %s range",
			f, strings.Join(all, ", "), f)}, netip.Addr{}
	}
	return nil, &Failure{ReasonPoolExhausted, fmt.Sprintf("no free %s address in pool(s) %s", f, strings.Join(names, ", "))}, netip.Addr{}
}

func (s *State) obtainRequestedLocked(a netip.Addr, in ServiceInput, ref v1alpha1.ServiceReference, lookup ShareLookup) (*record, *Failure) {
	unavailable := func(format string, args ...any) *Failure {
		return &Failure{ReasonRequestedAddressUnavailable, fmt.Sprintf("requested address %s ", a) + fmt.Sprintf(format, args...)}
	}
	if rec := s.recs[a]; rec != nil {
		if len(rec.want) == 0 {
			return nil, unavailable("is being released by its previous holder")
		}
		if in.Req.SharingKey == "" || rec.key != in.Req.SharingKey {
			return nil, unavailable("is held by %s", holders(rec.want))
		}
		if in.Req.Pool != "" && rec.pool != in.Req.Pool {
			return nil, unavailable("is in pool %s, not in pool %s", rec.pool, in.Req.Pool)
		}
		if err := s.compatibleLocked(rec, in.Key, in.Share, lookup); err != nil {
			return nil, &Failure{ReasonSharingConflict, fmt.Sprintf("cannot share requested address %s: %v", a, err)}
		}
		s.joinLocked(rec, ref)
		return rec, nil
	}
	names := s.alloc.PoolsContaining(a)
	if len(names) == 0 {
		for _, p := range s.pools {
			if p.AvoidBuggyIPs && slices.ContainsFunc(p.Ranges, func(r ipam.Range) bool { return r.Contains(a) }) {
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
		return nil, &Failure{ReasonAddressConflict, fmt.Sprintf("the Service's status shows %s, which %s holds; "+
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

func (s *State) findSharedLocked(f ipam.Family, in ServiceInput, lookup ShareLookup) *record {
	var best *record
	for rec := range s.byKey[in.Req.SharingKey] {
		if rec.fam != f || len(rec.want) == 0 || (best != nil && best.addr.Less(rec.addr)) {
			continue
		}
		if in.Req.Pool != "" && rec.pool != in.Req.Pool {
			continue
		}
		if p := s.byNam[rec.pool]; p == nil || p.Deleting {
			continue
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

func (s *State) newRecordLocked(addr netip.Addr, pool, key string, ref v1alpha1.ServiceReference) *record {
	rec := &record{addr: addr, fam: ipam.FamilyOf(addr), pool: pool, key: key}
	s.recs[addr] = rec
	s.reindexKeyLocked(rec)
	s.joinLocked(rec, ref)
	if s.OnPoolUsage != nil {
		s.OnPoolUsage(pool)
	}
	return rec
}

func (s *State) joinLocked(rec *record, ref v1alpha1.ServiceReference) {
	k := refKey(ref)
	i, found := slices.BinarySearchFunc(rec.want, ref, cmpRef)
	if found {
		rec.want[i] = ref
	} else {
		rec.want = slices.Insert(rec.want, i, ref)
	}
	m := s.bySvc[k]
	if m == nil {
		m = map[*record]struct{}{}
		s.bySvc[k] = m
	}
	m[rec] = struct{}{}
	if r := s.releasing[k]; r != nil {
		delete(r, rec)
		if len(r) == 0 {
			delete(s.releasing, k)
		}
	}
}

// releaseLocked takes a Service off a record; the record's object is
// written later (see Decision.Release).
func (s *State) releaseLocked(rec *record, k svcKey) {
	rec.want = slices.DeleteFunc(rec.want, func(r v1alpha1.ServiceReference) bool { return refKey(r) == k })
	if m := s.bySvc[k]; m != nil {
		delete(m, rec)
		if len(m) == 0 {
			delete(s.bySvc, k)
		}
	}
	m := s.releasing[k]
	if m == nil {
		m = map[*record]struct{}{}
		s.releasing[k] = m
	}
	m[rec] = struct{}{}
}

func (s *State) reindexKeyLocked(rec *record) {
	for k, m := range s.byKey {
		if _, ok := m[rec]; ok && k != rec.key {
			delete(m, rec)
			if len(m) == 0 {
				delete(s.byKey, k)
			}
		}
	}
	if rec.key == "" {
		return
	}
	m := s.byKey[rec.key]
	if m == nil {
		m = map[*record]struct{}{}
		s.byKey[rec.key] = m
	}
	m[rec] = struct{}{}
}

// removeLocked forgets a record nobody wants whose object is gone, and frees
// its address.
func (s *State) removeLocked(rec *record) {
	if s.recs[rec.addr] != rec {
		return
	}
	delete(s.recs, rec.addr)
	rec.key = ""
	s.reindexKeyLocked(rec)
	s.alloc.Release(rec.addr)
	if s.OnPoolUsage != nil {
		s.OnPoolUsage(rec.pool)
	}
	s.retryPendingLocked()
}

func (s *State) retryPendingLocked() {
	if s.OnRetry == nil || len(s.pending) == 0 {
		return
	}
	keys := make([]svcKey, 0, len(s.pending))
	for k := range s.pending {
		keys = append(keys, k)
	}
	s.OnRetry(keys)
}

// PoolUsage describes who holds a pool's addresses.
type PoolUsage struct {
	Held    int
	Holders []string // up to 5 "ns/name (addr)"
	Outside []string // up to 5 addresses outside the pool's ranges
}

// Usage returns a pool's statistics and holders. It keeps only the lowest
// few addresses for the messages, so it costs O(held) without sorting.
func (s *State) Usage(pool string) (map[ipam.Family]ipam.Stats, PoolUsage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var u PoolUsage
	var low, outside []*record // the lowest 5 of each, sorted
	keep := func(list []*record, rec *record) []*record {
		i, _ := slices.BinarySearchFunc(list, rec.addr, func(r *record, a netip.Addr) int { return r.addr.Compare(a) })
		if i >= 5 {
			return list
		}
		list = slices.Insert(list, i, rec)
		if len(list) > 5 {
			list = list[:5]
		}
		return list
	}
	for _, rec := range s.recs {
		if rec.pool != pool {
			continue
		}
		u.Held++
		low = keep(low, rec)
		if !s.alloc.InPool(pool, rec.addr) {
			outside = keep(outside, rec)
		}
	}
	for _, rec := range low {
		h := holders(rec.want)
		if h == "" {
			h = "(being released)"
		}
		u.Holders = append(u.Holders, fmt.Sprintf("%s (%s)", h, rec.addr))
	}
	for _, rec := range outside {
		u.Outside = append(u.Outside, rec.addr.String())
	}
	return s.alloc.Stats(pool), u
}

// Memo returns the status last written for a Service.
func (s *State) Memo(k svcKey) (statusMemo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.memo[k]
	return m, ok
}

// SetMemo remembers the status written for a Service.
func (s *State) SetMemo(k svcKey, m statusMemo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.memo[k] = m
}

// Knows reports whether the State holds anything for a Service: addresses,
// releases in flight, a pending request or a written status.
func (s *State) Knows(k svcKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, held := s.bySvc[k]
	_, releasing := s.releasing[k]
	_, pending := s.pending[k]
	_, memo := s.memo[k]
	return held || releasing || pending || memo
}

// PendingIn returns the pending Services of a namespace.
func (s *State) PendingIn(ns string) []svcKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []svcKey
	for k := range s.pending {
		if k.Namespace == ns {
			out = append(out, k)
		}
	}
	return out
}

func holdsUID(rec *record, k svcKey, uid types.UID) bool {
	for _, r := range rec.want {
		if refKey(r) == k {
			return r.UID == "" || uid == "" || r.UID == uid
		}
	}
	return false
}

func refKey(r v1alpha1.ServiceReference) svcKey {
	return svcKey{Namespace: r.Namespace, Name: r.Name}
}

func refKeys(rs []v1alpha1.ServiceReference) []svcKey {
	out := make([]svcKey, len(rs))
	for i, r := range rs {
		out[i] = refKey(r)
	}
	return out
}

func cmpRef(a, b v1alpha1.ServiceReference) int {
	if c := cmp.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

func sortedRefs(rs []v1alpha1.ServiceReference) []v1alpha1.ServiceReference {
	out := slices.Clone(rs)
	slices.SortFunc(out, cmpRef)
	return out
}

func holders(rs []v1alpha1.ServiceReference) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.Namespace + "/" + r.Name
	}
	return strings.Join(s, ", ")
}
