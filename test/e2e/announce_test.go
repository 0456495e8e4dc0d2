package e2e

import (
	"context"
	"net/netip"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bgplb/bgplb/test/lab"
	"github.com/bgplb/bgplb/test/labcluster"
)

// The lab pool (config/samples/lab/ippool.yaml).
var (
	labPool4 = mustPrefix("203.0.113.0/25")
	labPool6 = mustPrefix("2001:db8:ffff::/120")
)

var _ = Describe("Announcing Service addresses", bgpLabel, func() {
	BeforeEach(expectSessionsUp)

	It("a) gives a Service an address that both routers learn from all three nodes as an ECMP route the client reaches", func() {
		_, addrs := createService(labcluster.ServiceOptions{Name: "spread"}, 1)
		addr := addrs[0]
		Expect(addr).To(inPrefix(labPool4), "the address comes from the lab pool")
		serve(addr, nodes...)

		expectAnnounced(addr, nodes...)
		for _, r := range routers {
			v, err := viewOf(r, addr)
			Expect(err).NotTo(HaveOccurred())
			for _, p := range v.Paths {
				Expect(p.Multipath).To(BeTrue(), "%s: every path is used for ECMP: %+v", r.Name, p)
				Expect(p.ASPath).To(Equal("64512"), "%s: announced from the nodes' AS: %+v", r.Name, p)
			}
			Expect(v.Kernel).To(HaveLen(3), "%s: one kernel next hop per node", r.Name)
		}

		counts := answers(addr, 60)
		answered := 0
		for _, n := range nodes {
			if counts[n] > 0 {
				answered++
			}
		}
		AddReportEntry("answers per node", describeCounts(counts))
		// Hashing on L4 ports spreads new connections; all 60 on one node
		// would happen with probability 3^-59.
		Expect(answered).To(BeNumerically(">=", 2), "60 connections spread over the nodes: %v", counts)
	})

	It("b) withdraws the route from both routers when the Service is deleted", func() {
		opts := labcluster.ServiceOptions{Namespace: testNS, Name: "short-lived", Port: servicePort}
		svc, err := cluster.CreateService(ctx, opts)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = cluster.DeleteService(ctx, svc) })
		addr := waitAddresses(svc, 1)[0]
		serve(addr, nodes...)
		expectAnnounced(addr, nodes...)
		Expect(answers(addr, 3)).NotTo(HaveKey(""))

		Expect(cluster.DeleteService(ctx, svc)).To(Succeed())
		expectWithdrawn(addr)
		// The nodes still listen: it is the route that is gone, so the client
		// gets no answer.
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err = lc.HTTPGet(c, lab.ServiceURL(addr, servicePort))
		Expect(err).To(HaveOccurred(), "the client still reaches a deleted Service's address")
	})

	It("c) with externalTrafficPolicy Local announces only from nodes with a ready local endpoint", func() {
		svc, addrs := createService(labcluster.ServiceOptions{Name: "local", Local: true, Backends: []string{"n1", "n2"}}, 1)
		addr := addrs[0]
		serve(addr, "n1", "n2")

		expectAnnounced(addr, "n1", "n2")
		for _, r := range routers {
			Consistently(func() ([]string, error) {
				v, err := viewOf(r, addr)
				return v.BGP, err
			}).Should(Equal([]string{"n1", "n2"}), "%s: n3 has no endpoint and must not announce", r.Name)
		}
		counts := answers(addr, 20)
		Expect(counts).To(HaveKey("n1"))
		Expect(counts).NotTo(HaveKey("n3"))

		By("removing n2's last endpoint")
		Expect(cluster.SetBackends(ctx, svc, "n1")).To(Succeed())
		expectAnnounced(addr, "n1")
		Expect(answers(addr, 10)).To(Equal(map[string]int{"n1": 10}))

		By("removing the last endpoint of all")
		Expect(cluster.SetBackends(ctx, svc)).To(Succeed())
		expectWithdrawn(addr)

		By("an endpoint coming back on n3")
		Expect(cluster.SetBackends(ctx, svc, "n3")).To(Succeed())
		expectAnnounced(addr, "n3")
	})

	It("g) announces a dual-stack Service over the IPv4 and IPv6 sessions and the client reaches both addresses", func() {
		_, addrs := createService(labcluster.ServiceOptions{Name: "dual", Families: labcluster.DualStack}, 2)
		var v4, v6 netip.Addr
		for _, a := range addrs {
			if a.Is4() {
				v4 = a
			} else {
				v6 = a
			}
		}
		Expect(v4).To(inPrefix(labPool4))
		Expect(v6).To(inPrefix(labPool6))
		serve(v4, nodes...)
		serve(v6, nodes...)

		expectAnnounced(v4, nodes...)
		expectAnnounced(v6, nodes...)
		for _, r := range routers {
			for _, a := range []netip.Addr{v4, v6} {
				v, err := viewOf(r, a)
				Expect(err).NotTo(HaveOccurred())
				for _, p := range v.Paths {
					peer, err := netip.ParseAddr(p.Peer)
					Expect(err).NotTo(HaveOccurred())
					Expect(peer.Is6()).To(Equal(a.Is6()), "%s: %s must arrive over a session of its own family, got it from %s", r.Name, a, p.Peer)
				}
			}
		}
		for _, a := range []netip.Addr{v4, v6} {
			counts := answers(a, 30)
			AddReportEntry("answers for "+a.String(), describeCounts(counts))
			Expect(len(counts)).To(BeNumerically(">=", 2), "%s: connections spread over the nodes: %v", a, counts)
		}
	})
})
