package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/test/cluster"
	"github.com/bgplb/bgplb/test/lab"
)

// L2 mode on real nodes when the owner changes for a reason other than
// its speaker: its link on the segment goes down, or the pods of an
// externalTrafficPolicy: Local Service move to other nodes.

// handedOver waits until r1 reaches addr through a node other than owner
// and returns that node and the time since start. what says what was done
// to owner, for the log and the report entry.
func handedOver(addr netip.Addr, owner string, start time.Time, what string) (string, time.Duration) {
	GinkgoHelper()
	r1 := cl.Lab.Router("r1")
	var took time.Duration
	var by string
	Eventually(func(g Gomega) {
		_, err := lab.HTTPGetIn(r1.Netns, addr, 80, 300*time.Millisecond)
		g.Expect(err).NotTo(HaveOccurred())
		by = nodeOfMAC(lab.NeighMAC(r1.Netns, addr))
		g.Expect(by).NotTo(BeElementOf("", owner))
		took = time.Since(start)
	}, 20*time.Second, 10*time.Millisecond).Should(Succeed())
	fmt.Fprintf(GinkgoWriter, "%s -> %s answered through %s after %v (%s)\n", what, addr, by,
		took.Round(time.Millisecond), machineLoad())
	AddReportEntry("L2 on real nodes: "+what+" -> another node answers", took.String())
	return by, took
}

// l2Reached waits until r1 reaches every address of addrs with a new
// connection, answered by a pod, through node (r1's neighbor entry holds
// node's MAC), and returns the answers' bodies.
func l2Reached(addrs []netip.Addr, node string, timeout time.Duration) []string {
	GinkgoHelper()
	r1 := cl.Lab.Router("r1")
	bodies := make([]string, len(addrs))
	for i, a := range addrs {
		Eventually(func(g Gomega) {
			body, err := lab.HTTPGetIn(r1.Netns, a, 80, 300*time.Millisecond)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(field(body, "pod")).NotTo(BeEmpty(), "a pod answers %s: %q", a, body)
			g.Expect(nodeOfMAC(lab.NeighMAC(r1.Netns, a))).To(Equal(node), "r1's neighbor entry for %s", a)
			bodies[i] = body
		}, timeout, 10*time.Millisecond).Should(Succeed())
	}
	return bodies
}

// l2Owner is the node r1 reaches every address of addrs through (HTTP,
// then its neighbor entry): one node, as the addresses of one Service share
// their owner.
func l2Owner(addrs []netip.Addr) string {
	GinkgoHelper()
	r1 := cl.Lab.Router("r1")
	var owner string
	for i, a := range addrs {
		var by string
		Eventually(func(g Gomega) {
			_, err := lab.HTTPGetIn(r1.Netns, a, 80, time.Second)
			g.Expect(err).NotTo(HaveOccurred())
			by = nodeOfMAC(lab.NeighMAC(r1.Netns, a))
			g.Expect(by).NotTo(BeEmpty(), "r1's neighbor entry for %s is a node's MAC", a)
		}).Should(Succeed())
		fmt.Fprintf(GinkgoWriter, "%s reached through %s\n", a, by)
		if i == 0 {
			owner = by
		}
		Expect(by).To(Equal(owner), "one owner for the Service's addresses")
	}
	return owner
}

func l2LinkDownSpec() {
	It("moves the addresses to another node when the owner's link on the segment goes down, and back when it comes up", func(ctx SpecContext) {
		addrs := helloL2(ctx)
		owner := l2Owner(addrs)
		expectL2Owner(ctx, helloNS, "hello-l2", addrs, owner)
		n := cl.Lab.Node(owner)
		// Keep the node's IPv6 address on the interface while it is down
		// (the kernel drops it otherwise and the BGP sessions with r1
		// would not come back): what a real host's static address does.
		const keep = "net.ipv6.conf.r1.keep_addr_on_down"
		old, err := n.Exec(ctx, "sysctl", "-n", keep)
		Expect(err).NotTo(HaveOccurred())
		_, err = n.Exec(ctx, "sysctl", "-qw", keep+"=1")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			_, err := n.Exec(ctx, "ip", "link", "set", "r1", "up")
			Expect(err).NotTo(HaveOccurred())
			_, err = n.Exec(ctx, "sysctl", "-qw", keep+"="+strings.TrimSpace(old))
			Expect(err).NotTo(HaveOccurred())
			t := time.Now()
			expectSessionsUp()
			fmt.Fprintf(GinkgoWriter, "BGP sessions of %s with r1 Established %s after its link came up\n", owner, time.Since(t).Round(time.Millisecond))
		})

		start := time.Now()
		_, err = n.Exec(ctx, "ip", "link", "set", "r1", "down")
		Expect(err).NotTo(HaveOccurred())
		by, _ := handedOver(addrs[0], owner, start, "link down")
		for _, body := range l2Reached(addrs, by, 20*time.Second) {
			fmt.Fprintf(GinkgoWriter, "through %s: %s\n", by, body)
		}
		expectL2Owner(ctx, helloNS, "hello-l2", addrs, by)

		_, err = n.Exec(ctx, "ip", "link", "set", "r1", "up")
		Expect(err).NotTo(HaveOccurred())
		// Rendezvous hashing is stateless: with its link up the owner
		// is eligible again and takes its addresses back.
		l2Reached(addrs, owner, time.Minute)
		expectL2Owner(ctx, helloNS, "hello-l2", addrs, owner)
	}, SpecTimeout(3*time.Minute))
}

func l2LocalSpec() {
	It("gives an externalTrafficPolicy: Local Service's addresses to a node with a ready pod, and follows the pod when it moves", func(ctx SpecContext) {
		const ns, name, sel = "l2-local", "l2-local", "app=l2-local"
		l2Pool(ctx)
		_, err := cl.ApplyYAML(ctx, cluster.BackendManifestWith(ns, name, cluster.Backend{Replicas: 1, Local: true, Nodes: []string{"n1"}, Pool: "l2"}))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			// The Service first (its addresses back to the pool, before
			// l2Pool's cleanup deletes the pool), then the rest.
			_, _ = cl.Kubectl(ctx, "-n", ns, "delete", "service", name, "--wait=true")
			Expect(cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})).To(Succeed())
		})
		addrs, err := cl.ServiceAddresses(ctx, ns, name, 2, time.Minute)
		Expect(err).NotTo(HaveOccurred())

		// follows waits until the pod runs ready on node only, then until
		// r1 reaches both addresses through node, answered by that pod,
		// and the condition names node.
		follows := func(ctx context.Context, node string) {
			GinkgoHelper()
			t := time.Now()
			Eventually(func() ([]string, error) { return readyPodNodes(ctx, ns, sel) }).Should(Equal([]string{node}), "nodes with a ready pod")
			Expect(cl.WaitEndpoints(ctx, ns, name, 1, time.Minute)).To(Succeed())
			pod := time.Since(t)
			for _, body := range l2Reached(addrs, node, time.Minute) {
				Expect(field(body, "node")).To(Equal(node), "answered by the pod on %s: %q", node, body)
			}
			expectL2Owner(ctx, ns, name, addrs, node)
			fmt.Fprintf(GinkgoWriter, "pod ready on %s after %s; r1 reaches both addresses through it %s later\n",
				node, pod.Round(time.Millisecond), (time.Since(t) - pod).Round(time.Millisecond))
		}

		By("one pod, on n1: n1 owns the addresses")
		follows(ctx, "n1")

		By("changing the pod's node affinity to n2: the Deployment moves it, the addresses follow")
		kubectlOK(ctx, "-n", ns, "patch", "deployment", name, "--type=json", "-p",
			`[{"op":"replace","path":"/spec/template/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchExpressions/0/values","value":["n2"]}]`)
		follows(ctx, "n2")
	}, SpecTimeout(3*time.Minute))
}
