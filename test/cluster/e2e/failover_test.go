package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/test/labcluster"
)

// routeWatch samples both routers' kernel routes for addrs every interval
// in the background and records every moment one of them lacked a next
// hop of one of nodes.
type routeWatch struct {
	mu      sync.Mutex
	dropped []string
	dropAt  []time.Time // every drop, also past the 20 described
	samples int
	stop    context.CancelFunc
	done    chan struct{}
}

func watchRoutes(addrs []netip.Addr, nodes []string, interval time.Duration) *routeWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &routeWatch{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			for _, r := range cl.Lab.Routers() {
				for _, a := range addrs {
					hops, err := r.KernelRoutes(labcluster.HostPrefix(a))
					if err != nil {
						continue
					}
					var got []string
					for _, h := range hops {
						got = append(got, nodeOfHop(h))
					}
					w.mu.Lock()
					w.samples++
					for _, n := range nodes {
						if slices.Contains(got, n) {
							continue
						}
						w.dropAt = append(w.dropAt, time.Now())
						if len(w.dropped) < 20 {
							w.dropped = append(w.dropped, fmt.Sprintf("%s %s at %s: next hops %v", r.Name, a, time.Now().Format("15:04:05.000"), got))
						}
					}
					w.mu.Unlock()
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(interval):
			}
		}
	}()
	DeferCleanup(w.Stop)
	return w
}

// Stop ends the sampling and returns the drops seen and the number of samples.
func (w *routeWatch) Stop() ([]string, int) {
	w.stop()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.dropped), w.samples
}

// DroppedAt returns the time of every drop seen so far.
func (w *routeWatch) DroppedAt() []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.dropAt)
}

// restartSpecs: graceful restart through the real rollout of the speaker
// DaemonSet (maxUnavailable 1: one node at a time; SIGTERM makes the
// speaker exit without a Cease, the routers keep its routes as stale until
// the new pod re-announces them).
func restartSpecs() {
	It("kubectl rollout restart ds/bgplb-speaker: 0 failed client connections, the routers never drop a next hop", func(ctx SpecContext) {
		addrs := hello(ctx)
		for _, r := range cl.Lab.Routers() {
			for _, n := range cl.Nodes {
				peer := nextHop(n.Name, r.Name, addrs[0]).String()
				Eventually(func() (labcluster.NeighborDetail, error) {
					d, _, err := labcluster.NeighborInfo(r, peer)
					return d, err
				}).Should(HaveField("RemoteGRMode", "Restart"), "%s: %s advertises graceful restart", r.Name, n.Name)
			}
		}
		old, err := cs.CoreV1().Pods("bgplb-system").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=speaker"})
		Expect(err).NotTo(HaveOccurred())

		probe := startProbe(addrs, 20*time.Millisecond)
		watch := watchRoutes(addrs, allNodes(), 50*time.Millisecond)
		Eventually(func() int { return probe.Result().OK }).Should(BeNumerically(">=", 20), "the client is answered before the restart")

		t0 := time.Now()
		kubectlOK(ctx, "-n", "bgplb-system", "rollout", "restart", "ds/bgplb-speaker")
		kubectlOK(ctx, "-n", "bgplb-system", "rollout", "status", "ds/bgplb-speaker", "--timeout=5m")
		rolled := time.Since(t0)
		now, err := cs.CoreV1().Pods("bgplb-system").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=speaker"})
		Expect(err).NotTo(HaveOccurred())
		for _, p := range now.Items {
			for _, o := range old.Items {
				Expect(p.UID).NotTo(Equal(o.UID), "speaker pod %s was not replaced", p.Name)
			}
		}

		By("every session re-established after the restart and every path refreshed (none stale)")
		for _, r := range cl.Lab.Routers() {
			for _, n := range cl.Nodes {
				for _, a := range addrs {
					peer := nextHop(n.Name, r.Name, a).String()
					Eventually(func(g Gomega) {
						d, found, err := labcluster.NeighborInfo(r, peer)
						g.Expect(err).NotTo(HaveOccurred())
						g.Expect(found).To(BeTrue())
						g.Expect(d.State).To(Equal("Established"))
						g.Expect(d.UpFor).To(BeNumerically("<", time.Since(t0)), "%s: the session with %s was re-established by the new pod", r.Name, n.Name)
						paths, err := labcluster.Paths(r, labcluster.HostPrefix(a))
						g.Expect(err).NotTo(HaveOccurred())
						g.Expect(paths).To(HaveLen(len(cl.Nodes)))
						for _, p := range paths {
							g.Expect(p.Stale).To(BeFalse(), "%s: path %+v is still stale", r.Name, p)
						}
					}).Should(Succeed())
				}
			}
		}
		before := probe.Result().OK
		Eventually(func() int { return probe.Result().OK }).Should(BeNumerically(">=", before+20), "the client keeps being answered")
		res := probe.Stop()
		dropped, samples := watch.Stop()
		fmt.Fprintf(GinkgoWriter, "rollout of %d speaker pods took %s; %d route samples; %s\n", len(now.Items), rolled.Round(time.Millisecond), samples, machineLoad())
		AddReportEntry("speaker rollout", rolled.String())
		report("rollout restart: client connections", res)
		fmt.Fprintf(GinkgoWriter, "next hops missing from a router's route during the rollout: %v\n", dropped)
		Expect(res.Failed).To(BeZero(), "connections failed during the rollout:\n%s", strings.Join(res.Errors, "\n"))
		Expect(dropped).To(BeEmpty(), "a router dropped a next hop during the graceful restart")
	}, SpecTimeout(8*time.Minute))
}

// bfdSpecs: a frozen speaker (SIGSTOP of the speaker container's process)
// stops answering BFD; both routers drop its node within about a second
// (BFD 300 ms x 3), long before the 9 s hold time.
func bfdSpecs() {
	It("freezing n1's speaker process: both routers drop n1's next hop within about a second; thawed, it comes back", func(ctx SpecContext) {
		const node = "n1"
		addrs := hello(ctx)
		addr := addrs[0]
		for _, r := range cl.Lab.Routers() {
			peer := nextHop(node, r.Name, addr).String()
			Eventually(func() (map[string]labcluster.BFDPeer, error) { return labcluster.BFDPeers(r) }).Should(
				HaveKeyWithValue(peer, And(HaveField("Status", "up"), HaveField("RemoteReceive", 300),
					HaveField("RemoteTransmit", 300), HaveField("RemoteMultiplier", 3))),
				"%s: BFD with %s runs at the BGPPeer's 300 ms x 3", r.Name, node)
		}
		pid, err := cl.SpeakerPID(node)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })

		start := time.Now()
		Expect(syscall.Kill(pid, syscall.SIGSTOP)).To(Succeed())
		lost := map[string]time.Duration{}
		// Generous for a loaded machine; the figure is printed.
		Eventually(func(g Gomega) {
			for _, r := range cl.Lab.Routers() {
				if _, done := lost[r.Name]; done {
					continue
				}
				hops, err := r.KernelRoutes(labcluster.HostPrefix(addr))
				g.Expect(err).NotTo(HaveOccurred())
				if !slices.Contains(hops, nextHop(node, r.Name, addr)) {
					lost[r.Name] = time.Since(start)
				}
			}
			g.Expect(lost).To(HaveLen(len(cl.Lab.Routers())), "routers that dropped the frozen %s", node)
		}, 3*time.Second, 10*time.Millisecond).Should(Succeed(), "BFD (300 ms x 3) should take %s out in about a second", node)
		fmt.Fprintf(GinkgoWriter, "SIGSTOP of speaker pid %d -> %s out of the routers' kernel routes after %v (%s)\n", pid, node, lost, machineLoad())
		AddReportEntry("BFD: SIGSTOP -> next hop dropped", fmt.Sprint(lost))
		expectRouted(addr, "n2", "n3")
		// Through n2 and n3 kube-proxy still reaches every pod, n1's too.
		answeredBy(ctx, helloNS, "app="+helloName, addr, 10)

		By("thawing the speaker")
		thawed := time.Now()
		Expect(syscall.Kill(pid, syscall.SIGCONT)).To(Succeed())
		expectRouted(addr, allNodes()...)
		back := time.Since(thawed)
		fmt.Fprintf(GinkgoWriter, "SIGCONT -> %s routed again by both routers after %s\n", node, back.Round(time.Millisecond))
		AddReportEntry("BFD: SIGCONT -> next hop back", back.String())
		again, err := cl.SpeakerPID(node)
		Expect(err).NotTo(HaveOccurred())
		Expect(again).To(Equal(pid), "the thawed speaker recovered by itself (no restart)")
		expectSessionsUp()
	}, SpecTimeout(3*time.Minute))
}
