package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/test/lab"
	"github.com/bgplb/bgplb/test/labcluster"
)

var ctx = context.Background()

// servicePort is the port every suite Service and its node servers use.
const servicePort = 80

// createService creates a LoadBalancer Service in the suite namespace with
// ready endpoints on opts.Backends (all nodes when nil), waits until it has
// want addresses, and deletes it (waiting for the routers to drop it) when
// the spec ends.
func createService(opts labcluster.ServiceOptions, want int) (*corev1.Service, []netip.Addr) {
	GinkgoHelper()
	opts.Namespace = testNS
	opts.Port = servicePort
	svc, err := cluster.CreateService(ctx, opts)
	Expect(err).NotTo(HaveOccurred())
	var addrs []netip.Addr
	DeferCleanup(func() {
		Expect(cluster.DeleteService(ctx, svc)).To(Succeed())
		for _, a := range addrs {
			expectWithdrawn(a)
		}
	})
	addrs = waitAddresses(svc, want)
	return svc, addrs
}

// waitAddresses waits until the Service's status holds n addresses.
func waitAddresses(svc *corev1.Service, n int) []netip.Addr {
	GinkgoHelper()
	var addrs []netip.Addr
	Eventually(func(g Gomega) {
		cur := &corev1.Service{}
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(svc), cur)).To(Succeed())
		addrs = labcluster.ServiceAddresses(cur)
		g.Expect(addrs).To(HaveLen(n), "status.loadBalancer.ingress of %s/%s; conditions %+v",
			svc.Namespace, svc.Name, cur.Status.Conditions)
	}).Should(Succeed())
	return addrs
}

// serve makes nodes answer HTTP on addr:servicePort (standing in for
// kube-proxy and a pod) until the spec ends.
func serve(addr netip.Addr, on ...string) {
	GinkgoHelper()
	closeAll, err := cluster.Serve(addr, servicePort, on...)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(closeAll)
}

// viewOf is what router r holds for addr, next hops named by node.
func viewOf(r *lab.Router, addr netip.Addr) (labcluster.RouteView, error) {
	return labcluster.ViewOf(r, addr, cluster.NodeOf)
}

func sorted(ss ...string) []string {
	out := slices.Clone(ss)
	if out == nil {
		out = []string{}
	}
	slices.Sort(out)
	return out
}

// expectAnnounced waits until both routers hold addr from exactly the
// given nodes: one BGP path per node with that node's address on the
// router's LAN as next hop, and a kernel route with one next hop per node.
func expectAnnounced(addr netip.Addr, from ...string) {
	GinkgoHelper()
	want := sorted(from...)
	for _, r := range routers {
		wantHops := cluster.NextHops(r.Name, addr, from...)
		Eventually(func(g Gomega) {
			v, err := viewOf(r, addr)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(labcluster.PathNextHops(v.Paths)).To(Equal(wantHops), "%s: BGP next hops of %s (paths %+v)", r.Name, addr, v.Paths)
			g.Expect(v.Kernel).To(Equal(want), "%s: kernel next hops of %s", r.Name, addr)
		}).Should(Succeed())
	}
}

// expectWithdrawn waits until neither router has a BGP path or kernel
// route for addr.
func expectWithdrawn(addr netip.Addr) {
	GinkgoHelper()
	for _, r := range routers {
		Eventually(func(g Gomega) {
			v, err := viewOf(r, addr)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(v.Paths).To(BeEmpty(), "%s: BGP paths of %s", r.Name, addr)
			g.Expect(v.Kernel).To(BeEmpty(), "%s: kernel route of %s", r.Name, addr)
		}).Should(Succeed())
	}
}

// expectSessionsUp waits until each router has an Established session
// with every node in both families: the state every spec starts from.
func expectSessionsUp() {
	GinkgoHelper()
	for _, r := range routers {
		var want []string
		for _, n := range nodes {
			want = append(want, cluster.NextHop(n, r.Name, netip.MustParseAddr("192.0.2.0")).String(),
				cluster.NextHop(n, r.Name, netip.MustParseAddr("2001:db8::")).String())
		}
		Eventually(func(g Gomega) {
			nbrs, err := labcluster.Neighbors(r)
			g.Expect(err).NotTo(HaveOccurred())
			for _, a := range want {
				g.Expect(nbrs).To(HaveKeyWithValue(a, HaveField("State", "Established")), "%s: session with %s", r.Name, a)
			}
		}, 2*time.Minute).Should(Succeed())
	}
}

// answers sends n HTTP requests from the client, each on a new
// connection, to addr and counts which node answered. Every one must
// succeed.
func answers(addr netip.Addr, n int) map[string]int {
	GinkgoHelper()
	c, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	counts, err := lc.CountAnswers(c, lab.ServiceURL(addr, servicePort), n)
	Expect(err).NotTo(HaveOccurred(), "answers so far: %v", counts)
	return counts
}

// updatePeer changes a BGPPeer's spec and puts the original back when
// the spec ends.
func updatePeer(name string, mutate func(*v1alpha1.BGPPeerSpec)) {
	GinkgoHelper()
	orig := &v1alpha1.BGPPeer{}
	Expect(k8s.Get(ctx, types.NamespacedName{Name: name}, orig)).To(Succeed())
	DeferCleanup(func() {
		Expect(setPeerSpec(name, func(s *v1alpha1.BGPPeerSpec) { *s = *orig.Spec.DeepCopy() })).To(Succeed())
	})
	Expect(setPeerSpec(name, mutate)).To(Succeed())
}

func setPeerSpec(name string, mutate func(*v1alpha1.BGPPeerSpec)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p := &v1alpha1.BGPPeer{}
		if err := k8s.Get(ctx, types.NamespacedName{Name: name}, p); err != nil {
			return err
		}
		mutate(&p.Spec)
		return k8s.Update(ctx, p)
	})
}

// labelNode sets (value != nil) or removes a label on a Node, and undoes
// it when the spec ends.
func labelNode(node, key string, value *string) {
	GinkgoHelper()
	n := &corev1.Node{}
	Expect(k8s.Get(ctx, types.NamespacedName{Name: node}, n)).To(Succeed())
	old, had := n.Labels[key]
	DeferCleanup(func() {
		if had {
			Expect(setNodeLabel(node, key, &old)).To(Succeed())
		} else {
			Expect(setNodeLabel(node, key, nil)).To(Succeed())
		}
	})
	Expect(setNodeLabel(node, key, value)).To(Succeed())
}

func setNodeLabel(node, key string, value *string) error {
	var v any
	if value != nil {
		v = *value
	}
	patch := map[string]any{"metadata": map[string]any{"labels": map[string]any{key: v}}}
	b, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	return k8s.Patch(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, client.RawPatch(types.MergePatchType, b))
}

// reconfigureRouter restarts a router's bgpd and bfdd with a changed
// config and restores the original config when the spec ends.
func reconfigureRouter(r *lab.Router, mutate func(*lab.RouterConfig)) {
	GinkgoHelper()
	orig := r.Config()
	cfg := orig
	cfg.PeerGroups = slices.Clone(orig.PeerGroups)
	mutate(&cfg)
	DeferCleanup(func() {
		c, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		Expect(r.Reconfigure(c, orig)).To(Succeed())
	})
	c, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	Expect(r.Reconfigure(c, cfg)).To(Succeed())
}

// create creates obj and deletes it when the spec ends.
func create(obj client.Object) {
	GinkgoHelper()
	Expect(k8s.Create(ctx, obj)).To(Succeed())
	DeferCleanup(func() {
		err := k8s.Delete(ctx, obj)
		if err != nil && !apierrors.IsNotFound(err) {
			Expect(err).NotTo(HaveOccurred())
		}
		// Deletion may be asynchronous (e.g. a foreground cascade).
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj))
		}).Should(BeTrue(), "%T %s is never deleted", obj, obj.GetName())
	})
}

// nodeStatus returns a node's BGPNodeStatus sessions by peer name.
func nodeStatus(g Gomega, node string) map[string]v1alpha1.BGPSessionStatus {
	st := &v1alpha1.BGPNodeStatus{}
	g.Expect(k8s.Get(ctx, types.NamespacedName{Name: node}, st)).To(Succeed(), "BGPNodeStatus %s", node)
	out := map[string]v1alpha1.BGPSessionStatus{}
	for _, s := range st.Status.Sessions {
		out[s.Peer] = s
	}
	return out
}

func str(s string) *string { return &s }

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func inPrefix(p netip.Prefix) OmegaMatcher {
	return WithTransform(p.Contains, BeTrue())
}

func describeCounts(m map[string]int) string {
	s := ""
	for _, k := range slices.Sorted(maps.Keys(m)) {
		name := k
		if name == "" {
			name = "(failed)"
		}
		s += fmt.Sprintf("%s=%d ", name, m[k])
	}
	return s
}
