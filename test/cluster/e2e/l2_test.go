package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/controllers/l2mode"
	"github.com/bgplb/bgplb/test/lab"
)

// L2 mode on real nodes: a pool on router r1's LAN (the segment every
// node's "r1" interface is on), announced by ARP/NDP only (the lab's
// BGPAdvertisement selects another pool). r1's namespace is the client on
// the segment; kube-proxy on the owner takes the traffic to the pods.
const l2PoolManifest = `apiVersion: bgplb.io/v1alpha1
kind: IPPool
metadata: {name: l2}
spec:
  addresses: ["192.0.2.40-192.0.2.49", "2001:db8:1::40-2001:db8:1::49"]
  autoAssign: false
---
apiVersion: bgplb.io/v1alpha1
kind: L2Advertisement
metadata: {name: l2}
spec:
  ipPools: [l2]
`

// helloL2Manifest is a Service in the L2 pool for the shared backend.
const helloL2Manifest = `apiVersion: v1
kind: Service
metadata:
  name: hello-l2
  namespace: traffic
  annotations: {bgplb.io/ip-pool: l2}
spec:
  type: LoadBalancer
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv4, IPv6]
  selector: {app: hello}
  ports:
    - {name: http, port: 80, targetPort: http}
`

// l2Pool applies the L2 pool and its L2Advertisement; both are deleted
// (waiting for the deletion) when the spec ends, after what the spec
// registered later (its Services) is gone.
func l2Pool(ctx context.Context) {
	GinkgoHelper()
	_, err := cl.ApplyYAML(ctx, l2PoolManifest)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) {
		_, _ = cl.Kubectl(ctx, "delete", "l2advertisement", "l2", "--wait=true")
		_, _ = cl.Kubectl(ctx, "delete", "ippool", "l2", "--wait=true")
	})
}

// helloL2 puts the shared backend behind Service hello-l2 in the L2 pool
// (deleted when the spec ends) and returns its two addresses, IPv4 first.
func helloL2(ctx context.Context) []netip.Addr {
	GinkgoHelper()
	hello(ctx)
	l2Pool(ctx)
	_, err := cl.ApplyYAML(ctx, helloL2Manifest)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) {
		_, _ = cl.Kubectl(ctx, "-n", helloNS, "delete", "service", "hello-l2", "--wait=true")
	})
	addrs, err := cl.ServiceAddresses(ctx, helloNS, "hello-l2", 2, time.Minute)
	Expect(err).NotTo(HaveOccurred())
	return addrs
}

// nodeOfMAC names the node whose interface on r1's segment has mac ("" if none).
func nodeOfMAC(mac string) string {
	for _, n := range cl.Nodes {
		if mac != "" && lab.LinkMAC(n.Lab.Netns, "r1") == mac {
			return n.Name
		}
	}
	return ""
}

// macOf is node's MAC on r1's segment.
func macOf(node string) string { return lab.LinkMAC(cl.Lab.Node(node).Netns, "r1") }

// expectL2Owner waits until Service ns/name's L2Announced condition names
// owner for every address of addrs.
func expectL2Owner(ctx context.Context, ns, name string, addrs []netip.Addr, owner string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		svc, err := cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		c := meta.FindStatusCondition(svc.Status.Conditions, l2mode.ConditionL2Announced)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		for _, a := range addrs {
			g.Expect(c.Message).To(ContainSubstring(fmt.Sprintf("%s on %s (r1)", a, owner)))
		}
	}).Should(Succeed())
}

func l2Specs() {
	It("answers ARP and NDP from one node; r1 reaches the pods over IPv4 and IPv6 at the owner's MAC; a frozen owner hands over", func(ctx SpecContext) {
		addrs := helloL2(ctx)
		r1 := cl.Lab.Router("r1")
		owner := l2Owner(addrs)
		ownerMAC := macOf(owner)
		Expect(lab.ARPAnswers(r1.Netns, "lan", r1.Addr4, addrs[0], 300*time.Millisecond)).To(Equal([]string{ownerMAC}))
		expectL2Owner(ctx, helloNS, "hello-l2", addrs[:1], owner)

		pid, err := cl.SpeakerPID(owner)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
		start := time.Now()
		Expect(syscall.Kill(pid, syscall.SIGSTOP)).To(Succeed())
		a := addrs[0]
		var took time.Duration
		Eventually(func(g Gomega) {
			g.Expect(lab.NeighMAC(r1.Netns, a)).NotTo(Equal(ownerMAC))
			_, err := lab.HTTPGetIn(r1.Netns, a, 80, 300*time.Millisecond)
			g.Expect(err).NotTo(HaveOccurred())
			took = time.Since(start)
		}, 20*time.Second, 10*time.Millisecond).Should(Succeed())
		fmt.Fprintf(GinkgoWriter, "SIGSTOP of %s's speaker -> %s answered by %s after %v (%s)\n", owner, a,
			nodeOfMAC(lab.NeighMAC(r1.Netns, a)), took.Round(time.Millisecond), machineLoad())
		AddReportEntry("L2 on real nodes: SIGSTOP -> another node answers", took.String())
		Expect(syscall.Kill(pid, syscall.SIGCONT)).To(Succeed())
		Eventually(func() string { return lab.NeighMAC(r1.Netns, a) }).Should(Equal(ownerMAC), "thawed, %s re-announces %s", owner, a)
	}, SpecTimeout(3*time.Minute))

	l2LinkDownSpec()
	l2LocalSpec()
	l2SpreadSpec()
	l2SplitBrainSpec()
	// Last: the most disruptive (the node's pods may be deleted and
	// come back).
	l2NodeDeleteSpec()
}
