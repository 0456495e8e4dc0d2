package ipam

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/types"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/allocator"
)

func (s *State) newRecordLocked(addr netip.Addr, pool, key string, ref v1alpha1.ServiceReference) *record {
	rec := &record{addr: addr, fam: allocator.FamilyOf(addr), pool: pool, key: key}
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
