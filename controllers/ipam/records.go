package ipam

import (
	"errors"
	"maps"
	"net/netip"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/allocator"
)

// record is one held address: the in-memory twin of an IPAllocation. want
// is what the object must say; exists/written is what it said the last time
// this controller wrote or read it. The memory proposes; the API object
// decides: every write of an existing object is conditional on the
// resourceVersion in rv, and when the object turns out to say something
// else, the memory takes the object's word (refresh) and the Services
// involved are decided again.
type record struct {
	addr netip.Addr
	fam  allocator.Family
	pool string
	key  string
	want []v1alpha1.ServiceReference // sorted by namespace/name

	exists      bool
	uid         types.UID
	rv          string // resourceVersion of the object as last written or read
	gen         int64  // its generation, to ignore events older than what we know
	written     []v1alpha1.ServiceReference
	writtenKey  string
	writtenPool string

	// wmu serializes API writes of this address; taken before State.mu.
	wmu sync.Mutex
}

// recordWrite is what a record's object must become, and what it was.
type recordWrite struct {
	addr      netip.Addr
	pool, key string
	want      []v1alpha1.ServiceReference
	exists    bool
	uid       types.UID
	rv        string
	written   []v1alpha1.ServiceReference
	wKey      string
	wPool     string
	upToDate  bool
	// labels are the labels of the pool while it exists, for a create.
	labels map[string]string
}

// object returns the IPAllocation the record must become.
func (w recordWrite) object() *v1alpha1.IPAllocation {
	obj := &v1alpha1.IPAllocation{Spec: v1alpha1.IPAllocationSpec{
		Address: w.addr.String(), Pool: w.pool, SharingKey: w.key, Services: w.want}}
	obj.Name = v1alpha1.AllocationName(w.addr.String())
	return obj
}

// created returns the object to create: what the record must become,
// carrying its pool's labels. Patches of an existing object never touch
// them (object and base both leave them out): keeping them in step with
// the pool is the pool reconciler's job (poollabels.go).
func (w recordWrite) created() *v1alpha1.IPAllocation {
	obj := w.object()
	obj.Spec.PoolLabels = w.labels
	return obj
}

// base returns the object as last written or read: the base of a patch.
func (w recordWrite) base() *v1alpha1.IPAllocation {
	obj := &v1alpha1.IPAllocation{Spec: v1alpha1.IPAllocationSpec{
		Address: w.addr.String(), Pool: w.wPool, SharingKey: w.wKey, Services: w.written}}
	obj.Name, obj.UID, obj.ResourceVersion = v1alpha1.AllocationName(w.addr.String()), w.uid, w.rv
	return obj
}

// removed lists the holders the object names that the record no longer wants.
func (w recordWrite) removed() []v1alpha1.ServiceReference {
	var out []v1alpha1.ServiceReference
	for _, h := range w.written {
		if !slices.ContainsFunc(w.want, func(r v1alpha1.ServiceReference) bool { return sameRef(r, h) }) {
			out = append(out, h)
		}
	}
	return out
}

func (s *State) snapshot(rec *record) recordWrite {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := recordWrite{
		addr: rec.addr, pool: rec.pool, key: rec.key, want: slices.Clone(rec.want),
		exists: rec.exists, uid: rec.uid, rv: rec.rv,
		written: slices.Clone(rec.written), wKey: rec.writtenKey, wPool: rec.writtenPool,
		upToDate: rec.exists && rec.writtenKey == rec.key && rec.writtenPool == rec.pool && slices.Equal(rec.written, rec.want),
	}
	if v := s.byNam[rec.pool]; v != nil && !rec.exists {
		// A copy: the create decodes the API's answer into the object.
		w.labels = maps.Clone(v.Labels)
	}
	return w
}

// wrote records that the object now says what obj says.
func (s *State) wrote(rec *record, obj *v1alpha1.IPAllocation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setWrittenLocked(rec, obj)
}

func (s *State) setWrittenLocked(rec *record, obj *v1alpha1.IPAllocation) {
	rec.exists, rec.uid, rec.rv, rec.gen = true, obj.UID, obj.ResourceVersion, obj.Generation
	rec.written = sortedRefs(obj.Spec.Services)
	rec.writtenKey, rec.writtenPool = obj.Spec.SharingKey, obj.Spec.Pool
}

// gone records that the object does not exist; a record nobody wants is
// then forgotten and its address freed. It reports whether it was removed.
func (s *State) gone(rec *record) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.exists, rec.uid, rec.rv, rec.gen, rec.written = false, "", "", 0, nil
	if len(rec.want) == 0 {
		s.removeLocked(rec)
		return true
	}
	return false
}

// doneReleasing drops a record from a Service's releasing set.
func (s *State) doneReleasing(k svcKey, rec *record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.releasing[k]; m != nil {
		delete(m, rec)
		if len(m) == 0 {
			delete(s.releasing, k)
		}
	}
}

// errLost is returned when an address's object turned out to say something
// else than this controller proposed (another Service, or another
// controller, holds it): the decision is made again on the corrected memory.
var errLost = errors.New("address already held by another Service")

// refresh makes a record match its object as read from the API (nil: there
// is none). It returns the Services to reconcile (those the record named and
// those the object names) and whether Services the record wanted lost it.
func (s *State) refresh(rec *record, obj *v1alpha1.IPAllocation) (keys []svcKey, lost bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if obj == nil {
		rec.exists, rec.uid, rec.rv, rec.gen, rec.written = false, "", "", 0, nil
		if len(rec.want) == 0 {
			s.removeLocked(rec)
			return nil, false
		}
		return refKeys(rec.want), false
	}
	if s.recs[rec.addr] != rec {
		return refKeys(obj.Spec.Services), false
	}
	holders := sortedRefs(obj.Spec.Services)
	if sameRefs(rec.want, holders) && rec.key == obj.Spec.SharingKey && rec.pool == obj.Spec.Pool {
		s.setWrittenLocked(rec, obj)
		return nil, false
	}
	if rec.exists && rec.uid == obj.UID && sameRefs(rec.written, holders) &&
		rec.writtenKey == obj.Spec.SharingKey && rec.writtenPool == obj.Spec.Pool {
		// The object changed only in what memory does not keep (its pool
		// labels, brought in step by the pool reconciler): it still says
		// what the proposal was based on, so the proposal stands and is
		// written again at the new resourceVersion. Nobody lost anything.
		s.setWrittenLocked(rec, obj)
		return nil, false
	}
	for _, r := range rec.want {
		keys = append(keys, refKey(r))
		if !slices.ContainsFunc(holders, func(h v1alpha1.ServiceReference) bool { return sameRef(h, r) }) {
			lost = true
		}
	}
	s.adoptObjectLocked(rec, obj)
	return append(keys, refKeys(holders)...), lost
}

// adoptObjectLocked makes a record say exactly what obj says: its holders,
// key and pool, and as written.
func (s *State) adoptObjectLocked(rec *record, obj *v1alpha1.IPAllocation) {
	for _, r := range rec.want {
		k := refKey(r)
		if m := s.bySvc[k]; m != nil {
			delete(m, rec)
			if len(m) == 0 {
				delete(s.bySvc, k)
			}
		}
	}
	rec.want = nil
	// Releases pending for Services the object does not name are moot: the
	// object no longer says they hold the address.
	for k, m := range s.releasing {
		if _, ok := m[rec]; ok && !slices.ContainsFunc(obj.Spec.Services, func(r v1alpha1.ServiceReference) bool { return refKey(r) == k }) {
			delete(m, rec)
			if len(m) == 0 {
				delete(s.releasing, k)
			}
		}
	}
	if rec.pool != obj.Spec.Pool {
		s.alloc.Release(rec.addr)
		_ = s.alloc.ReserveAny(obj.Spec.Pool, rec.addr)
		if s.OnPoolUsage != nil {
			if rec.pool != "" {
				s.OnPoolUsage(rec.pool)
			}
			s.OnPoolUsage(obj.Spec.Pool)
		}
	}
	rec.pool, rec.key = obj.Spec.Pool, obj.Spec.SharingKey
	s.reindexKeyLocked(rec)
	for _, r := range sortedRefs(obj.Spec.Services) {
		s.joinLocked(rec, r)
	}
	s.setWrittenLocked(rec, obj)
}

// record returns the record of an address, if any.
func (s *State) record(a netip.Addr) *record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recs[a]
}

// rejoin puts holders back on a record: the API says they still want its
// address, so it must not be taken from them. It returns them to reconcile.
func (s *State) rejoin(rec *record, refs []v1alpha1.ServiceReference) []svcKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range refs {
		s.joinLocked(rec, r)
	}
	return refKeys(refs)
}

// holdsAll reports whether every record still holds the Service (by UID):
// a record refreshed from the API may have gone to another Service between
// the decision and the status write.
func (s *State) holdsAll(recs []*record, k svcKey, uid types.UID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rec := range recs {
		if s.recs[rec.addr] != rec || !holdsUID(rec, k, uid) {
			return false
		}
	}
	return true
}

// Observe applies an IPAllocation seen in the cache (add or update) and
// returns the Services to reconcile. Objects the State already tracks only
// refresh what is known of them; unknown ones (made before a restart, or by
// another instance) are taken in as held.
func (s *State) Observe(obj *v1alpha1.IPAllocation) []types.NamespacedName {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.built {
		return refKeys(obj.Spec.Services)
	}
	return s.observeLocked(obj)
}

func (s *State) observeLocked(obj *v1alpha1.IPAllocation) []svcKey {
	addr, err := netip.ParseAddr(obj.Spec.Address)
	if err != nil {
		return nil
	}
	if rec := s.recs[addr]; rec != nil {
		return s.observeKnownLocked(rec, obj)
	}
	if err := s.alloc.ReserveAny(obj.Spec.Pool, addr); err != nil {
		return nil
	}
	rec := &record{addr: addr, fam: allocator.FamilyOf(addr)}
	s.recs[addr] = rec
	s.adoptObjectLocked(rec, obj)
	if s.OnPoolUsage != nil {
		s.OnPoolUsage(rec.pool)
	}
	return refKeys(obj.Spec.Services)
}

// observeKnownLocked applies an event for an address the State tracks.
func (s *State) observeKnownLocked(rec *record, obj *v1alpha1.IPAllocation) []svcKey {
	switch {
	case rec.exists && rec.uid == obj.UID:
		// Our object: learn what it says now, unless the event is older
		// than what a write of ours already returned.
		if obj.Generation >= rec.gen {
			s.setWrittenLocked(rec, obj)
		}
		return nil
	case rec.exists:
		// Another object of that name while ours exists: an event older
		// than ours (the watch delivers a deletion before a re-creation).
		return nil
	}
	// The object appeared while the record has none: our own create (its
	// event may come before the call returns), or another controller's.
	holders := sortedRefs(obj.Spec.Services)
	if sameRefs(rec.want, holders) {
		s.setWrittenLocked(rec, obj)
		return nil
	}
	// Someone else's: the object wins; the Services this record named are
	// decided again (an in-flight create of ours gets AlreadyExists).
	keys := refKeys(rec.want)
	s.adoptObjectLocked(rec, obj)
	return append(keys, refKeys(holders)...)
}

// Forget applies the deletion of an IPAllocation and returns the Services to
// reconcile: if its holders still want it, they recreate it.
func (s *State) Forget(obj *v1alpha1.IPAllocation) []types.NamespacedName {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.built {
		return refKeys(obj.Spec.Services)
	}
	addr, err := netip.ParseAddr(obj.Spec.Address)
	if err != nil {
		return nil
	}
	rec := s.recs[addr]
	if rec == nil || (rec.uid != "" && obj.UID != "" && rec.uid != obj.UID) {
		return nil
	}
	rec.exists, rec.uid, rec.rv, rec.gen, rec.written = false, "", "", 0, nil
	if len(rec.want) == 0 {
		// Deleted by us (or nobody wants it): free the address, unless a
		// write is in flight, which will finish the job.
		if rec.wmu.TryLock() {
			s.removeLocked(rec)
			rec.wmu.Unlock()
		}
		return nil
	}
	return refKeys(rec.want)
}

// sameRef reports whether two references name the same Service; an empty
// UID (written by an older version) matches any.
func sameRef(a, b v1alpha1.ServiceReference) bool {
	return a.Namespace == b.Namespace && a.Name == b.Name && (a.UID == b.UID || a.UID == "" || b.UID == "")
}

// sameRefs compares two sorted holder lists with sameRef.
func sameRefs(a, b []v1alpha1.ServiceReference) bool {
	return slices.EqualFunc(a, b, sameRef)
}
