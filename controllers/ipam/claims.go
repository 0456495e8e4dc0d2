package ipam

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bgplb/bgplb/controllers/internal/ownership"
)

// Claims protect addresses that Services already show in their status when
// the controller starts but that no IPAllocation records: installed over
// another implementation (MetalLB), or restored from a backup. Until such a
// Service is decided (and adopts its address), its address is reserved in
// the allocator, so a Service decided first (new, or pending) cannot be
// handed it: the order in which the first reconciles run does not decide
// who keeps an address (invariant 1).

// ShownAddrs is what a Service's status shows, for ClaimShown.
type ShownAddrs struct {
	Key   types.NamespacedName
	Addrs []netip.Addr
}

// ShownBy lists the status addresses of the Services bgplb handles.
func ShownBy(svcs []corev1.Service, defaultClass bool) []ShownAddrs {
	var out []ShownAddrs
	for i := range svcs {
		svc := &svcs[i]
		if !ownership.Qualifies(svc, defaultClass) {
			continue
		}
		if addrs := IngressAddrs(svc); len(addrs) > 0 {
			out = append(out, ShownAddrs{Key: types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}, Addrs: addrs})
		}
	}
	return out
}

// claimShownLocked reserves, for each Service, the status addresses no
// record holds, in the first valid pool containing them (an address in no
// pool is not protected: the Service cannot keep it anyway). Services that
// share an address all claim it; the first decided adopts it and the others
// join it as sharers. It returns how many addresses were claimed.
func (s *State) claimShownLocked(shown []ShownAddrs) int {
	n := 0
	for _, sh := range shown {
		for _, a := range sh.Addrs {
			if s.recs[a] != nil {
				continue
			}
			if owners, ok := s.claims[a]; ok {
				if !slices.Contains(owners, sh.Key) {
					s.claims[a] = append(owners, sh.Key)
					s.claimsBy[sh.Key] = append(s.claimsBy[sh.Key], a)
				}
				continue
			}
			for _, pool := range s.alloc.PoolsContaining(a) {
				if p := s.byNam[pool]; p == nil || p.Invalid != "" || p.Deleting {
					continue
				}
				if s.alloc.Reserve(pool, a) == nil {
					s.claims[a] = []svcKey{sh.Key}
					s.claimsBy[sh.Key] = append(s.claimsBy[sh.Key], a)
					n++
					break
				}
			}
		}
	}
	return n
}

// unclaimLocked frees an address the Service itself claimed, just before
// it adopts it; the other claimants then find it held and may join it.
func (s *State) unclaimLocked(a netip.Addr, k svcKey) {
	if slices.Contains(s.claims[a], k) {
		s.alloc.Release(a)
		delete(s.claims, a)
	}
}

// claimedByOtherLocked returns a Service that claims a, if k does not.
func (s *State) claimedByOtherLocked(a netip.Addr, k svcKey) (svcKey, bool) {
	owners := s.claims[a]
	if len(owners) == 0 || slices.Contains(owners, k) {
		return svcKey{}, false
	}
	return owners[0], true
}

// dropClaimsLocked ends a decided Service's claims: an address no other
// claimant wants and nobody adopted goes back to its pool, and pending
// Services may use it.
func (s *State) dropClaimsLocked(k svcKey) {
	freed := false
	for _, a := range s.claimsBy[k] {
		owners := s.claims[a]
		if !slices.Contains(owners, k) {
			continue // adopted (unclaimed) already
		}
		owners = slices.DeleteFunc(slices.Clone(owners), func(o svcKey) bool { return o == k })
		if len(owners) > 0 {
			s.claims[a] = owners
			continue
		}
		delete(s.claims, a)
		if s.recs[a] == nil {
			s.alloc.Release(a)
			freed = true
		}
	}
	delete(s.claimsBy, k)
	if freed {
		s.retryPendingLocked()
	}
}
