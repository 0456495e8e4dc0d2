package ipam

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/bgplb/bgplb/internal/allocator"
)

// PoolUsage describes who holds a pool's addresses.
type PoolUsage struct {
	Held    int
	Holders []string // up to 5 "ns/name (addr)"
	Outside []string // up to 5 addresses outside the pool's ranges
}

// Usage returns a pool's statistics and holders. It keeps only the lowest
// few addresses for the messages, so it costs O(held) without sorting.
func (s *State) Usage(pool string) (map[allocator.Family]allocator.Stats, PoolUsage) {
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
