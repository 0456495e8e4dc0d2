package speaker

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp"
)

// poolFamily is what decides how an address is announced.
type poolFamily struct {
	pool string
	v4   bool
}

// announceGroup is what the addresses of one pool and family get at one
// prefix length: the attributes towards each peer.
type announceGroup struct {
	bits  int
	peers map[string]bgp.Attributes
}

// announcedPaths decides the prefixes the node announces and the
// attributes of each towards each peer: every allocated address one of
// whose Services wants it, through every applicable advertisement
// selecting its pool.
//
// What an address gets depends only on its pool and family, so it is worked
// out once per (pool, family), and every path of that kind shares the same
// read-only map of peer attributes: at 10,000 Services, one map per path was
// most of Compute's time and memory. A prefix reached twice (aggregation)
// gets a map of its own.
func announcedPaths(in Inputs, applicable []*advertisement, active activePeers) map[netip.Prefix]map[string]bgp.Attributes {
	paths := make(map[netip.Prefix]map[string]bgp.Attributes)
	if len(applicable) == 0 {
		return paths
	}
	groups := make(map[poolFamily][]announceGroup)
	owned := make(map[netip.Prefix]bool) // paths whose map is their own
	nodeName := nodeNameOf(in.Node)
	for _, alloc := range in.Allocations {
		addr, err := netip.ParseAddr(alloc.Spec.Address)
		if err != nil {
			continue // the API server validates it; nothing sensible to announce
		}
		addr = addr.Unmap()
		if !anyServiceWants(alloc, in, nodeName) {
			continue
		}
		key := poolFamily{pool: alloc.Spec.Pool, v4: addr.Is4()}
		gs, ok := groups[key]
		if !ok {
			gs = announceGroups(applicable, active, key, in.Pools)
			groups[key] = gs
		}
		for _, g := range gs {
			if prefix, err := addr.Prefix(g.bits); err == nil {
				addPath(paths, owned, prefix, g.peers)
			}
		}
	}
	return paths
}

// addPath adds peers' attributes to the path of prefix. The first group
// reaching a prefix lends it its shared map; a second one merges into a
// copy the path then owns.
func addPath(paths map[netip.Prefix]map[string]bgp.Attributes, owned map[netip.Prefix]bool, prefix netip.Prefix, peers map[string]bgp.Attributes) {
	cur, ok := paths[prefix]
	if !ok {
		paths[prefix] = peers
		return
	}
	if !owned[prefix] {
		cur = maps.Clone(cur)
		paths[prefix], owned[prefix] = cur, true
	}
	for peer, attrs := range peers {
		if c, ok := cur[peer]; ok {
			cur[peer] = mergeAttributes(c, attrs)
		} else {
			cur[peer] = attrs
		}
	}
}

// announceGroups works out, for the addresses of one pool and family, the
// attributes every applicable advertisement selecting the pool gives them
// towards its peers of that family, merged per prefix length (advertisements
// in name order; several reaching one peer merge their attributes).
func announceGroups(applicable []*advertisement, active activePeers, key poolFamily, pools map[string]*v1alpha1.IPPool) []announceGroup {
	var out []announceGroup
	for _, a := range applicable {
		if !a.selectsPool(key.pool, pools) {
			continue
		}
		bits := a.aggLenV6
		if key.v4 {
			bits = a.aggLenV4
		}
		i := slices.IndexFunc(out, func(g announceGroup) bool { return g.bits == bits })
		for _, peer := range a.peers {
			if active.byName[peer].Address.Is4() != key.v4 {
				continue // IPv4 routes go to IPv4 sessions, IPv6 to IPv6
			}
			if i < 0 {
				out = append(out, announceGroup{bits: bits, peers: make(map[string]bgp.Attributes)})
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
