package speaker

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/bgplb/bgplb/bgp"
)

// poolFamily is what decides how an address is announced: what
// advertisements select it by (pool is poolMatch.key: its pool's name, and
// a deleted pool's recorded labels) and its family.
type poolFamily struct {
	pool string
	v4   bool
}

// announceGroup is what the addresses of one pool and family get at one
// prefix length: the attributes towards each peer. Every path of a group
// shares its read-only peers map: at 10,000 Services, one map per path was
// most of Compute's time and memory. The table (table.go) tells groups
// apart by pointer.
type announceGroup struct {
	bits  int
	peers map[string]bgp.Attributes
}

// announceGroups works out, for the addresses of one pool (as m describes
// it: see matchPool) and family, the attributes every applicable
// advertisement selecting the pool gives them towards its peers of that
// family, merged per prefix length (advertisements in name order; several
// reaching one peer merge their attributes).
func announceGroups(applicable []*advertisement, active activePeers, m poolMatch, v4 bool) []*announceGroup {
	var out []*announceGroup
	for _, a := range applicable {
		if !a.selectsMatch(m) {
			continue
		}
		bits := a.aggLenV6
		if v4 {
			bits = a.aggLenV4
		}
		i := slices.IndexFunc(out, func(g *announceGroup) bool { return g.bits == bits })
		for _, peer := range a.peers {
			if active.byName[peer].Address.Is4() != v4 {
				continue // IPv4 routes go to IPv4 sessions, IPv6 to IPv6
			}
			if i < 0 {
				out = append(out, &announceGroup{bits: bits, peers: make(map[string]bgp.Attributes)})
				i = len(out) - 1
			}
			m := out[i].peers
			if cur, ok := m[peer]; ok {
				m[peer] = mergeAttributes(cur, a.attrs)
			} else {
				m[peer] = a.attrs
			}
		}
	}
	return out
}

func comparePrefix(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}
