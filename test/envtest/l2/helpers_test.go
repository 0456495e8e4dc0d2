package l2_test

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/l2mode"
	"github.com/bgplb/bgplb/test/envtest/framework"
)

// --- nodes ---

const excludeLabel = "node.kubernetes.io/exclude-from-external-load-balancers"

// createNode creates the node's Node, Ready, with its loopback address as
// InternalIP (where its peers send heartbeats).
func createNode(n *speakerNode) {
	GinkgoHelper()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name, Labels: map[string]string{"kubernetes.io/hostname": n.name}}}
	Expect(k8s.Create(ctx, node)).To(Succeed())
	node.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeHostName, Address: n.name},
		{Type: corev1.NodeInternalIP, Address: n.ip},
	}
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
		Reason: "KubeletReady", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	Expect(k8s.Status().Update(ctx, node)).To(Succeed())
}

// updateNode changes a Node (labels) or its status (status: true).
func updateNode(name string, status bool, change func(*corev1.Node)) {
	GinkgoHelper()
	Eventually(func() error {
		n := &corev1.Node{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: name}, n); err != nil {
			return err
		}
		change(n)
		if status {
			return k8s.Status().Update(ctx, n)
		}
		return k8s.Update(ctx, n)
	}).Should(Succeed())
}

func setNodeLabel(name, key, value string) {
	updateNode(name, false, func(n *corev1.Node) { n.Labels[key] = value })
}

func removeNodeLabel(name, key string) {
	updateNode(name, false, func(n *corev1.Node) { delete(n.Labels, key) })
}

func setNodeReady(name string, ready bool) {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	updateNode(name, true, func(n *corev1.Node) {
		for i := range n.Status.Conditions {
			if n.Status.Conditions[i].Type == corev1.NodeReady {
				n.Status.Conditions[i].Status = st
			}
		}
	})
}

// --- pools and advertisements ---

var seq atomic.Int32

// newNamespace creates a namespace for one spec (envtest has no namespace
// controller, so deleted namespaces never go: every spec takes a new one).
func newNamespace(prefix string) string {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", prefix, seq.Add(1))}}
	Expect(k8s.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// createPool creates a pool and deletes it at the end of the spec (after
// the spec's Services, which DeferCleanup runs first).
func createPool(name, addrs string, labels map[string]string) {
	GinkgoHelper()
	p := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: v1alpha1.IPPoolSpec{Addresses: []v1alpha1.AddressRange{v1alpha1.AddressRange(addrs)}}}
	Expect(k8s.Create(ctx, p)).To(Succeed())
	DeferCleanup(func() {
		Expect(client.IgnoreNotFound(k8s.Delete(ctx, p))).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(p), &v1alpha1.IPPool{}))
		}).Should(BeTrue(), "pool %s should go", name)
	})
}

// createAdv creates an L2Advertisement and deletes it at the end of the spec.
func createAdv(name string, spec v1alpha1.L2AdvertisementSpec) {
	GinkgoHelper()
	a := &v1alpha1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	Expect(k8s.Create(ctx, a)).To(Succeed())
	DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(ctx, a))).To(Succeed()) })
}

func updateAdv(name string, change func(*v1alpha1.L2Advertisement)) {
	GinkgoHelper()
	Expect(framework.Update(ctx, k8s, client.ObjectKey{Name: name}, &v1alpha1.L2Advertisement{}, change)).To(Succeed())
}

// --- Services and endpoints ---

// svcOpt changes a Service before it is created.
type svcOpt func(*corev1.Service)

func inPool(pool string) svcOpt {
	return func(s *corev1.Service) { s.Annotations[v1alpha1.AnnotationIPPool] = pool }
}
func sharing(key string) svcOpt {
	return func(s *corev1.Service) { s.Annotations[v1alpha1.AnnotationSharingKey] = key }
}
func port(p int32) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.Ports = []corev1.ServicePort{{Name: "p", Port: p, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(p)}}
	}
}
func localTraffic() svcOpt {
	return func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal }
}

// createService creates a LoadBalancer Service of class bgplb.io/bgp with
// an EndpointSlice holding one ready endpoint on each of endpointNodes
// (none named: one endpoint on no particular node), as the EndpointSlice
// controller would for its pods. Both go at the end of the spec, and the
// cleanup waits until the address is released.
func createService(ns, name string, endpointNodes []string, opts ...svcOpt) {
	GinkgoHelper()
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{}},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			LoadBalancerClass:             ptr.To(v1alpha1.LoadBalancerClass),
			AllocateLoadBalancerNodePorts: ptr.To(false),
			Selector:                      map[string]string{"app": name},
		},
	}
	port(80)(s)
	for _, o := range opts {
		o(s)
	}
	// The endpoints first: a Service seen without them is rightly
	// reported NoEligibleNode for a moment, which would add an owner
	// change to the ones the specs count.
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-1",
			Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("p"), Port: ptr.To[int32](80), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	sl.Endpoints = endpoints(endpointNodes, true)
	Expect(k8s.Create(ctx, sl)).To(Succeed())
	DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(ctx, sl))).To(Succeed()) })
	Expect(k8s.Create(ctx, s)).To(Succeed())
	DeferCleanup(func() {
		Expect(client.IgnoreNotFound(k8s.Delete(ctx, s))).To(Succeed())
		Eventually(func() []string { return allocationsOf(ns, name) }, time.Minute).Should(BeEmpty(),
			"the address of %s/%s should be released", ns, name)
	})
}

// endpoints are one endpoint per node (pod addresses 198.19.0.x), or one
// on no node when nodes is empty.
func endpoints(nodes []string, ready bool) []discoveryv1.Endpoint {
	if len(nodes) == 0 {
		return []discoveryv1.Endpoint{{Addresses: []string{"198.19.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)}}}
	}
	out := make([]discoveryv1.Endpoint, len(nodes))
	for i, n := range nodes {
		out[i] = discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("198.19.0.%d", i+1)}, NodeName: ptr.To(n),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)}}
	}
	return out
}

// setEndpoints replaces the Service's endpoints, as pods moving would.
func setEndpoints(ns, name string, nodes []string, ready bool) {
	GinkgoHelper()
	Expect(framework.Update(ctx, k8s, client.ObjectKey{Namespace: ns, Name: name + "-1"}, &discoveryv1.EndpointSlice{},
		func(sl *discoveryv1.EndpointSlice) { sl.Endpoints = endpoints(nodes, ready) })).To(Succeed())
}

// allocationsOf lists the addresses the controller holds for the Service.
func allocationsOf(ns, name string) []string {
	GinkgoHelper()
	out, err := framework.AllocationsOf(ctx, k8s, ns, name)
	Expect(err).NotTo(HaveOccurred())
	return out
}

func getService(ns, name string) *corev1.Service {
	GinkgoHelper()
	s := &corev1.Service{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s)).To(Succeed())
	return s
}

// addressOf waits for the IPAM controller to give the Service its one
// address, and returns it.
func addressOf(ns, name string) netip.Addr {
	GinkgoHelper()
	var ip string
	Eventually(func() []corev1.LoadBalancerIngress { return getService(ns, name).Status.LoadBalancer.Ingress }).
		Should(HaveLen(1), "%s/%s should get an address", ns, name)
	ip = getService(ns, name).Status.LoadBalancer.Ingress[0].IP
	return netip.MustParseAddr(ip)
}

// --- what a user sees ---

// l2Condition is the Service's L2Announced condition as `kubectl describe`
// shows it: "Status/Reason: Message" ("<none>" when there is none).
func l2Condition(ns, name string) func() string {
	return func() string {
		s := &corev1.Service{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
			return "error: " + err.Error()
		}
		c := meta.FindStatusCondition(s.Status.Conditions, l2mode.ConditionL2Announced)
		if c == nil {
			return "<none>"
		}
		return fmt.Sprintf("%s/%s: %s", c.Status, c.Reason, c.Message)
	}
}

// announced is the condition text for an address on a node's eth0.
func announced(ip netip.Addr, node string) string {
	return fmt.Sprintf("True/Announced: %s on %s (eth0)", ip, node)
}

var ownerRE = regexp.MustCompile(`^True/Announced: \S+ on (node-[abc]) \(eth0\)$`)

// ownerOf waits until the Service's condition names one owner for its one
// address, other than the nodes in not, and that node alone answers for
// it, and returns the node.
func ownerOf(ns, name string, ip netip.Addr, not ...string) string {
	GinkgoHelper()
	owner := func() string {
		if m := ownerRE.FindStringSubmatch(l2Condition(ns, name)()); m != nil {
			return m[1]
		}
		return ""
	}
	Eventually(owner).Should(And(Not(BeEmpty()), Not(BeElementOf(not))),
		"%s/%s should be announced by a node other than %v: %s", ns, name, not, l2Condition(ns, name)())
	o := owner()
	Eventually(answering(ip)).Should(Equal([]string{o + " eth0"}), "only the owner in the condition should answer for %s", ip)
	return o
}

// expectOwner waits until the condition names node as the owner of ip and
// only node answers for it.
func expectOwner(ns, name string, ip netip.Addr, node string) {
	GinkgoHelper()
	Eventually(l2Condition(ns, name)).Should(Equal(announced(ip, node)))
	Eventually(answering(ip)).Should(Equal([]string{node + " eth0"}), "only %s should answer for %s", node, ip)
}

// answering lists "node interfaces" for every node whose responder answers
// for ip, by node name.
func answering(ip netip.Addr) func() []string {
	return func() []string {
		out := []string{}
		for _, name := range nodeNames {
			if ifs := nodes[name].resp.answers(ip); ifs != nil {
				out = append(out, name+" "+strings.Join(ifs, ","))
			}
		}
		slices.Sort(out)
		return out
	}
}

// answeredEver lists the nodes that were told to answer for ip at some
// point since they started.
func answeredEver(ip netip.Addr) []string {
	out := []string{}
	for _, name := range nodeNames {
		if nodes[name].resp.answeredEver(ip) {
			out = append(out, name)
		}
	}
	return out
}

// l2Events are the notes of the L2OwnerChanged events about a Service.
func l2Events(ns, name string) func() []string {
	return func() []string {
		evs, err := framework.EventsAbout(ctx, k8s, ns, "", name)
		if err != nil {
			return []string{"error: " + err.Error()}
		}
		out := []string{}
		for _, e := range evs {
			if e.Reason == l2mode.ReasonOwnerChanged {
				out = append(out, e.Type+": "+e.Note)
			}
		}
		slices.Sort(out)
		return out
	}
}
