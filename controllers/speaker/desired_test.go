package speaker

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp"
)

// ---- builders -------------------------------------------------------------

const thisNode = "node-a"

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func node(labels map[string]string, addrs ...corev1.NodeAddress) *corev1.Node {
	if addrs == nil {
		addrs = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.1"}}
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: thisNode, UID: "node-uid", Labels: labels},
		Status:     corev1.NodeStatus{Addresses: addrs},
	}
}

func peer(name, addr string, asn, localASN int64, mods ...func(*v1alpha1.BGPPeer)) v1alpha1.BGPPeer {
	p := v1alpha1.BGPPeer{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1alpha1.BGPPeerSpec{Address: addr, ASN: asn, LocalASN: localASN},
	}
	for _, m := range mods {
		m(&p)
	}
	return p
}

func peerNodeSelector(lbls map[string]string) func(*v1alpha1.BGPPeer) {
	return func(p *v1alpha1.BGPPeer) { p.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: lbls} }
}

func withPassword(secret, key string) func(*v1alpha1.BGPPeer) {
	return func(p *v1alpha1.BGPPeer) {
		p.Spec.PasswordSecretRef = &v1alpha1.SecretKeyReference{Name: secret, Key: key}
	}
}

func adv(name string, mods ...func(*v1alpha1.BGPAdvertisement)) v1alpha1.BGPAdvertisement {
	a := v1alpha1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, m := range mods {
		m(&a)
	}
	return a
}

func pools(names ...string) func(*v1alpha1.BGPAdvertisement) {
	return func(a *v1alpha1.BGPAdvertisement) { a.Spec.IPPools = names }
}

func poolSelector(lbls map[string]string) func(*v1alpha1.BGPAdvertisement) {
	return func(a *v1alpha1.BGPAdvertisement) {
		a.Spec.IPPoolSelector = &metav1.LabelSelector{MatchLabels: lbls}
	}
}

func toPeers(names ...string) func(*v1alpha1.BGPAdvertisement) {
	return func(a *v1alpha1.BGPAdvertisement) { a.Spec.Peers = names }
}

func advNodeSelector(lbls map[string]string) func(*v1alpha1.BGPAdvertisement) {
	return func(a *v1alpha1.BGPAdvertisement) {
		a.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: lbls}
	}
}

func communities(cs ...string) func(*v1alpha1.BGPAdvertisement) {
	return func(a *v1alpha1.BGPAdvertisement) {
		for _, c := range cs {
			a.Spec.Communities = append(a.Spec.Communities, v1alpha1.Community(c))
		}
	}
}

func largeCommunities(cs ...string) func(*v1alpha1.BGPAdvertisement) {
	return func(a *v1alpha1.BGPAdvertisement) {
		for _, c := range cs {
			a.Spec.LargeCommunities = append(a.Spec.LargeCommunities, v1alpha1.LargeCommunity(c))
		}
	}
}

func localPref(v int64) func(*v1alpha1.BGPAdvertisement) {
	return func(a *v1alpha1.BGPAdvertisement) { a.Spec.LocalPref = &v }
}

func aggregation(v4, v6 int32) func(*v1alpha1.BGPAdvertisement) {
	return func(a *v1alpha1.BGPAdvertisement) {
		a.Spec.AggregationLength = &v4
		a.Spec.AggregationLengthV6 = &v6
	}
}

func pool(name string, lbls map[string]string) *v1alpha1.IPPool {
	return &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}}
}

func alloc(addr, poolName string, svcs ...string) *v1alpha1.IPAllocation {
	a := &v1alpha1.IPAllocation{
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.AllocationName(addr)},
		Spec:       v1alpha1.IPAllocationSpec{Address: addr, Pool: poolName},
	}
	for _, s := range svcs {
		ns, name, _ := strings.Cut(s, "/")
		a.Spec.Services = append(a.Spec.Services, v1alpha1.ServiceReference{Namespace: ns, Name: name, UID: types.UID("uid-" + s)})
	}
	return a
}

func svc(key string, mods ...func(*corev1.Service)) *corev1.Service {
	ns, name, _ := strings.Cut(key, "/")
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + key)},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
	}
	for _, m := range mods {
		m(s)
	}
	return s
}

func etpLocal(s *corev1.Service) {
	s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
}

// ep describes an endpoint: node, ready, serving, terminating ("-" = nil).
type ep struct {
	node                        string
	ready, serving, terminating string
}

func tri(s string) *bool {
	switch s {
	case "y":
		return ptr.To(true)
	case "n":
		return ptr.To(false)
	}
	return nil
}

func slice(eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{}
	for _, e := range eps {
		var n *string
		if e.node != "" {
			n = ptr.To(e.node)
		}
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{"198.19.0.1"},
			NodeName:  n,
			Conditions: discoveryv1.EndpointConditions{
				Ready: tri(e.ready), Serving: tri(e.serving), Terminating: tri(e.terminating),
			},
		})
	}
	return s
}

var (
	readyHere  = ep{node: thisNode, ready: "y", serving: "y", terminating: "n"}
	readyThere = ep{node: "node-b", ready: "y", serving: "y", terminating: "n"}
)

// world is a compact description of the cluster for one case.
type world struct {
	node      *corev1.Node
	peers     []v1alpha1.BGPPeer
	advs      []v1alpha1.BGPAdvertisement
	pools     []*v1alpha1.IPPool
	allocs    []*v1alpha1.IPAllocation
	svcs      []*corev1.Service
	endpoints map[string][]*discoveryv1.EndpointSlice
	secrets   []*corev1.Secret
	prevASN   uint32
	drainAt   time.Time
	drain     time.Duration
	now       time.Time
	// noDefaultClass runs the speaker with --default-class=false.
	noDefaultClass bool
}

func (w world) inputs() Inputs {
	in := Inputs{
		Node:           w.node,
		Peers:          w.peers,
		Advertisements: w.advs,
		Pools:          map[string]*v1alpha1.IPPool{},
		Allocations:    w.allocs,
		Services:       map[types.NamespacedName]*corev1.Service{},
		EndpointSlices: map[types.NamespacedName][]*discoveryv1.EndpointSlice{},
		Secrets:        map[string]*corev1.Secret{},
		DefaultClass:   !w.noDefaultClass,
		PreviousASN:    w.prevASN,
		DrainSince:     w.drainAt,
		DrainTime:      w.drain,
		Now:            w.now,
	}
	if in.Now.IsZero() {
		in.Now = t0
	}
	for _, p := range w.pools {
		in.Pools[p.Name] = p
	}
	for _, s := range w.svcs {
		in.Services[types.NamespacedName{Namespace: s.Namespace, Name: s.Name}] = s
	}
	for k, v := range w.endpoints {
		ns, name, _ := strings.Cut(k, "/")
		in.EndpointSlices[types.NamespacedName{Namespace: ns, Name: name}] = v
	}
	for _, s := range w.secrets {
		in.Secrets[s.Name] = s
	}
	return in
}

// summary renders the paths as prefix -> peer -> attributes, e.g.
// {"192.0.2.10/32": {"r1": "c=65000:1 lc=1:2:3 lp=200"}}.
func summary(d Desired) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, p := range d.State.Paths {
		m := map[string]string{}
		for name, a := range p.Peers {
			m[name] = attrString(a)
		}
		out[p.Prefix.String()] = m
	}
	return out
}

func attrString(a bgp.Attributes) string {
	var parts []string
	if len(a.Communities) > 0 {
		cs := make([]string, len(a.Communities))
		for i, c := range a.Communities {
			cs[i] = bgp.FormatCommunity(c)
		}
		slices.Sort(cs)
		parts = append(parts, "c="+strings.Join(cs, ","))
	}
	if len(a.LargeCommunities) > 0 {
		cs := make([]string, len(a.LargeCommunities))
		for i, c := range a.LargeCommunities {
			cs[i] = c.String()
		}
		slices.Sort(cs)
		parts = append(parts, "lc="+strings.Join(cs, ","))
	}
	if a.LocalPref != nil {
		parts = append(parts, fmt.Sprintf("lp=%d", *a.LocalPref))
	}
	return strings.Join(parts, " ")
}

func peerNames(d Desired) []string {
	var out []string
	for _, p := range d.State.Peers {
		out = append(out, p.Name)
	}
	return out
}

func problemReasons(d Desired) []string {
	var out []string
	for _, p := range d.Problems {
		out = append(out, p.Kind+"/"+p.Name+":"+p.Reason)
	}
	return out
}

// base is a minimal working cluster: one router, one advertisement for
// every pool, one Service with a ready endpoint on another node holding
// 192.0.2.10.
func base() world {
	return world{
		node:   node(nil),
		peers:  []v1alpha1.BGPPeer{peer("r1", "198.51.100.1", 65001, 65000)},
		advs:   []v1alpha1.BGPAdvertisement{adv("all")},
		pools:  []*v1alpha1.IPPool{pool("p1", nil)},
		allocs: []*v1alpha1.IPAllocation{alloc("192.0.2.10", "p1", "default/web")},
		svcs:   []*corev1.Service{svc("default/web")},
		endpoints: map[string][]*discoveryv1.EndpointSlice{
			"default/web": {slice(readyThere)},
		},
		drain: 30 * time.Second,
	}
}

type paths = map[string]map[string]string

// ---- announcement rules ---------------------------------------------------

func TestComputeAnnouncements(t *testing.T) {
	one := paths{"192.0.2.10/32": {"r1": ""}}
	none := paths{}
	cases := []struct {
		name string
		edit func(w *world)
		want paths
	}{
		{"allocated Service with a ready endpoint is announced", func(w *world) {}, one},
		{"no IPAllocation: the Service's status alone never announces", func(w *world) {
			w.allocs = nil
			w.svcs[0].Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.10"}}
		}, none},
		{"allocation for a Service that does not exist", func(w *world) { w.svcs = nil }, none},
		{"Service re-created under the same name (UID differs)", func(w *world) { w.svcs[0].UID = "other" }, none},
		{"allocation without a UID matches by name", func(w *world) { w.allocs[0].Spec.Services[0].UID = "" }, one},
		{"Service no longer of type LoadBalancer", func(w *world) { w.svcs[0].Spec.Type = corev1.ServiceTypeClusterIP }, none},
		{"Service of another load balancer class", func(w *world) {
			w.svcs[0].Spec.LoadBalancerClass = ptr.To("example.com/other")
		}, none},
		{"Service of bgplb's class", func(w *world) {
			w.svcs[0].Spec.LoadBalancerClass = ptr.To(v1alpha1.LoadBalancerClass)
		}, one},
		{"Service without a class, --default-class=false", func(w *world) { w.noDefaultClass = true }, none},
		{"Service of bgplb's class, --default-class=false", func(w *world) {
			w.noDefaultClass = true
			w.svcs[0].Spec.LoadBalancerClass = ptr.To(v1alpha1.LoadBalancerClass)
		}, one},
		{"Service being deleted", func(w *world) {
			w.svcs[0].DeletionTimestamp = &metav1.Time{Time: t0}
		}, none},
		{"no endpoints at all", func(w *world) { w.endpoints = nil }, none},
		{"only not-ready endpoints", func(w *world) {
			w.endpoints["default/web"] = []*discoveryv1.EndpointSlice{slice(ep{node: "node-b", ready: "n", serving: "n", terminating: "n"})}
		}, none},
		{"ready unset means ready", func(w *world) {
			w.endpoints["default/web"] = []*discoveryv1.EndpointSlice{slice(ep{node: "node-b", ready: "-", serving: "-", terminating: "-"})}
		}, one},
		{"serving while terminating still counts", func(w *world) {
			w.endpoints["default/web"] = []*discoveryv1.EndpointSlice{slice(ep{node: "node-b", ready: "n", serving: "y", terminating: "y"})}
		}, one},
		{"terminating and no longer serving does not", func(w *world) {
			w.endpoints["default/web"] = []*discoveryv1.EndpointSlice{slice(ep{node: "node-b", ready: "n", serving: "n", terminating: "y"})}
		}, none},
		{"a ready endpoint in a second slice", func(w *world) {
			w.endpoints["default/web"] = []*discoveryv1.EndpointSlice{
				slice(ep{node: "node-b", ready: "n", serving: "n", terminating: "n"}), slice(readyThere)}
		}, one},
		{"ETP Local: ready endpoint on this node", func(w *world) {
			etpLocal(w.svcs[0])
			w.endpoints["default/web"] = []*discoveryv1.EndpointSlice{slice(readyThere, readyHere)}
		}, one},
		{"ETP Local: ready endpoints only on other nodes", func(w *world) {
			etpLocal(w.svcs[0])
		}, none},
		{"ETP Local: local endpoint not ready", func(w *world) {
			etpLocal(w.svcs[0])
			w.endpoints["default/web"] = []*discoveryv1.EndpointSlice{slice(readyThere, ep{node: thisNode, ready: "n", serving: "n", terminating: "n"})}
		}, none},
		{"ETP Local: local endpoint serving while terminating", func(w *world) {
			etpLocal(w.svcs[0])
			w.endpoints["default/web"] = []*discoveryv1.EndpointSlice{slice(ep{node: thisNode, ready: "n", serving: "y", terminating: "y"})}
		}, one},
		{"ETP Local: local endpoint terminating, not serving", func(w *world) {
			etpLocal(w.svcs[0])
			w.endpoints["default/web"] = []*discoveryv1.EndpointSlice{slice(ep{node: thisNode, ready: "n", serving: "n", terminating: "y"})}
		}, none},
		{"ETP Local: endpoint without node name does not count", func(w *world) {
			etpLocal(w.svcs[0])
			w.endpoints["default/web"] = []*discoveryv1.EndpointSlice{slice(ep{ready: "y"})}
		}, none},
		{"shared address: one of two Services wants it", func(w *world) {
			w.allocs = []*v1alpha1.IPAllocation{alloc("192.0.2.10", "p1", "default/web", "default/dns")}
			w.svcs = append(w.svcs, svc("default/dns"))
			w.endpoints["default/dns"] = nil
		}, one},
		{"shared address: the other one wants it", func(w *world) {
			w.allocs = []*v1alpha1.IPAllocation{alloc("192.0.2.10", "p1", "default/web", "default/dns")}
			w.svcs = append(w.svcs, svc("default/dns"))
			w.endpoints["default/dns"] = []*discoveryv1.EndpointSlice{slice(readyThere)}
			w.endpoints["default/web"] = nil
		}, one},
		{"shared address: neither wants it", func(w *world) {
			w.allocs = []*v1alpha1.IPAllocation{alloc("192.0.2.10", "p1", "default/web", "default/dns")}
			w.svcs = append(w.svcs, svc("default/dns"))
			w.endpoints = nil
		}, none},
		{"shared address: Local Service elsewhere, Cluster Service ready", func(w *world) {
			w.allocs = []*v1alpha1.IPAllocation{alloc("192.0.2.10", "p1", "default/web", "default/dns")}
			etpLocal(w.svcs[0])
			w.svcs = append(w.svcs, svc("default/dns"))
			w.endpoints["default/dns"] = []*discoveryv1.EndpointSlice{slice(readyThere)}
		}, one},
		{"no advertisement: allocated but not announced", func(w *world) { w.advs = nil }, none},
		{"no peer: nothing to announce to", func(w *world) { w.peers = nil }, none},
		{"advertisement for another pool", func(w *world) { w.advs = []v1alpha1.BGPAdvertisement{adv("a", pools("p2"))} }, none},
		{"advertisement naming the pool", func(w *world) { w.advs = []v1alpha1.BGPAdvertisement{adv("a", pools("p2", "p1"))} }, one},
		{"advertisement naming a deleted pool still announces its allocations", func(w *world) {
			w.pools = nil
			w.advs = []v1alpha1.BGPAdvertisement{adv("a", pools("p1"))}
		}, one},
		{"pool selector matching the pool's labels", func(w *world) {
			w.pools = []*v1alpha1.IPPool{pool("p1", map[string]string{"tier": "public"})}
			w.advs = []v1alpha1.BGPAdvertisement{adv("a", poolSelector(map[string]string{"tier": "public"}))}
		}, one},
		{"pool selector not matching", func(w *world) {
			w.pools = []*v1alpha1.IPPool{pool("p1", map[string]string{"tier": "internal"})}
			w.advs = []v1alpha1.BGPAdvertisement{adv("a", poolSelector(map[string]string{"tier": "public"}))}
		}, none},
		{"pool selector: a deleted pool's addresses by the labels their allocation recorded", func(w *world) {
			w.pools = nil
			w.allocs[0].Spec.PoolLabels = map[string]string{"tier": "public"}
			w.advs = []v1alpha1.BGPAdvertisement{adv("a", poolSelector(map[string]string{"tier": "public"}))}
		}, one},
		{"pool selector: a deleted pool recorded with other labels", func(w *world) {
			w.pools = nil
			w.allocs[0].Spec.PoolLabels = map[string]string{"tier": "internal"}
			w.advs = []v1alpha1.BGPAdvertisement{adv("a", poolSelector(map[string]string{"tier": "public"}))}
		}, none},
		{"pool selector: a deleted pool's allocation recorded no labels (an older controller)", func(w *world) {
			w.pools = nil
			w.advs = []v1alpha1.BGPAdvertisement{adv("a", poolSelector(map[string]string{"tier": "public"}))}
		}, none},
		{"pool selector: a live pool's labels win over its allocation's copy", func(w *world) {
			w.pools = []*v1alpha1.IPPool{pool("p1", map[string]string{"tier": "internal"})}
			w.allocs[0].Spec.PoolLabels = map[string]string{"tier": "public"}
			w.advs = []v1alpha1.BGPAdvertisement{adv("a", poolSelector(map[string]string{"tier": "public"}))}
		}, none},
		{"pool names and selector are a union", func(w *world) {
			w.pools = []*v1alpha1.IPPool{pool("p1", nil)}
			w.advs = []v1alpha1.BGPAdvertisement{adv("a", pools("p1"), poolSelector(map[string]string{"tier": "public"}))}
		}, one},
		{"advertisement selecting other nodes", func(w *world) {
			w.advs = []v1alpha1.BGPAdvertisement{adv("a", advNodeSelector(map[string]string{"rack": "r2"}))}
			w.node.Labels = map[string]string{"rack": "r1"}
		}, none},
		{"advertisement selecting this node", func(w *world) {
			w.advs = []v1alpha1.BGPAdvertisement{adv("a", advNodeSelector(map[string]string{"rack": "r1"}))}
			w.node.Labels = map[string]string{"rack": "r1"}
		}, one},
		{"peer not selecting this node", func(w *world) {
			w.peers = []v1alpha1.BGPPeer{peer("r1", "198.51.100.1", 65001, 65000, peerNodeSelector(map[string]string{"rack": "r2"}))}
		}, none},
		{"advertisement naming a peer that does not select this node", func(w *world) {
			w.peers = append(w.peers, peer("r2", "198.51.100.2", 65001, 65000, peerNodeSelector(map[string]string{"rack": "r2"})))
			w.advs = []v1alpha1.BGPAdvertisement{adv("a", toPeers("r2"))}
		}, none},
		{"invalid address in an allocation is skipped", func(w *world) {
			w.allocs = append(w.allocs, alloc("not-an-ip", "p1", "default/web"))
		}, one},
		{"no node object: nothing", func(w *world) { w.node = nil }, none},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := base()
			tc.edit(&w)
			got := summary(Compute(w.inputs()))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("paths = %v, want %v", got, tc.want)
			}
		})
	}
}

// ---- per-peer attributes, aggregation, families -------------------------

func TestComputeAttributesAndPrefixes(t *testing.T) {
	twoPeers := func(w *world) {
		w.peers = []v1alpha1.BGPPeer{
			peer("r1", "198.51.100.1", 65001, 65000),
			peer("r2", "198.51.100.2", 65000, 65000), // iBGP
		}
	}
	dual := func(w *world) {
		w.peers = []v1alpha1.BGPPeer{
			peer("v4", "198.51.100.1", 65001, 65000),
			peer("v6", "2001:db8::1", 65001, 65000),
		}
		w.allocs = append(w.allocs, alloc("2001:db8:1::10", "p1", "default/web"))
	}
	cases := []struct {
		name string
		edit func(w *world)
		want paths
	}{
		{"communities, large communities and local preference", func(w *world) {
			w.advs = []v1alpha1.BGPAdvertisement{adv("a", communities("65000:100", "no-export"), largeCommunities("65000:1:2"), localPref(200))}
		}, paths{"192.0.2.10/32": {"r1": "c=65000:100,no-export lc=65000:1:2 lp=200"}}},
		{"each peer gets only its advertisement's attributes", func(w *world) {
			twoPeers(w)
			w.advs = []v1alpha1.BGPAdvertisement{
				adv("to-r1", toPeers("r1"), communities("65000:1")),
				adv("to-r2", toPeers("r2"), largeCommunities("65000:2:2"), localPref(300)),
			}
		}, paths{"192.0.2.10/32": {"r1": "c=65000:1", "r2": "lc=65000:2:2 lp=300"}}},
		{"advertisement without peers goes to every selected peer", func(w *world) {
			twoPeers(w)
			w.advs = []v1alpha1.BGPAdvertisement{adv("a", communities("65000:7"))}
		}, paths{"192.0.2.10/32": {"r1": "c=65000:7", "r2": "c=65000:7"}}},
		{"two advertisements to one peer merge: union of communities, highest local preference", func(w *world) {
			twoPeers(w)
			w.advs = []v1alpha1.BGPAdvertisement{
				adv("a", toPeers("r2"), communities("65000:1"), largeCommunities("1:1:1"), localPref(100)),
				adv("b", toPeers("r2"), communities("65000:2", "65000:1"), localPref(250)),
			}
		}, paths{"192.0.2.10/32": {"r2": "c=65000:1,65000:2 lc=1:1:1 lp=250"}}},
		{"aggregation length announces the covering prefix once", func(w *world) {
			w.allocs = append(w.allocs, alloc("192.0.2.77", "p1", "default/web"))
			w.advs = []v1alpha1.BGPAdvertisement{adv("a", aggregation(24, 64))}
		}, paths{"192.0.2.0/24": {"r1": ""}}},
		{"one aggregate reached from two pools merges their attributes, and only there", func(w *world) {
			// 192.0.2.0/24 first takes pool p1's attributes, then merges
			// p2's; 192.0.3.0/24, also p1's, must not see p2's community.
			w.pools = append(w.pools, pool("p2", nil))
			w.allocs = append(w.allocs, alloc("192.0.2.200", "p2", "default/web"), alloc("192.0.3.5", "p1", "default/web"))
			w.advs = []v1alpha1.BGPAdvertisement{
				adv("a", pools("p1"), aggregation(24, 64), communities("65000:1"), localPref(100)),
				adv("b", pools("p2"), aggregation(24, 64), communities("65000:2"), localPref(200)),
			}
		}, paths{"192.0.2.0/24": {"r1": "c=65000:1,65000:2 lp=200"}, "192.0.3.0/24": {"r1": "c=65000:1 lp=100"}}},
		{"two advertisements with different lengths announce both prefixes", func(w *world) {
			twoPeers(w)
			w.advs = []v1alpha1.BGPAdvertisement{
				adv("host", toPeers("r2")),
				adv("agg", toPeers("r1"), aggregation(26, 128), communities("65000:26")),
			}
		}, paths{"192.0.2.0/26": {"r1": "c=65000:26"}, "192.0.2.10/32": {"r2": ""}}},
		{"aggregation length 0 announces a default route", func(w *world) {
			w.advs = []v1alpha1.BGPAdvertisement{adv("a", aggregation(0, 128))}
		}, paths{"0.0.0.0/0": {"r1": ""}}},
		{"IPv4 routes to IPv4 peers, IPv6 routes to IPv6 peers", dual,
			paths{"192.0.2.10/32": {"v4": ""}, "2001:db8:1::10/128": {"v6": ""}}},
		{"IPv6 aggregation length", func(w *world) {
			dual(w)
			w.advs = []v1alpha1.BGPAdvertisement{adv("a", aggregation(32, 64))}
		}, paths{"192.0.2.10/32": {"v4": ""}, "2001:db8:1::/64": {"v6": ""}}},
		{"IPv6 address with only an IPv4 peer is not announced", func(w *world) {
			w.allocs = []*v1alpha1.IPAllocation{alloc("2001:db8:1::10", "p1", "default/web")}
		}, paths{}},
		{"invalid community: the advertisement is left out, not announced without it", func(w *world) {
			twoPeers(w)
			w.advs = []v1alpha1.BGPAdvertisement{
				adv("bad", toPeers("r1"), communities("no-such-community")),
				adv("good", toPeers("r2")),
			}
		}, paths{"192.0.2.10/32": {"r2": ""}}},
		{"local preference 0 is not supported", func(w *world) {
			w.advs = []v1alpha1.BGPAdvertisement{adv("a", localPref(0))}
		}, paths{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := base()
			tc.edit(&w)
			got := summary(Compute(w.inputs()))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("paths = %v, want %v", got, tc.want)
			}
		})
	}
}

// ---- peers ---------------------------------------------------------------

func TestComputeIsDeterministic(t *testing.T) {
	w := base()
	w.peers = []v1alpha1.BGPPeer{peer("r2", "198.51.100.2", 65001, 65000), peer("r1", "198.51.100.1", 65001, 65000)}
	w.advs = []v1alpha1.BGPAdvertisement{adv("b", communities("65000:2")), adv("a", communities("65000:1"))}
	w.allocs = append(w.allocs, alloc("192.0.2.3", "p1", "default/web"), alloc("192.0.2.200", "p1", "default/web"))
	first := Compute(w.inputs())
	for range 20 {
		slices.Reverse(w.peers)
		slices.Reverse(w.advs)
		slices.Reverse(w.allocs)
		if got := Compute(w.inputs()); !reflect.DeepEqual(got.State, first.State) {
			t.Fatalf("state depends on input order:\n%+v\n%+v", got.State, first.State)
		}
	}
	var prefixes []string
	for _, p := range first.State.Paths {
		prefixes = append(prefixes, p.Prefix.String())
	}
	if want := []string{"192.0.2.3/32", "192.0.2.10/32", "192.0.2.200/32"}; !reflect.DeepEqual(prefixes, want) {
		t.Errorf("paths not sorted: %v", prefixes)
	}
}
