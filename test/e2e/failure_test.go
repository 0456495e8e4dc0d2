package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/bgplb/bgplb/test/lab"
	"github.com/bgplb/bgplb/test/labcluster"
)

var _ = Describe("Node failures and maintenance", func() {
	BeforeEach(expectSessionsUp)

	It("h) BFD: freezing a node's BGP speaker makes both routers drop its next hop within about a second", bgpLabel, func() {
		_, addrs := createService(labcluster.ServiceOptions{Name: "bfd"}, 1)
		addr := addrs[0]
		serve(addr, nodes...)
		expectAnnounced(addr, nodes...)
		for _, r := range routers {
			peer := cluster.NextHop("n1", r.Name, addr).String()
			Eventually(func() (map[string]labcluster.BFDPeer, error) { return labcluster.BFDPeers(r) }).Should(
				HaveKeyWithValue(peer, And(HaveField("Status", "up"), HaveField("RemoteReceive", 300),
					HaveField("RemoteTransmit", 300), HaveField("RemoteMultiplier", 3))),
				"%s: BFD with n1 runs at the BGPPeer's 300 ms x 3", r.Name)
		}

		// What speaks BGP and BFD for n1: bgplb's speaker with GoBGP,
		// FRR's bgpd and bfdd with frr-k8s.
		procs := cluster.BGPProcs("n1")
		thaw := func() error {
			var err error
			for _, p := range procs {
				err = errors.Join(err, p.Signal(syscall.SIGCONT))
			}
			return err
		}
		DeferCleanup(func() { _ = thaw() })
		start := time.Now()
		for _, p := range procs {
			Expect(p.Signal(syscall.SIGSTOP)).To(Succeed())
		}
		lost := map[string]time.Duration{}
		// The hold time (9 s) would also drop n1, but only after 6 to 9 s.
		Eventually(func(g Gomega) {
			for _, r := range routers {
				if _, done := lost[r.Name]; done {
					continue
				}
				hops, err := r.KernelRoutes(labcluster.HostPrefix(addr))
				g.Expect(err).NotTo(HaveOccurred())
				if !slices.Contains(cluster.NodesOf(hops), "n1") {
					lost[r.Name] = time.Since(start)
				}
			}
			g.Expect(lost).To(HaveLen(len(routers)), "routers that dropped the frozen n1")
		}, 4*time.Second, 20*time.Millisecond).Should(Succeed(), "BFD (300 ms x 3) should take n1 out in about a second")
		AddReportEntry("SIGSTOP -> n1 out of the kernel routes", fmt.Sprint(lost))
		fmt.Fprintf(GinkgoWriter, "SIGSTOP -> n1 out of the routers' kernel routes: %v\n", lost)
		for _, r := range routers {
			peer := cluster.NextHop("n1", r.Name, addr).String()
			// Down, or gone with the BGP session it served.
			Eventually(func() (map[string]labcluster.BFDPeer, error) { return labcluster.BFDPeers(r) }).ShouldNot(
				HaveKeyWithValue(peer, HaveField("Status", "up")), "%s: BFD with n1 is still up", r.Name)
		}
		expectAnnounced(addr, "n2", "n3")
		Expect(answers(addr, 10)).NotTo(HaveKey("n1"))

		By("thawing the speaker")
		Expect(thaw()).To(Succeed())
		expectAnnounced(addr, nodes...)
	})

	DescribeTable("i) graceful restart: restarting a speaker while the client keeps connecting loses no connection",
		func(sig syscall.Signal) {
			onlyGoBGP(skipGR)
			_, addrs := createService(labcluster.ServiceOptions{Name: "gr-" + fmt.Sprint(int(sig))}, 1)
			addr := addrs[0]
			serve(addr, nodes...)
			expectAnnounced(addr, nodes...)
			for _, r := range routers {
				peer := cluster.NextHop("n1", r.Name, addr).String()
				Eventually(func() (labcluster.NeighborDetail, error) {
					d, _, err := labcluster.NeighborInfo(r, peer)
					return d, err
				}).Should(HaveField("RemoteGRMode", "Restart"), "%s: n1 advertises graceful restart", r.Name)
			}

			// The client opens a new connection every few milliseconds and
			// a sampler watches that neither router ever drops n1's next hop.
			var mu sync.Mutex
			var ok, failed int
			var failures []string
			var dropped []string
			loopCtx, stop := context.WithCancel(ctx)
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				hc := lc.HTTPClient(3 * time.Second)
				url := lab.ServiceURL(addr, servicePort)
				for loopCtx.Err() == nil {
					resp, err := hc.Get(url)
					if err == nil {
						resp.Body.Close()
					}
					mu.Lock()
					if err != nil {
						failed++
						if len(failures) < 5 {
							failures = append(failures, err.Error())
						}
					} else {
						ok++
					}
					mu.Unlock()
					time.Sleep(5 * time.Millisecond)
				}
			}()
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				for loopCtx.Err() == nil {
					for _, r := range routers {
						hops, err := r.KernelRoutes(labcluster.HostPrefix(addr))
						if err == nil && !slices.Contains(cluster.NodesOf(hops), "n1") {
							mu.Lock()
							dropped = append(dropped, fmt.Sprintf("%s at %s: %v", r.Name, time.Now().Format("15:04:05.000"), hops))
							mu.Unlock()
						}
					}
					time.Sleep(50 * time.Millisecond)
				}
			}()
			DeferCleanup(func() { stop(); wg.Wait() })
			count := func() int { mu.Lock(); defer mu.Unlock(); return ok }
			Eventually(count).Should(BeNumerically(">=", 20), "the client gets answers before the restart")

			killed := time.Now()
			Expect(cluster.RestartSpeaker("n1", sig)).To(Succeed())
			By("the new speaker re-establishing and refreshing its paths")
			for _, r := range routers {
				peer := cluster.NextHop("n1", r.Name, addr).String()
				Eventually(func(g Gomega) {
					d, found, err := labcluster.NeighborInfo(r, peer)
					g.Expect(err).NotTo(HaveOccurred())
					g.Expect(found).To(BeTrue())
					g.Expect(d.State).To(Equal("Established"))
					g.Expect(d.UpFor).To(BeNumerically("<", time.Since(killed)), "%s: the session with n1 was re-established after the restart", r.Name)
					paths, err := labcluster.Paths(r, labcluster.HostPrefix(addr))
					g.Expect(err).NotTo(HaveOccurred())
					g.Expect(paths).To(HaveLen(3))
					for _, p := range paths {
						g.Expect(p.Stale).To(BeFalse(), "%s: path %+v is still stale", r.Name, p)
					}
				}).Should(Succeed())
			}
			before := count()
			Eventually(count).Should(BeNumerically(">=", before+20), "the client keeps getting answers")
			stop()
			wg.Wait()

			mu.Lock()
			defer mu.Unlock()
			AddReportEntry("connections during the restart", fmt.Sprintf("ok=%d failed=%d", ok, failed))
			Expect(failures).To(BeEmpty(), "connections failed (%d of %d) across the restart", failed, ok+failed)
			Expect(dropped).To(BeEmpty(), "a router dropped n1's next hop during its speaker's graceful restart")
		},
		Entry("after SIGTERM (the pod is deleted)", syscall.SIGTERM),
		Entry("after SIGKILL (the speaker crashes)", syscall.SIGKILL),
	)

	It("j) drains a node labelled exclude-from-external-load-balancers: GRACEFUL_SHUTDOWN first, then withdraw", bgpLabel, func() {
		_, addrs := createService(labcluster.ServiceOptions{Name: "drain"}, 1)
		addr := addrs[0]
		serve(addr, nodes...)
		expectAnnounced(addr, nodes...)

		labelNode("n3", corev1.LabelNodeExcludeBalancers, str("true"))
		labelled := time.Now()
		By("n3 re-announcing with the GRACEFUL_SHUTDOWN community, so the routers move traffic off it first")
		seen := map[string]bool{}
		Eventually(func(g Gomega) {
			for _, r := range routers {
				if seen[r.Name] {
					continue
				}
				v, err := viewOf(r, addr)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(v.BGP).To(ContainElement("n3"), "%s: n3 withdrew before announcing GRACEFUL_SHUTDOWN", r.Name)
				gshut := false
				for _, p := range v.Paths {
					if cluster.NodeOf(p.NextHop) == "n3" {
						gshut = slices.Contains(p.Communities, "graceful-shutdown")
					} else {
						g.Expect(p.Communities).NotTo(ContainElement("graceful-shutdown"), "%s: only n3 drains: %+v", r.Name, p)
					}
				}
				// RFC 8326: the router lowers the draining path's preference
				// (FRR sets LOCAL_PREF 0), so the kernel route leaves n3
				// while its path is still there.
				if gshut && slices.Equal(v.Kernel, []string{"n1", "n2"}) {
					seen[r.Name] = true
				}
			}
			g.Expect(seen).To(HaveLen(len(routers)), "routers that saw n3 draining")
		}, 30*time.Second, 100*time.Millisecond).Should(Succeed())

		By("n3 withdrawing after the drain time")
		expectAnnounced(addr, "n1", "n2")
		Expect(time.Since(labelled)).To(BeNumerically(">=", cluster.DrainTime()-500*time.Millisecond),
			"n3 withdrew before the drain time (%v) was over", cluster.DrainTime())
		Expect(answers(addr, 20)).NotTo(HaveKey("n3"))

		By("removing the label")
		Expect(setNodeLabel("n3", corev1.LabelNodeExcludeBalancers, nil)).To(Succeed())
		expectAnnounced(addr, nodes...)
		for _, r := range routers {
			v, err := viewOf(r, addr)
			Expect(err).NotTo(HaveOccurred())
			for _, p := range v.Paths {
				Expect(p.Communities).NotTo(ContainElement("graceful-shutdown"), "%s: %+v", r.Name, p)
			}
		}
	})
})
