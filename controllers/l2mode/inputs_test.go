package l2mode

import (
	"encoding/json"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/heartbeat"
	"github.com/bgplb/bgplb/internal/l2election"
	"github.com/bgplb/bgplb/l2"
)

var lanLink = l2.Link{Name: "eth0", Prefixes: []netip.Prefix{netip.MustParsePrefix("198.51.100.11/24"), netip.MustParsePrefix("2001:db8:100::11/64")}}

func node(name string, ready bool, lbls map[string]string) *corev1.Node {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}}}}
}

func alive(links ...l2.Link) heartbeat.Peer {
	return heartbeat.Peer{Alive: true, Payload: encodePayload(links)}
}

func svc(name string, local bool) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID(name)},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
	if local {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
	return s
}

func slice(nodes ...string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{}
	for _, n := range nodes {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{NodeName: ptr.To(n), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
	}
	return s
}

func alloc(addr, pool string, svcs ...string) *v1alpha1.IPAllocation {
	a := &v1alpha1.IPAllocation{Spec: v1alpha1.IPAllocationSpec{Address: addr, Pool: pool}}
	for _, s := range svcs {
		a.Spec.Services = append(a.Spec.Services, v1alpha1.ServiceReference{Namespace: "default", Name: s, UID: types.UID(s)})
	}
	return a
}

func base() Inputs {
	return Inputs{
		Self: "n1", SelfLinks: []l2.Link{lanLink}, DefaultClass: true,
		Nodes: []*corev1.Node{node("n1", true, nil), node("n2", true, map[string]string{"rack": "r2"}), node("n3", true, nil)},
		Advs:  []*v1alpha1.L2Advertisement{{ObjectMeta: metav1.ObjectMeta{Name: "lan"}, Spec: v1alpha1.L2AdvertisementSpec{IPPools: []string{"lan"}}}},
		Pools: map[string]*v1alpha1.IPPool{"lan": {ObjectMeta: metav1.ObjectMeta{Name: "lan", Labels: map[string]string{"mode": "l2"}}}},
		Allocations: []*v1alpha1.IPAllocation{
			alloc("198.51.100.200", "lan", "web"),
			alloc("2001:db8:100::200", "lan", "web"),
		},
		Services: map[types.NamespacedName]*corev1.Service{{Namespace: "default", Name: "web"}: svc("web", false)},
		Slices:   map[types.NamespacedName][]*discoveryv1.EndpointSlice{{Namespace: "default", Name: "web"}: {slice("n3")}},
		Peers:    map[string]heartbeat.Peer{"n2": alive(lanLink), "n3": alive(lanLink)},
	}
}

func owners(in Inputs) map[netip.Addr]l2election.Owner {
	d := Compute(in)
	return l2election.Elect(d.Nodes, d.Addresses)
}

var v4, v6 = netip.MustParseAddr("198.51.100.200"), netip.MustParseAddr("2001:db8:100::200")

func TestComputeEligibility(t *testing.T) {
	// Which nodes may own web's addresses, by what changes.
	tests := []struct {
		name string
		mut  func(*Inputs)
		want []string // eligible nodes for v4
	}{
		{"all three", nil, []string{"n1", "n2", "n3"}},
		{"peer dead", func(in *Inputs) {
			in.Peers["n2"] = heartbeat.Peer{Alive: false, Payload: encodePayload([]l2.Link{lanLink})}
		}, []string{"n1", "n3"}},
		{"peer never heard", func(in *Inputs) { delete(in.Peers, "n3") }, []string{"n1", "n2"}},
		{"peer's link down", func(in *Inputs) { in.Peers["n3"] = alive() }, []string{"n1", "n2"}},
		{"own link down", func(in *Inputs) { in.SelfLinks = nil }, []string{"n2", "n3"}},
		{"node NotReady", func(in *Inputs) { in.Nodes[1] = node("n2", false, nil) }, []string{"n1", "n3"}},
		{"node excluded", func(in *Inputs) { in.Nodes[2].Labels = map[string]string{excludeLabel: ""} }, []string{"n1", "n2"}},
		{"nodeSelector", func(in *Inputs) {
			in.Advs[0].Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"rack": "r2"}}
		}, []string{"n2"}},
		{"pool by label", func(in *Inputs) {
			in.Advs[0].Spec.IPPools = nil
			in.Advs[0].Spec.IPPoolSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"mode": "l2"}}
		}, []string{"n1", "n2", "n3"}},
		{"pool not selected", func(in *Inputs) { in.Advs[0].Spec.IPPools = []string{"other"} }, nil},
		{"no advertisement", func(in *Inputs) { in.Advs = nil }, nil},
		{"ETP Local: only endpoint nodes", func(in *Inputs) {
			in.Services[types.NamespacedName{Namespace: "default", Name: "web"}] = svc("web", true)
		}, []string{"n3"}},
		{"no usable endpoint: not announced", func(in *Inputs) { in.Slices = nil }, nil},
		{"Service of another class: not announced", func(in *Inputs) {
			s := svc("web", false)
			s.Spec.LoadBalancerClass = ptr.To("other.example/lb")
			in.Services[types.NamespacedName{Namespace: "default", Name: "web"}] = s
		}, nil},
		{"re-created Service (new UID): not announced", func(in *Inputs) {
			s := svc("web", false)
			s.UID = "other"
			in.Services[types.NamespacedName{Namespace: "default", Name: "web"}] = s
		}, nil},
		{"named interface the nodes lack", func(in *Inputs) { in.Advs[0].Spec.Interfaces = []v1alpha1.InterfaceName{"bond0"} }, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			if tc.mut != nil {
				tc.mut(&in)
			}
			d := Compute(in)
			var a *l2election.Address
			for i := range d.Addresses {
				if d.Addresses[i].IP == v4 {
					a = &d.Addresses[i]
				}
			}
			if tc.want == nil {
				if a != nil {
					t.Fatalf("address announced, want not")
				}
				return
			}
			if a == nil {
				t.Fatal("address not announced")
			}
			got := []string{}
			for _, n := range []string{"n1", "n2", "n3"} {
				if l2election.Eligible(d.Nodes, a, n) {
					got = append(got, n)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("eligible %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("eligible %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestDualStackServiceOnOneNode(t *testing.T) {
	o := owners(base())
	if o[v4].Node == "" || o[v4].Node != o[v6].Node {
		t.Fatalf("IPv4 on %q, IPv6 on %q: want one node for both", o[v4].Node, o[v6].Node)
	}
}

func TestSharedAddressOneOwnerForAll(t *testing.T) {
	in := base()
	a := alloc("198.51.100.201", "lan", "dns-tcp", "dns-udp")
	a.Spec.SharingKey = "dns"
	in.Allocations = []*v1alpha1.IPAllocation{a}
	for _, n := range []string{"dns-tcp", "dns-udp"} {
		in.Services[types.NamespacedName{Namespace: "default", Name: n}] = svc(n, false)
		in.Slices[types.NamespacedName{Namespace: "default", Name: n}] = []*discoveryv1.EndpointSlice{slice("n2")}
	}
	d := Compute(in)
	if len(d.Addresses) != 1 || len(d.Services[netip.MustParseAddr("198.51.100.201")]) != 2 {
		t.Fatalf("want one address held by two Services, got %+v", d)
	}
	if d.Addresses[0].Key != "sharing/dns" {
		t.Fatalf("key %q", d.Addresses[0].Key)
	}
}

func TestHeartbeatPeersAreTheSelectedNodes(t *testing.T) {
	in := base()
	in.Advs[0].Spec.NodeSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "rack", Operator: metav1.LabelSelectorOpDoesNotExist}}}
	d := Compute(in)
	if got := d.Selected; len(got) != 2 || got[0] != "n1" || got[1] != "n3" {
		t.Fatalf("selected %v, want [n1 n3]", got)
	}
	nodes := []corev1.Node{*in.Nodes[0], *in.Nodes[1], *in.Nodes[2]}
	nodes[2].Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "198.51.100.13"}, {Type: corev1.NodeInternalIP, Address: "2001:db8:100::13"}, {Type: corev1.NodeHostName, Address: "n3"}}
	pa := peerAddrs(d.Selected, nodes, 7947)
	if got, _ := json.Marshal(pa); string(got) != `{"n1":[],"n3":["198.51.100.13:7947","[2001:db8:100::13]:7947"]}` {
		t.Fatalf("peer addresses %s", got)
	}
}

func TestServiceSummary(t *testing.T) {
	o := map[netip.Addr]l2election.Owner{v4: {Node: "n2", Interfaces: []string{"eth0"}}}
	ok, reason, msg := serviceSummary([]netip.Addr{v6, v4}, o)
	if ok || reason != ReasonNoEligible || msg != "198.51.100.200 on n2 (eth0); 2001:db8:100::200 on no node (none is eligible)" {
		t.Fatalf("%v %s %q", ok, reason, msg)
	}
	if w := writerOf([]netip.Addr{v6, v4}, o, "n1"); w != "n2" {
		t.Fatalf("writer %q", w)
	}
	if w := writerOf([]netip.Addr{v6}, o, "n1"); w != "n1" {
		t.Fatalf("writer of a Service no node is eligible for: %q, want the fallback", w)
	}
	in := base()
	in.Nodes[0] = node("n1", false, nil)
	if w := fallbackWriter(Compute(in)); w != "n2" {
		t.Fatalf("fallback writer %q, want the first Ready, alive, selected node n2", w)
	}
	// No node selected at all: the first Ready node, alive or not (no
	// speaker hears the others then).
	in.Advs[0].Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"no": "such"}}
	if w := fallbackWriter(Compute(in)); w != "n2" {
		t.Fatalf("fallback writer with no node selected %q, want the first Ready node n2", w)
	}
}

func TestPeersPending(t *testing.T) {
	heard := heartbeat.Peer{Alive: true, Payload: encodePayload(nil)}
	sel := []string{"n1", "n2", "n3"}
	for _, c := range []struct {
		name     string
		selected []string
		peers    map[string]heartbeat.Peer
		want     bool
	}{
		{"alone", []string{"n1"}, nil, false},
		{"nobody selected", nil, nil, false},
		{"all heard", sel, map[string]heartbeat.Peer{"n2": heard, "n3": heard}, false},
		{"one alive, not heard yet", sel, map[string]heartbeat.Peer{"n2": heard, "n3": {Alive: true}}, true},
		{"one dead: its links do not matter", sel, map[string]heartbeat.Peer{"n2": heard, "n3": {Alive: false}}, false},
		{"just selected, not a peer yet (the first L2Advertisement)", sel, map[string]heartbeat.Peer{}, true},
		{"a peer no longer selected is not waited for", []string{"n1", "n2"}, map[string]heartbeat.Peer{"n2": heard, "n3": {Alive: true}}, false},
	} {
		if got := peersPending(c.selected, "n1", c.peers); got != c.want {
			t.Errorf("%s: peersPending = %v, want %v", c.name, got, c.want)
		}
	}
}
