package ipam

import (
	"net/netip"
	"slices"

	"github.com/bgplb/bgplb/internal/allocator"
)

// maxListed bounds the addresses a pool condition message names.
const maxListed = 5

// Usage returns a pool's statistics and up to maxListed of the addresses it
// holds outside its ranges (lowest first), for the pool's status. It keeps
// only the lowest few, so it costs O(held) without sorting.
func (s *State) Usage(pool string) (map[allocator.Family]allocator.Stats, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var outside []*record // the lowest maxListed, sorted
	for _, rec := range s.recs {
		if rec.pool != pool || s.alloc.InPool(pool, rec.addr) {
			continue
		}
		i, _ := slices.BinarySearchFunc(outside, rec.addr, func(r *record, a netip.Addr) int { return r.addr.Compare(a) })
		if i >= maxListed {
			continue
		}
		outside = slices.Insert(outside, i, rec)
		if len(outside) > maxListed {
			outside = outside[:maxListed]
		}
	}
	out := make([]string, len(outside))
	for i, rec := range outside {
		out[i] = rec.addr.String()
	}
	return s.alloc.Stats(pool), out
}

// HeldUnder counts the addresses held under a pool's name, whether or not
// the pool still exists.
func (s *State) HeldUnder(pool string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, rec := range s.recs {
		if rec.pool == pool {
			n++
		}
	}
	return n
}
