package e2e

import (
	"fmt"
	"net/netip"
	"os/exec"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/l2mode"
	"github.com/bgplb/bgplb/test/lab"
	"github.com/bgplb/bgplb/test/labcluster"
)

// L2 mode on the lab: the pool is part of router r1's LAN (192.0.2.0/26,
// 2001:db8:1::/64), the segment every node's "r1" interface is on. r1's
// namespace is the client on that segment: it reaches the addresses by
// ARP and NDP, with no route for them (the lab's BGPAdvertisement selects
// only the "lab" pool). The nodes hold the addresses on their loopback
// (lab.Node.ServeHTTP, standing in for kube-proxy) with arp_ignore=1, so
// their kernels never answer ARP for them: only bgplb's responder does.
var (
	l2Pool4 = "192.0.2.40-192.0.2.59"
	l2Pool6 = "2001:db8:1::40-2001:db8:1::59"
)

const l2Iface = "r1"

// l2Services numbers the specs' Services.
var l2Services int

var _ = Describe("L2 mode", Ordered, Label("l2"), func() {
	var r1 *lab.Router

	BeforeAll(func() {
		onlyGoBGP(skipL2)
		r1 = cluster.Lab.Router("r1")
		l2Prepare()
		create(&v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "l2"}, Spec: v1alpha1.IPPoolSpec{
			Addresses: []v1alpha1.AddressRange{v1alpha1.AddressRange(l2Pool4), v1alpha1.AddressRange(l2Pool6)}, AutoAssign: ptrTo(false)}})
		create(&v1alpha1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "l2"}, Spec: v1alpha1.L2AdvertisementSpec{IPPools: []string{"l2"}}})
	})

	// l2Service creates a Service in the L2 pool served by every node and
	// returns its addresses.
	l2Service := func(fam labcluster.Families, want int) (*corev1.Service, []netip.Addr) {
		GinkgoHelper()
		l2Services++
		svc, addrs := createService(labcluster.ServiceOptions{Name: fmt.Sprintf("l2-%d", l2Services),
			Families: fam, Annotations: map[string]string{v1alpha1.AnnotationIPPool: "l2"}}, want)
		for _, a := range addrs {
			serve(a, nodes...)
		}
		return svc, addrs
	}

	It("answers from one node: r1 reaches the Service over IPv4 and IPv6 at that node's MAC, and the Service says which node", func() {
		svc, addrs := l2Service(labcluster.DualStack, 2)
		var owner string
		for _, a := range addrs {
			Eventually(func(g Gomega) {
				body, err := getFrom(r1.Netns, a, time.Second)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(neighMAC(r1, a)).To(Equal(ifaceMAC(body)), "r1's neighbor entry for %s: the MAC of the node that served it (%s)", a, body)
				owner = body
			}).Should(Succeed())
			fmt.Fprintf(GinkgoWriter, "%s served by %s at %s\n", a, owner, neighMAC(r1, a))
		}
		Eventually(func(g Gomega) {
			cur := &corev1.Service{}
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(svc), cur)).To(Succeed())
			c := meta.FindStatusCondition(cur.Status.Conditions, l2mode.ConditionL2Announced)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			for _, a := range addrs {
				g.Expect(c.Message).To(ContainSubstring(fmt.Sprintf("%s on %s (%s)", a, owner, l2Iface)))
			}
		}).Should(Succeed())
		// One node answers the ARP requests, not several.
		macs, err := arpAnswers(r1.Netns, "lan", r1.Addr4, addrs[0], 300*time.Millisecond)
		Expect(err).NotTo(HaveOccurred())
		Expect(macs).To(Equal([]string{ifaceMAC(owner)}), "MACs answering ARP for %s", addrs[0])
		// Resolving again and again gives the same node.
		for range 5 {
			flushNeigh(r1)
			for _, a := range addrs {
				_, err := getFrom(r1.Netns, a, time.Second)
				Expect(err).NotTo(HaveOccurred())
				Expect(neighMAC(r1, a)).To(Equal(ifaceMAC(owner)))
			}
		}
	})

	It("follows the endpoints of an externalTrafficPolicy: Local Service", func() {
		l2Services++
		svc, addrs := createService(labcluster.ServiceOptions{Name: fmt.Sprintf("l2-%d", l2Services), Local: true,
			Backends: []string{nodes[0]}, Annotations: map[string]string{v1alpha1.AnnotationIPPool: "l2"}}, 1)
		a := addrs[0]
		serve(a, nodes...)
		for _, n := range []string{nodes[0], nodes[2], nodes[1]} {
			Expect(cluster.SetBackends(ctx, svc, n)).To(Succeed())
			Eventually(func(g Gomega) {
				body, err := getFrom(r1.Netns, a, time.Second)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(body).To(Equal(n), "the only node with an endpoint answers")
				g.Expect(neighMAC(r1, a)).To(Equal(ifaceMAC(n)))
			}).Should(Succeed())
		}
	})

	It("moves the address within about a second when the owner's speaker freezes (SIGSTOP) and when its link goes down", func() {
		_, addrs := l2Service(labcluster.IPv4, 1)
		a := addrs[0]
		owner := ownerOf(r1, a)
		took := failover(r1, a, owner, func() {
			Expect(cluster.Speaker(owner).Signal(syscall.SIGSTOP)).To(Succeed())
		}, func() {
			Expect(cluster.Speaker(owner).Signal(syscall.SIGCONT)).To(Succeed())
		})
		AddReportEntry("L2 failover, frozen speaker", took.String())
		// Thawed, the owner gets its address back (rendezvous hashing is
		// stateless): wait for that before the next step.
		Eventually(func() string { return ownerOf(r1, a) }).Should(Equal(owner))

		took = failover(r1, a, owner, func() {
			_, err := cluster.Lab.Node(owner).Exec(ctx, "ip", "link", "set", l2Iface, "down")
			Expect(err).NotTo(HaveOccurred())
		}, func() {
			_, err := cluster.Lab.Node(owner).Exec(ctx, "ip", "link", "set", l2Iface, "up")
			Expect(err).NotTo(HaveOccurred())
		})
		AddReportEntry("L2 failover, link down", took.String())
		Eventually(func() string { return ownerOf(r1, a) }).Should(Equal(owner))
		expectSessionsUp()
	})
})

// l2Prepare makes the nodes' kernels leave ARP for addresses on their
// loopback to bgplb (arp_ignore=1, as kube-proxy's strictARP would), and
// keep their IPv6 addresses on the segment while its link is down (the
// link-down specs bring it back up and the BGP sessions must return).
func l2Prepare() {
	GinkgoHelper()
	for _, n := range nodes {
		for _, kv := range []string{"net.ipv4.conf.all.arp_ignore=1", "net.ipv6.conf." + l2Iface + ".keep_addr_on_down=1"} {
			out, err := exec.Command("ip", "netns", "exec", cluster.Lab.Node(n).Netns, "sysctl", "-qw", kv).CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "%s", out)
		}
	}
}

// failover breaks the owner of a with breakIt, measures the time until a
// new connection from r1 is served by another node whose MAC r1's
// neighbor table holds, then calls repair.
func failover(r1 *lab.Router, a netip.Addr, owner string, breakIt, repair func()) time.Duration {
	GinkgoHelper()
	start := time.Now()
	breakIt()
	DeferCleanup(repair)
	var took time.Duration
	var by string
	Eventually(func(g Gomega) {
		body, err := getFrom(r1.Netns, a, 200*time.Millisecond)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(body).NotTo(Equal(owner))
		took, by = time.Since(start), body
	}).WithTimeout(30 * time.Second).WithPolling(10 * time.Millisecond).Should(Succeed())
	Expect(neighMAC(r1, a)).To(Equal(ifaceMAC(by)))
	fmt.Fprintf(GinkgoWriter, "%s moved from %s to %s in %v\n", a, owner, by, took.Round(time.Millisecond))
	repair()
	return took
}

// ownerOf is the node that serves a new connection from r1 to a.
func ownerOf(r1 *lab.Router, a netip.Addr) string {
	GinkgoHelper()
	var body string
	Eventually(func(g Gomega) {
		var err error
		body, err = getFrom(r1.Netns, a, time.Second)
		g.Expect(err).NotTo(HaveOccurred())
	}).Should(Succeed())
	return body
}

// getFrom opens a new TCP connection from namespace ns to a's HTTP server
// and returns the body: the name of the node that answered.
func getFrom(ns string, a netip.Addr, timeout time.Duration) (string, error) {
	return lab.HTTPGetIn(ns, a, servicePort, timeout)
}

// neighMAC is r1's neighbor entry for a, as `ip neigh` shows it.
func neighMAC(r1 *lab.Router, a netip.Addr) string { return lab.NeighMAC(r1.Netns, a) }

func flushNeigh(r1 *lab.Router) {
	_ = exec.Command("ip", "-n", r1.Netns, "neigh", "flush", "dev", "lan").Run()
}

// ifaceMAC is the MAC of the node's interface on r1's LAN.
func ifaceMAC(node string) string {
	n := cluster.Lab.Node(node)
	if n == nil {
		return "no node " + node
	}
	return lab.LinkMAC(n.Netns, l2Iface)
}

func arpAnswers(ns, ifname string, src, target netip.Addr, wait time.Duration) ([]string, error) {
	return lab.ARPAnswers(ns, ifname, src, target, wait)
}

func ptrTo[T any](v T) *T { return &v }
