package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/test/cluster"
	"github.com/bgplb/bgplb/test/lab"
)

// L2 mode on real nodes, across nodes: how addresses spread, what a
// deleted Node does to its addresses, and how long two nodes answer when
// the owner is cut off from the API server.

// l2SpreadServices is how many single-stack Services the spread spec puts
// in the L2 pool (which has 10 IPv4 addresses). Owners are a pure function
// of the Service and node names: for traffic/l2-spread-1..6 on n1..n3,
// every node owns at least one.
const l2SpreadServices = 6

func l2SpreadSpec() {
	It("spreads addresses over the three nodes: r1 reaches each Service through the node whose MAC it holds", func(ctx SpecContext) {
		hello(ctx)
		l2Pool(ctx)
		var docs []string
		for i := 1; i <= l2SpreadServices; i++ {
			docs = append(docs, fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: l2-spread-%d
  namespace: %s
  annotations: {bgplb.io/ip-pool: l2}
spec:
  type: LoadBalancer
  selector: {app: %s}
  ports:
    - {name: http, port: 80, targetPort: http}`, i, helloNS, helloName))
		}
		_, err := cl.ApplyYAML(ctx, strings.Join(docs, "\n---\n"))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			for i := 1; i <= l2SpreadServices; i++ {
				_, _ = cl.Kubectl(ctx, "-n", helloNS, "delete", "service", fmt.Sprintf("l2-spread-%d", i), "--wait=true")
			}
		})
		owners := map[string]int{}
		for i := 1; i <= l2SpreadServices; i++ {
			addrs, err := cl.ServiceAddresses(ctx, helloNS, fmt.Sprintf("l2-spread-%d", i), 1, time.Minute)
			Expect(err).NotTo(HaveOccurred())
			owners[l2Owner(addrs)]++
		}
		fmt.Fprintf(GinkgoWriter, "owners of %d addresses: %v\n", l2SpreadServices, owners)
		AddReportEntry("L2 on real nodes: owners of 6 addresses", fmt.Sprint(owners))
		Expect(owners).To(HaveLen(len(cl.Nodes)), "%d addresses over %d nodes: %v", l2SpreadServices, len(cl.Nodes), owners)
	}, SpecTimeout(3*time.Minute))
}

func l2NodeDeleteSpec() {
	It("moves the addresses when the owner's Node is deleted; restarted, its kubelet registers the Node again and the node takes them back", func(ctx SpecContext) {
		addrs := helloL2(ctx)
		owner := l2Owner(addrs)
		expectL2Owner(ctx, helloNS, "hello-l2", addrs, owner)
		DeferCleanup(func(ctx SpecContext) {
			// The kubelet does not register its Node again by itself.
			if _, err := cs.CoreV1().Nodes().Get(ctx, owner, metav1.GetOptions{}); apierrors.IsNotFound(err) {
				Expect(cl.RejoinNode(ctx, owner)).To(Succeed())
				expectWhole(ctx, owner)
			}
		})

		start := time.Now()
		Expect(cs.CoreV1().Nodes().Delete(ctx, owner, metav1.DeleteOptions{})).To(Succeed())
		by, _ := handedOver(addrs[0], owner, start, "Node deleted")
		l2Reached(addrs, by, 20*time.Second)
		expectL2Owner(ctx, helloNS, "hello-l2", addrs, by)

		By("restarting " + owner + "'s kubelet (it registers the Node again), then its kube-proxy (it exited when the Node was deleted)")
		restarted := time.Now()
		Expect(cl.RejoinNode(ctx, owner)).To(Succeed())
		expectWhole(ctx, owner)
		// Rendezvous hashing is stateless: the node is eligible again and
		// takes its addresses back.
		l2Reached(addrs, owner, time.Minute)
		expectL2Owner(ctx, helloNS, "hello-l2", addrs, owner)
		fmt.Fprintf(GinkgoWriter, "kubelet and kube-proxy of %s restarted -> cluster whole and %s back on it after %v\n", owner, addrs[0],
			time.Since(restarted).Round(time.Millisecond))
	}, SpecTimeout(4*time.Minute))
}

// expectWhole waits until node is a full member again after its Node was
// deleted and registered anew (cl.RejoinNode): a ready speaker pod on
// every node, its BGPNodeStatus re-created for the new Node (the garbage
// collector removes the old one with the old Node), the shared backend
// ready on every node, routed over every node and proxied, and the node's
// kubelet and kube-proxy still running.
func expectWhole(ctx context.Context, node string) {
	GinkgoHelper()
	t := time.Now()
	Eventually(func(g Gomega) {
		ds, err := cs.AppsV1().DaemonSets("bgplb-system").Get(ctx, "bgplb-speaker", metav1.GetOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(ds.Status.DesiredNumberScheduled).To(BeNumerically("==", len(cl.Nodes)))
		g.Expect(ds.Status.NumberReady).To(Equal(ds.Status.DesiredNumberScheduled), "ready speaker pods")
	}).Should(Succeed())
	Eventually(func(g Gomega) {
		n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		uid, err := cl.Kubectl(ctx, "get", "bgpnodestatus", node, "-o", "jsonpath={.metadata.ownerReferences[0].uid}")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(uid).To(Equal(string(n.UID)), "BGPNodeStatus %s owned by the new Node", node)
	}).Should(Succeed())
	Eventually(func() ([]string, error) { return readyPodNodes(ctx, helloNS, "app="+helloName) }).Should(Equal(allNodes()))
	hello(ctx)
	expectSessionsUp()
	Expect(cl.AgentsRunning(node)).To(Succeed())
	fmt.Fprintf(GinkgoWriter, "%s whole again after %v\n", node, time.Since(t).Round(time.Millisecond))
}

// splitBrainBound is the longest two nodes may answer ARP for one address
// together when the owner is cut off from the API server
// (docs/architecture.md, "Split brain, bounded"): about one heartbeat
// (100 ms) after the views disagree, with room for a loaded machine's
// scheduling delays.
const splitBrainBound = time.Second

// arpProbe is one ARP request from r1: when it was sent, how long it
// listened, and the MACs that answered (sorted).
type arpProbe struct {
	at, wait time.Duration
	macs     []string
}

// arpSummary is what a run of ARP probes shows: the first probe answered
// by nodes other than owner alone, the span from the first to the end of
// the last probe two or more nodes answered (0 if none), how many did,
// and the changes of who answered.
type arpSummary struct {
	otherAlone    time.Duration // -1 if never
	double        time.Duration
	doubleProbes  int
	timeline      []string
	ownerLastSeen time.Duration
	last          []string // the last MACs that answered
}

// summarize reads probes (in order) against the original owner's MAC.
func summarize(probes []arpProbe, ownerMAC string) arpSummary {
	s := arpSummary{otherAlone: -1}
	first, last := time.Duration(-1), time.Duration(0)
	for i, p := range probes {
		has := false
		for _, m := range p.macs {
			has = has || m == ownerMAC
		}
		if len(p.macs) > 0 {
			s.last = p.macs
		}
		switch {
		case has:
			s.ownerLastSeen = p.at
		case len(p.macs) > 0 && s.otherAlone < 0:
			s.otherAlone = p.at
		}
		if len(p.macs) > 1 {
			s.doubleProbes++
			if first < 0 {
				first = p.at
			}
			last = p.at + p.wait
		}
		if i == 0 || fmt.Sprint(p.macs) != fmt.Sprint(probes[i-1].macs) {
			s.timeline = append(s.timeline, fmt.Sprintf("%v:%v", p.at.Round(10*time.Millisecond), p.macs))
		}
	}
	if first >= 0 {
		s.double = last - first
	}
	return s
}

func l2SplitBrainSpec() {
	It("bounds the time two nodes answer when the owner is cut off from the API server, and measures it", func(ctx SpecContext) {
		addrs := helloL2(ctx)
		owner := l2Owner(addrs)
		ownerMAC := macOf(owner)
		n := cl.Lab.Node(owner)
		// Only the node's own processes (kubelet, kube-proxy, the
		// host-network speaker) lose the API server, both ways: packets to
		// its address and port (after kube-proxy's DNAT of the kubernetes
		// Service) and from it (before the reply's un-DNAT) are dropped;
		// dropping one way only still delivers the watch events.
		// Heartbeats (UDP between the nodes' InternalIPs), BGP and the pods'
		// traffic go on.
		api, port := lab.HostMgmt4.String(), fmt.Sprint(cluster.APIServerPort)
		const comment = "bgplb e2e: cut off from the API server"
		rules := [][]string{
			{"OUTPUT", "-d", api, "-p", "tcp", "--dport", port, "-m", "comment", "--comment", comment, "-j", "DROP"},
			{"INPUT", "-s", api, "-p", "tcp", "--sport", port, "-m", "comment", "--comment", comment, "-j", "DROP"},
		}
		cut := func(ctx context.Context, op string) error {
			var errs []error
			for _, r := range rules {
				if _, err := n.Exec(ctx, append([]string{"iptables", "-w", op}, r...)...); err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		}
		cutAt := time.Now()
		Expect(cut(ctx, "-I")).To(Succeed())
		DeferCleanup(func(ctx SpecContext) {
			_, _ = cl.Kubectl(ctx, "label", "node", owner, excludeLabel+"-")
			_ = cut(ctx, "-D")
		})
		Expect(lab.InNetns(n.Netns, func() error {
			c, err := net.DialTimeout("tcp", net.JoinHostPort(api, port), 500*time.Millisecond)
			if err == nil {
				c.Close()
				return fmt.Errorf("%s still reaches the API server", owner)
			}
			return nil
		})).To(Succeed())
		// Behind its back, the owner is excluded: every other speaker now
		// elects another owner; the cut-off one still elects itself until
		// it finds its view stale and yields.
		start := time.Now()
		kubectlOK(ctx, "label", "node", owner, excludeLabel+"=")
		r1 := cl.Lab.Router("r1")
		const wait = 60 * time.Millisecond
		var probes []arpProbe
		// Probe until the owner has not answered for 1 s (ten heartbeats)
		// while another node has; empty answers count for nothing (a probe
		// can miss on a loaded machine).
		for time.Since(start) < 30*time.Second {
			at := time.Since(start)
			macs, err := lab.ARPAnswers(r1.Netns, "lan", r1.Addr4, addrs[0], wait)
			Expect(err).NotTo(HaveOccurred())
			probes = append(probes, arpProbe{at: at, wait: wait, macs: macs})
			if s := summarize(probes, ownerMAC); s.otherAlone >= 0 && at-s.ownerLastSeen > time.Second {
				break
			}
		}
		s := summarize(probes, ownerMAC)
		handover := s.otherAlone + start.Sub(cutAt)
		line := fmt.Sprintf("owner %s (%s) cut off from the API server, excluded %v later: another node alone answers %v after the cut; "+
			"two nodes answered in %d of %d ARP probes of %v, over %v; timeline from the label %s (%s)", owner, ownerMAC,
			start.Sub(cutAt).Round(time.Millisecond), handover.Round(time.Millisecond), s.doubleProbes, len(probes), wait, s.double,
			strings.Join(s.timeline, " "), machineLoad())
		fmt.Fprintln(GinkgoWriter, line)
		AddReportEntry("L2 on real nodes: owner cut off from the API server, another node answers after", handover.String())
		AddReportEntry("L2 on real nodes: owner cut off from the API server, two nodes answer for", s.double.String())
		Expect(s.otherAlone).To(BeNumerically(">=", 0), "no other node answered alone within 30 s: %s", line)
		Expect(s.double).To(BeNumerically("<=", splitBrainBound), "two nodes answered for longer than the documented bound: %s", line)
		Expect(s.last).To(HaveLen(1), "one node answers at the end: %s", line)
		l2Reached(addrs, nodeOfMAC(s.last[0]), 20*time.Second)

		// The label goes first, so the owner never sees it (it would start
		// draining its BGP routes).
		By("removing the label, then reconnecting " + owner + ": it takes its addresses back")
		kubectlOK(ctx, "label", "node", owner, excludeLabel+"-")
		Expect(cut(ctx, "-D")).To(Succeed())
		l2Reached(addrs, owner, time.Minute)
		expectL2Owner(ctx, helloNS, "hello-l2", addrs, owner)
	}, SpecTimeout(3*time.Minute))
}
