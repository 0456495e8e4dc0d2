package speaker

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp"
)

// The property the reconciler relies on: whatever sequence of Service,
// endpoint, allocation, advertisement, pool and node events happens, a
// router that got the full state after each node-wide event (Apply) and
// only the table's changes after each other event (UpdatePaths) ends up
// with exactly the paths a full Compute of the same inputs gives, and so
// does the table. The per-Service runs read the Services and slices from a
// factStore fed as the reflectors would, and recompute only the Services
// it reports changed: a change it misses or misjudges shows as a path
// that differs.
func TestIncrementalMatchesCompute(t *testing.T) {
	seeds, steps := 200, 60
	if testing.Short() {
		seeds = 50
	}
	for seed := range uint64(seeds) {
		rng := rand.New(rand.NewPCG(seed, 13))
		m := newModel(rng)
		feed := newFactFeed()
		if _, err := feed.sync(m.w, rng); err != nil {
			t.Fatal(err)
		}
		d := Compute(m.w.inputs())
		tbl, router := d.table, routerOf(d.State.Paths)
		for step := range steps {
			ev := m.event()
			in := m.w.inputs()
			reported, err := feed.sync(m.w, rng)
			if err != nil {
				t.Fatalf("seed %d step %d (%s): feeding the store: %v", seed, step, ev.what, err)
			}
			if ev.global {
				d := Compute(in)
				tbl, router = d.table, routerOf(d.State.Paths)
			} else {
				update(tbl, in, feed.store, reported, ev.allocations)
				c := tbl.flush()
				if err := applyChanges(router, c); err != nil {
					t.Fatalf("seed %d step %d (%s): %v", seed, step, ev.what, err)
				}
			}
			want := Compute(in).State.Paths
			in.source = feed.store
			if got := Compute(in).State.Paths; !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d step %d (%s): Compute from the store's facts gives\n%v\nfrom the objects\n%v", seed, step, ev.what, got, want)
			}
			if got := pathsOf(router); !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d step %d (%s): the router has\n%v\nfull Compute gives\n%v", seed, step, ev.what, got, want)
			}
			if got := tbl.announcedPaths(); !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d step %d (%s): the table has\n%v\nfull Compute gives\n%v", seed, step, ev.what, got, want)
			}
		}
	}
}

func routerOf(paths []bgp.Path) map[netip.Prefix]map[string]bgp.Attributes {
	r := make(map[netip.Prefix]map[string]bgp.Attributes, len(paths))
	for _, p := range paths {
		r[p.Prefix] = p.Peers
	}
	return r
}

// applyChanges applies UpdatePaths' arguments to a router, refusing what
// a correct delta never contains.
func applyChanges(r map[netip.Prefix]map[string]bgp.Attributes, c tableChanges) error {
	added := 0
	for _, p := range c.upsert {
		old, ok := r[p.Prefix]
		if !ok {
			added++
		} else if samePeers(old, p.Peers) {
			return fmt.Errorf("upsert of %v without a change", p.Prefix)
		}
		r[p.Prefix] = p.Peers
	}
	for _, prefix := range c.withdraw {
		if _, ok := r[prefix]; !ok {
			return fmt.Errorf("withdrawal of %v, which is not announced", prefix)
		}
		delete(r, prefix)
	}
	if added != c.added {
		return fmt.Errorf("%d new paths counted as %d", added, c.added)
	}
	return nil
}

func pathsOf(r map[netip.Prefix]map[string]bgp.Attributes) []bgp.Path {
	out := make([]bgp.Path, 0, len(r))
	for prefix, peers := range r {
		out = append(out, bgp.Path{Prefix: prefix, Peers: peers})
	}
	slices.SortFunc(out, func(a, b bgp.Path) int { return comparePrefix(a.Prefix, b.Prefix) })
	return out
}

// model is a small random cluster: few addresses (so aggregates have
// several members, of several pools), few Services (so addresses are
// shared), several advertisements.
type model struct {
	rng  *rand.Rand
	w    world
	uids int
}

// modelEvent is what one random step changed: node-wide, or these Services
// (by namespace/name) and allocations (by name).
type modelEvent struct {
	what        string
	global      bool
	services    []string
	allocations []string
}

var (
	modelAddrs = []string{
		"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.130", "198.51.100.7", "198.51.100.8",
		"2001:db8::1", "2001:db8::2", "2001:db8:0:1::1", "2001:db8:1::9",
	}
	modelServices = []string{"a/web", "a/api", "b/web", "b/dns", "c/db"}
	modelPools    = []string{"p1", "p2", "p3"}
)

func newModel(rng *rand.Rand) *model {
	m := &model{rng: rng}
	m.w = world{
		node: node(map[string]string{"rack": "r1"}),
		peers: []v1alpha1.BGPPeer{
			peer("r1", "198.51.100.1", 65001, 65000),
			peer("r2", "198.51.100.2", 65000, 65000),
			peer("r6", "2001:db8::ff", 65001, 65000),
			peer("rack2", "198.51.100.3", 65001, 65000, peerNodeSelector(map[string]string{"rack": "r2"})),
		},
		pools:     []*v1alpha1.IPPool{pool("p1", nil), pool("p2", map[string]string{"tier": "public"}), pool("p3", nil)},
		endpoints: map[string][]*discoveryv1.EndpointSlice{},
		drain:     30e9,
	}
	for range 3 {
		m.w.advs = append(m.w.advs, m.advertisement(fmt.Sprintf("adv%d", len(m.w.advs))))
	}
	for range 6 {
		m.serviceEvent()
		m.endpointEvent()
		m.allocationEvent()
	}
	return m
}

func (m *model) pick(xs []string) string { return xs[m.rng.IntN(len(xs))] }

func (m *model) event() modelEvent {
	switch n := m.rng.IntN(20); {
	case n < 5:
		return m.serviceEvent()
	case n < 11:
		return m.endpointEvent()
	case n < 17:
		return m.allocationEvent()
	case n < 19:
		return m.advertisementEvent()
	default:
		return m.poolOrNodeEvent()
	}
}

// serviceEvent creates, deletes, re-creates or edits one Service.
func (m *model) serviceEvent() modelEvent {
	key := m.pick(modelServices)
	i := slices.IndexFunc(m.w.svcs, func(s *corev1.Service) bool { return s.Namespace+"/"+s.Name == key })
	ev := modelEvent{services: []string{key}}
	if i < 0 {
		m.uids++
		s := svc(key)
		if m.rng.IntN(3) > 0 { // mostly the UID the allocations record
			s.UID = types.UID(fmt.Sprintf("uid-%s-%d", key, m.uids))
			if m.rng.IntN(2) == 0 {
				s.UID = types.UID("uid-" + key)
			}
		}
		m.w.svcs = append(m.w.svcs, s)
		ev.what = "create Service " + key
		return ev
	}
	s := m.w.svcs[i].DeepCopy()
	switch m.rng.IntN(6) {
	case 0:
		m.w.svcs = slices.Delete(m.w.svcs, i, i+1)
		ev.what = "delete Service " + key
		return ev
	case 1:
		if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
			s.Spec.Type = corev1.ServiceTypeClusterIP
		} else {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
		}
	case 2:
		s.Spec.LoadBalancerClass = [](*string){nil, ptr.To(v1alpha1.LoadBalancerClass), ptr.To("example.com/other")}[m.rng.IntN(3)]
	case 3:
		if s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
		} else {
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}
	case 4:
		s.DeletionTimestamp = &metav1.Time{Time: t0}
	default:
		s.UID = types.UID("uid-" + key)
	}
	m.w.svcs[i] = s
	ev.what = "edit Service " + key
	return ev
}

// endpointEvent gives one Service new EndpointSlices (or none).
func (m *model) endpointEvent() modelEvent {
	key := m.pick(modelServices)
	eps := []ep{readyHere, readyThere,
		{node: "node-b", ready: "n", serving: "n", terminating: "n"},
		{node: thisNode, ready: "n", serving: "y", terminating: "y"},
		{node: thisNode, ready: "n", serving: "n", terminating: "n"}}
	var slices []*discoveryv1.EndpointSlice
	for range m.rng.IntN(3) {
		var s []ep
		for range 1 + m.rng.IntN(2) {
			s = append(s, eps[m.rng.IntN(len(eps))])
		}
		slices = append(slices, slice(s...))
	}
	m.w.endpoints[key] = slices
	return modelEvent{what: fmt.Sprintf("endpoints of %s: %d slices", key, len(slices)), services: []string{key}}
}

// allocationEvent creates, replaces or deletes the allocation of one address.
func (m *model) allocationEvent() modelEvent {
	addr := m.pick(modelAddrs)
	name := v1alpha1.AllocationName(addr)
	ev := modelEvent{allocations: []string{name}}
	i := slices.IndexFunc(m.w.allocs, func(a *v1alpha1.IPAllocation) bool { return a.Name == name })
	if i >= 0 && m.rng.IntN(3) == 0 {
		m.w.allocs = slices.Delete(m.w.allocs, i, i+1)
		ev.what = "delete allocation " + addr
		return ev
	}
	holders := []string{m.pick(modelServices)}
	if m.rng.IntN(3) == 0 {
		holders = append(holders, m.pick(modelServices))
	}
	a := alloc(addr, m.pick(modelPools), holders...)
	if m.rng.IntN(5) == 0 {
		a.Spec.Services[0].UID = ""
	}
	if i >= 0 {
		m.w.allocs[i] = a
	} else {
		m.w.allocs = append(m.w.allocs, a)
	}
	ev.what = fmt.Sprintf("allocation %s (%s) for %v", addr, a.Spec.Pool, holders)
	return ev
}

func (m *model) advertisement(name string) v1alpha1.BGPAdvertisement {
	var mods []func(*v1alpha1.BGPAdvertisement)
	switch m.rng.IntN(3) {
	case 0:
		mods = append(mods, pools(m.pick(modelPools)))
	case 1:
		mods = append(mods, poolSelector(map[string]string{"tier": "public"}))
	}
	if m.rng.IntN(2) == 0 {
		mods = append(mods, aggregation([]int32{32, 24, 25, 16}[m.rng.IntN(4)], []int32{128, 64, 48}[m.rng.IntN(3)]))
	}
	if m.rng.IntN(2) == 0 {
		mods = append(mods, communities(m.pick([]string{"65000:1", "65000:2", "no-export"}), m.pick([]string{"65000:3", "65000:1"})))
	}
	if m.rng.IntN(3) == 0 {
		mods = append(mods, largeCommunities("65000:1:"+m.pick([]string{"1", "2"})))
	}
	if m.rng.IntN(3) == 0 {
		mods = append(mods, localPref(int64(100+m.rng.IntN(3)*50)))
	}
	if m.rng.IntN(3) == 0 {
		mods = append(mods, toPeers(m.pick([]string{"r1", "r2", "r6", "rack2"})))
	}
	return adv(name, mods...)
}

// advertisementEvent adds, replaces or removes an advertisement.
func (m *model) advertisementEvent() modelEvent {
	name := fmt.Sprintf("adv%d", m.rng.IntN(4))
	i := slices.IndexFunc(m.w.advs, func(a v1alpha1.BGPAdvertisement) bool { return a.Name == name })
	switch {
	case i >= 0 && m.rng.IntN(3) == 0:
		m.w.advs = slices.Delete(slices.Clone(m.w.advs), i, i+1)
		return modelEvent{what: "delete " + name, global: true}
	case i >= 0:
		m.w.advs = slices.Clone(m.w.advs)
		m.w.advs[i] = m.advertisement(name)
	default:
		m.w.advs = append(slices.Clone(m.w.advs), m.advertisement(name))
	}
	return modelEvent{what: "advertisement " + name, global: true}
}

// poolOrNodeEvent relabels a pool or the node.
func (m *model) poolOrNodeEvent() modelEvent {
	if m.rng.IntN(2) == 0 {
		i := m.rng.IntN(len(m.w.pools))
		p := m.w.pools[i].DeepCopy()
		if p.Labels["tier"] == "public" {
			p.Labels = nil
		} else {
			p.Labels = map[string]string{"tier": "public"}
		}
		m.w.pools = slices.Clone(m.w.pools)
		m.w.pools[i] = p
		return modelEvent{what: "relabel pool " + p.Name, global: true}
	}
	n := m.w.node.DeepCopy()
	n.Labels = map[string]string{"rack": m.pick([]string{"r1", "r2"})}
	m.w.node = n
	return modelEvent{what: "node in " + n.Labels["rack"], global: true}
}
