package speaker

import (
	"maps"
	"net/netip"
	"slices"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp"
)

// pathTable is the node's announced paths, kept per IPAllocation so that a
// change to one Service, its EndpointSlices or its IPAllocation recomputes
// only the paths of that Service's addresses (set), and hands the bgp
// package only what changed (flush). Compute builds it whole; the
// reconciler then keeps it up to date one allocation at a time.
//
// Everything node-wide (peers, advertisements, pool labels, the drain phase)
// is fixed when the table is built: when one of those changes, the
// reconciler builds a new table with Compute.
//
// An aggregate prefix (aggregationLength) counts its members per announce
// group: it stays while one of them is announced and goes with the last,
// and its attributes change only when the set of groups reaching it does.
type pathTable struct {
	nodeName     string
	defaultClass bool
	// applicable advertisements; none when the node has none, or once its
	// drain is over: then nothing is announced.
	applicable []*advertisement
	active     activePeers
	pools      map[string]*v1alpha1.IPPool

	// groups are worked out once per (pool, family), on first use.
	groups map[poolFamily][]*announceGroup
	// members says what each allocation (by name) contributes now.
	members map[string][]member
	paths   map[netip.Prefix]*tablePath
	// touched are the prefixes whose groups changed since the last flush
	// (each once: tablePath.touched). A slice, not a map: iterating a map
	// costs its capacity, and the first flush of Compute's table leaves it
	// as large as the table.
	touched []netip.Prefix
	buf     []member // scratch for set
}

// member is one prefix an allocation contributes to, through one group.
type member struct {
	prefix netip.Prefix
	group  *announceGroup
}

// tablePath is one prefix of the table.
type tablePath struct {
	// groups are the distinct announce groups reaching the prefix, with
	// how many allocations reach it through each: one for a /32 or /128,
	// possibly several for an aggregate.
	groups []groupCount
	// peers is what was last flushed: the only group's own read-only map,
	// or a merge of several groups' maps that the path owns.
	peers map[string]bgp.Attributes
	// announced: flushed at least once, so the caller has the path.
	announced bool
	// touched: in pathTable.touched.
	touched bool
}

type groupCount struct {
	group *announceGroup
	n     int
}

// newPathTable returns an empty table for the node-wide decisions of one
// Compute: applicable is nil when nothing may be announced.
func newPathTable(nodeName string, defaultClass bool, applicable []*advertisement, active activePeers, pools map[string]*v1alpha1.IPPool) *pathTable {
	return &pathTable{
		nodeName:     nodeName,
		defaultClass: defaultClass,
		applicable:   applicable,
		active:       active,
		pools:        pools,
		groups:       make(map[poolFamily][]*announceGroup),
		members:      make(map[string][]member),
		paths:        make(map[netip.Prefix]*tablePath),
	}
}

// set recomputes what the allocation called name contributes (alloc nil:
// it is gone) from the Services it names in src, and records which
// prefixes that changes. Its cost does not depend on the table's size.
func (t *pathTable) set(name string, alloc *v1alpha1.IPAllocation, src serviceSource) {
	next := t.contribution(alloc, src, t.buf[:0])
	t.buf = next[:0]
	old := t.members[name]
	if slices.Equal(old, next) {
		return
	}
	for _, m := range old {
		t.unref(m)
	}
	for _, m := range next {
		t.ref(m)
	}
	if len(next) == 0 {
		delete(t.members, name)
	} else {
		t.members[name] = slices.Clone(next)
	}
}

// contribution appends the (prefix, group) pairs an allocation is
// announced with: none unless one of its Services wants it
// (anyServiceWants), else one per prefix length the advertisements
// selecting its pool (matchPool: a deleted pool by the labels the
// allocation recorded) give addresses of its family.
func (t *pathTable) contribution(alloc *v1alpha1.IPAllocation, src serviceSource, buf []member) []member {
	if alloc == nil || len(t.applicable) == 0 {
		return buf
	}
	addr, err := netip.ParseAddr(alloc.Spec.Address)
	if err != nil {
		return buf // the API server validates it; nothing sensible to announce
	}
	addr = addr.Unmap()
	if !anyServiceWants(alloc, src, t.defaultClass) {
		return buf
	}
	m := matchPool(alloc, t.pools)
	key := poolFamily{pool: m.key, v4: addr.Is4()}
	gs, ok := t.groups[key]
	if !ok {
		gs = announceGroups(t.applicable, t.active, m, key.v4)
		t.groups[key] = gs
	}
	for _, g := range gs {
		if prefix, err := addr.Prefix(g.bits); err == nil {
			buf = append(buf, member{prefix: prefix, group: g})
		}
	}
	return buf
}

func (t *pathTable) ref(m member) {
	p := t.paths[m.prefix]
	if p == nil {
		p = &tablePath{}
		t.paths[m.prefix] = p
	}
	if i := p.groupIndex(m.group); i >= 0 {
		p.groups[i].n++
		return
	}
	p.groups = append(p.groups, groupCount{group: m.group, n: 1})
	t.touch(m.prefix, p)
}

func (t *pathTable) unref(m member) {
	p := t.paths[m.prefix]
	i := p.groupIndex(m.group)
	if p.groups[i].n--; p.groups[i].n > 0 {
		return // another allocation keeps the aggregate
	}
	p.groups = slices.Delete(p.groups, i, i+1)
	t.touch(m.prefix, p)
}

func (t *pathTable) touch(prefix netip.Prefix, p *tablePath) {
	if !p.touched {
		p.touched = true
		t.touched = append(t.touched, prefix)
	}
}

func (p *tablePath) groupIndex(g *announceGroup) int {
	return slices.IndexFunc(p.groups, func(gc groupCount) bool { return gc.group == g })
}

// tableChanges is what one flush hands the bgp package.
type tableChanges struct {
	// upsert are new paths and paths whose attributes changed, by prefix.
	upsert []bgp.Path
	// withdraw are prefixes no longer announced, in order.
	withdraw []netip.Prefix
	// added counts the paths of upsert that are new.
	added int
}

// flush returns the changes since the last flush and marks them as handed
// over. Its cost is proportional to the number of prefixes touched.
func (t *pathTable) flush() tableChanges {
	var c tableChanges
	for _, prefix := range t.touched {
		p := t.paths[prefix]
		p.touched = false
		if len(p.groups) == 0 {
			delete(t.paths, prefix)
			if p.announced {
				c.withdraw = append(c.withdraw, prefix)
			}
			continue
		}
		peers := p.merged()
		if p.announced && samePeers(peers, p.peers) {
			p.peers = peers
			continue
		}
		if !p.announced {
			c.added++
		}
		p.peers, p.announced = peers, true
		c.upsert = append(c.upsert, bgp.Path{Prefix: prefix, Peers: peers})
	}
	t.touched = t.touched[:0]
	if cap(t.touched) > 1024 {
		t.touched = nil // after a bulk change, do not keep its peak
	}
	slices.SortFunc(c.upsert, func(a, b bgp.Path) int { return comparePrefix(a.Prefix, b.Prefix) })
	slices.SortFunc(c.withdraw, comparePrefix)
	return c
}

// merged is what the path's groups give it towards each peer: the only
// group's shared map, or, for an aggregate several groups reach, a map of
// its own merging their attributes (mergeAttributes: commutative, so the
// order the groups came in does not matter).
func (p *tablePath) merged() map[string]bgp.Attributes {
	if len(p.groups) == 1 {
		return p.groups[0].group.peers
	}
	m := maps.Clone(p.groups[0].group.peers)
	for _, gc := range p.groups[1:] {
		for peer, attrs := range gc.group.peers {
			if cur, ok := m[peer]; ok {
				m[peer] = mergeAttributes(cur, attrs)
			} else {
				m[peer] = attrs
			}
		}
	}
	return m
}

// announcedPaths returns the table's flushed paths in prefix order.
func (t *pathTable) announcedPaths() []bgp.Path {
	out := make([]bgp.Path, 0, len(t.paths))
	for prefix, p := range t.paths {
		if p.announced {
			out = append(out, bgp.Path{Prefix: prefix, Peers: p.peers})
		}
	}
	slices.SortFunc(out, func(a, b bgp.Path) int { return comparePrefix(a.Prefix, b.Prefix) })
	return out
}

// size is the number of flushed paths.
func (t *pathTable) size() int { return len(t.paths) }

// tableDiff counts the paths a full run adds, changes and removes going
// from the old table (nil: none) to the new one.
func tableDiff(old, cur *pathTable) (added, changed, removed int) {
	var before map[netip.Prefix]*tablePath
	if old != nil {
		before = old.paths
	}
	for prefix, p := range cur.paths {
		switch o, ok := before[prefix]; {
		case !ok:
			added++
		case !samePeers(o.peers, p.peers):
			changed++
		}
	}
	for prefix := range before {
		if _, ok := cur.paths[prefix]; !ok {
			removed++
		}
	}
	return added, changed, removed
}
