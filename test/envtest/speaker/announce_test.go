package speaker_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	. "github.com/onsi/gomega/gstruct"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp/bgptest"
)

var _ = Describe("Announcing Service addresses", func() {
	It("announces an allocated address while its Service has a ready endpoint", func() {
		pool := uniq("pool")
		advertise(uniq("adv"), v1alpha1.BGPAdvertisementSpec{IPPools: []string{pool}, Peers: []string{"rtr-a"}})

		web := service("web")
		allocate("192.0.2.10", pool, web)
		By("not announcing it while the Service has no endpoint")
		// The barrier's EndpointSlice, Service and IPAllocation come after
		// web's: once it is announced, web's state has been seen too.
		announcedService("192.0.2.11", pool)
		Eventually(prefixes(rtrA)).Should(ContainElement("192.0.2.11/32"))
		Expect(prefixes(rtrA)()).NotTo(ContainElement("192.0.2.10/32"))

		By("announcing it once an endpoint is ready, with this node as next hop")
		setEndpoints(web, readyOn("node-b"))
		Eventually(route(rtrA, "192.0.2.10/32")).Should(MatchFields(IgnoreExtras, Fields{
			"NextHop": Equal(speakerV4),
			"ASPath":  Equal([]uint32{localASN}),
		}))

		By("keeping it while the last endpoint is terminating but still serving")
		setEndpoints(web, terminatingOn("node-b"))
		announcedService("192.0.2.12", pool) // barrier
		Eventually(prefixes(rtrA)).Should(ContainElement("192.0.2.12/32"))
		Expect(prefixes(rtrA)()).To(ContainElement("192.0.2.10/32"))

		By("withdrawing it when no endpoint serves any more")
		setEndpoints(web, goneOn("node-b"), notReadyOn("node-c"))
		Eventually(prefixes(rtrA)).ShouldNot(ContainElement("192.0.2.10/32"))

		By("announcing it again when an endpoint is ready, and withdrawing it when the Service stops being a LoadBalancer")
		setEndpoints(web, readyOn("node-c"))
		Eventually(prefixes(rtrA)).Should(ContainElement("192.0.2.10/32"))
		Expect(k8s.Get(ctx, keyOf(web), web)).To(Succeed())
		web.Spec.Type = corev1.ServiceTypeClusterIP
		web.Spec.AllocateLoadBalancerNodePorts = nil
		Expect(k8s.Update(ctx, web)).To(Succeed())
		Eventually(prefixes(rtrA)).ShouldNot(ContainElement("192.0.2.10/32"))
		Expect(prefixes(rtrA)()).To(ContainElements("192.0.2.11/32", "192.0.2.12/32"))

		By("announcing it again when it becomes a LoadBalancer again (the speaker caches only LoadBalancer Services)")
		Expect(k8s.Get(ctx, keyOf(web), web)).To(Succeed())
		web.Spec.Type = corev1.ServiceTypeLoadBalancer
		web.Spec.AllocateLoadBalancerNodePorts = ptrTo(false)
		Expect(k8s.Update(ctx, web)).To(Succeed())
		Eventually(prefixes(rtrA)).Should(ContainElement("192.0.2.10/32"))
	})

	It("never announces an address from a Service's status alone (docs/architecture.md#announce-only-allocated)", func() {
		pool := uniq("pool")
		advertise(uniq("adv"), v1alpha1.BGPAdvertisementSpec{IPPools: []string{pool}})

		claimed := service("claimed")
		setEndpoints(claimed, readyOn("node-b"))
		claimed.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.20"}}
		Expect(k8s.Status().Update(ctx, claimed)).To(Succeed())

		By("an allocation naming another Service with the same name does not count")
		stale := &v1alpha1.IPAllocation{
			ObjectMeta: metav1.ObjectMeta{Name: "192.0.2.20"},
			Spec: v1alpha1.IPAllocationSpec{Address: "192.0.2.20", Pool: pool, Services: []v1alpha1.ServiceReference{
				{Namespace: ns, Name: "claimed", UID: "00000000-0000-0000-0000-000000000000"}}},
		}
		create(stale)
		announcedService("192.0.2.21", pool) // barrier: created after both
		Eventually(prefixes(rtrA)).Should(ContainElement("192.0.2.21/32"))
		Expect(prefixes(rtrA)()).NotTo(ContainElement("192.0.2.20/32"))

		By("an allocation for this Service does")
		Expect(k8s.Delete(ctx, stale)).To(Succeed())
		alloc := allocate("192.0.2.20", pool, claimed)
		Eventually(prefixes(rtrA)).Should(ContainElement("192.0.2.20/32"))
		Eventually(prefixes(rtrB)).Should(ContainElement("192.0.2.20/32"), "an advertisement naming no peer goes to all")

		By("and deleting the allocation withdraws it, whatever the Service's status says")
		Expect(k8s.Delete(ctx, alloc)).To(Succeed())
		Eventually(prefixes(rtrA)).ShouldNot(ContainElement("192.0.2.20/32"))
		Eventually(prefixes(rtrB)).ShouldNot(ContainElement("192.0.2.20/32"))
	})

	It("announces a Service with externalTrafficPolicy Local only while this node has a serving endpoint", func() {
		pool := uniq("pool")
		advertise(uniq("adv"), v1alpha1.BGPAdvertisementSpec{IPPools: []string{pool}, Peers: []string{"rtr-a"}})
		svc := service("local", local)
		setEndpoints(svc, readyOn("node-b"))
		allocate("192.0.2.30", pool, svc)

		By("not from this node while the endpoints are elsewhere")
		announcedService("192.0.2.31", pool) // barrier
		Eventually(prefixes(rtrA)).Should(ContainElement("192.0.2.31/32"))
		Expect(prefixes(rtrA)()).NotTo(ContainElement("192.0.2.30/32"))

		By("from this node once it has a ready endpoint")
		setEndpoints(svc, readyOn("node-b"), readyOn(nodeName))
		Eventually(prefixes(rtrA)).Should(ContainElement("192.0.2.30/32"))

		By("still while the local endpoint terminates but serves")
		setEndpoints(svc, readyOn("node-b"), terminatingOn(nodeName))
		announcedService("192.0.2.32", pool) // barrier
		Eventually(prefixes(rtrA)).Should(ContainElement("192.0.2.32/32"))
		Expect(prefixes(rtrA)()).To(ContainElement("192.0.2.30/32"))

		By("withdrawn as soon as the last local endpoint is gone, though others remain")
		setEndpoints(svc, readyOn("node-b"), goneOn(nodeName))
		Eventually(prefixes(rtrA)).ShouldNot(ContainElement("192.0.2.30/32"))
	})

	It("announces a shared address while any of its Services wants it", func() {
		pool := uniq("pool")
		advertise(uniq("adv"), v1alpha1.BGPAdvertisementSpec{IPPools: []string{pool}, Peers: []string{"rtr-a"}})
		tcp, udp := service("dns-tcp"), service("dns-udp", local)
		setEndpoints(tcp, readyOn("node-b"))
		setEndpoints(udp, readyOn("node-b")) // Local, elsewhere: does not want it here
		allocate("192.0.2.40", pool, tcp, udp)
		Eventually(prefixes(rtrA)).Should(ContainElement("192.0.2.40/32"))

		By("the other Service alone keeps it announced")
		setEndpoints(udp, readyOn(nodeName))
		setEndpoints(tcp, notReadyOn("node-b"))
		announcedService("192.0.2.41", pool) // barrier
		Eventually(prefixes(rtrA)).Should(ContainElement("192.0.2.41/32"))
		Expect(prefixes(rtrA)()).To(ContainElement("192.0.2.40/32"))

		By("withdrawn when neither wants it")
		setEndpoints(udp, goneOn(nodeName))
		Eventually(prefixes(rtrA)).ShouldNot(ContainElement("192.0.2.40/32"))
	})
})

var _ = Describe("Advertisements", func() {
	It("give each peer its own communities, large communities, local preference and aggregation", func() {
		pool := uniq("pool")
		advertise(uniq("adv-a"), v1alpha1.BGPAdvertisementSpec{
			IPPools:          []string{pool},
			Peers:            []string{"rtr-a"},
			Communities:      []v1alpha1.Community{"65000:100", "no-export"},
			LargeCommunities: []v1alpha1.LargeCommunity{"65000:1:2"},
			LocalPref:        ptrTo[int64](300), // eBGP: never sent
		})
		advertise(uniq("adv-b"), v1alpha1.BGPAdvertisementSpec{
			IPPools:           []string{pool},
			Peers:             []string{"rtr-b"},
			Communities:       []v1alpha1.Community{"65000:200"},
			LocalPref:         ptrTo[int64](250),
			AggregationLength: ptrTo[int32](24),
		})
		announcedService("198.51.100.10", pool)
		announcedService("198.51.100.77", pool)

		Eventually(route(rtrA, "198.51.100.10/32")).Should(MatchFields(IgnoreExtras, Fields{
			"NextHop":   Equal(speakerV4),
			"LocalPref": BeNil(),
		}))
		Expect(communities(route(rtrA, "198.51.100.10/32")())).To(Equal("65000:100 65535:65281 | 65000:1:2"))

		Eventually(route(rtrB, "198.51.100.0/24")).Should(MatchFields(IgnoreExtras, Fields{
			"NextHop":   Equal(speakerV4),
			"LocalPref": PointTo(BeEquivalentTo(250)),
		}))
		Expect(communities(route(rtrB, "198.51.100.0/24")())).To(Equal("65000:200 | "))
		// The /24 reaches rtr-b as soon as one address under it is announced;
		// wait for both host routes at rtr-a before checking what rtr-b lacks.
		Eventually(prefixes(rtrA)).Should(ContainElements("198.51.100.10/32", "198.51.100.77/32"))
		Expect(prefixes(rtrA)()).NotTo(ContainElement("198.51.100.0/24"))
		Expect(prefixes(rtrB)()).NotTo(ContainElement("198.51.100.10/32"))
		Expect(prefixes(rtrB)()).NotTo(ContainElement("198.51.100.77/32"))

		By("the aggregate stays while any address under it is announced")
		// Deleting one of the two Services' allocations keeps the /24.
		Expect(k8s.Delete(ctx, &v1alpha1.IPAllocation{ObjectMeta: metav1.ObjectMeta{Name: "198.51.100.77"}})).To(Succeed())
		Eventually(prefixes(rtrA)).ShouldNot(ContainElement("198.51.100.77/32"))
		Expect(prefixes(rtrB)()).To(ContainElement("198.51.100.0/24"))
	})

	It("send IPv6 addresses to IPv6 peers and IPv4 addresses to IPv4 peers", func() {
		pool := uniq("pool")
		advertise(uniq("adv"), v1alpha1.BGPAdvertisementSpec{IPPools: []string{pool}, Communities: []v1alpha1.Community{"65000:6"}})
		announcedService("2001:db8:1::10", pool)
		announcedService("203.0.113.60", pool)
		Eventually(route(rtr6, "2001:db8:1::10/128")).Should(MatchFields(IgnoreExtras, Fields{
			"NextHop": Equal(speakerV6),
			"ASPath":  Equal([]uint32{localASN}),
		}))
		Expect(route(rtr6, "2001:db8:1::10/128")().HasCommunity("65000:6")).To(BeTrue())
		Eventually(prefixes(rtrA)).Should(ContainElement("203.0.113.60/32"))
		Expect(prefixes(rtrA)()).NotTo(ContainElement("2001:db8:1::10/128"))
		Expect(prefixes(rtr6)()).NotTo(ContainElement("203.0.113.60/32"))
	})

	It("follow their node selector and their pools' labels", func() {
		pool, other := uniq("pool"), uniq("pool")
		labelled := &v1alpha1.IPPool{
			ObjectMeta: metav1.ObjectMeta{Name: other, Labels: map[string]string{"exposure": "public"}},
			Spec:       v1alpha1.IPPoolSpec{Addresses: []v1alpha1.AddressRange{"203.0.113.64/28"}},
		}
		create(labelled)
		announcedService("203.0.113.70", pool)  // under test: rack-selected advertisement
		announcedService("203.0.113.71", other) // pool selected by label
		advertise(uniq("adv-rack"), v1alpha1.BGPAdvertisementSpec{
			IPPools: []string{pool}, Peers: []string{"rtr-a"},
			NodeSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"rack": "r9"}},
		})
		// Created after the other advertisement: once its address is
		// announced, the rack advertisement has been seen too.
		advertise(uniq("adv-public"), v1alpha1.BGPAdvertisementSpec{
			IPPoolSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"exposure": "public"}}, Peers: []string{"rtr-a"},
		})
		Eventually(prefixes(rtrA)).Should(ContainElement("203.0.113.71/32"))
		Expect(prefixes(rtrA)()).NotTo(ContainElement("203.0.113.70/32"))

		By("announcing once the node gets the label")
		labelNode("rack", "r9")
		Eventually(prefixes(rtrA)).Should(ContainElement("203.0.113.70/32"))

		By("withdrawing when the label goes")
		setNodeLabel("rack", nil)
		Eventually(prefixes(rtrA)).ShouldNot(ContainElement("203.0.113.70/32"))

		By("withdrawing when the pool loses its label")
		Expect(k8s.Get(ctx, keyOf(labelled), labelled)).To(Succeed())
		labelled.Labels = nil
		Expect(k8s.Update(ctx, labelled)).To(Succeed())
		Eventually(prefixes(rtrA)).ShouldNot(ContainElement("203.0.113.71/32"))
	})
})

var _ = Describe("Peers", func() {
	It("open a session only from the nodes their node selector picks", func() {
		rtrC := startRouter("127.0.0.4", 65003, speakerV4, false)
		DeferCleanup(rtrC.Stop)
		p := bgpPeer("rtr-c", rtrC, speakerV4)
		p.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"bgp-rack": "c"}}
		create(p)
		pool := uniq("pool")
		advertise(uniq("adv"), v1alpha1.BGPAdvertisementSpec{IPPools: []string{pool}, Peers: []string{"rtr-c", "rtr-a"}})
		announcedService("203.0.113.80", pool)

		Eventually(prefixes(rtrA)).Should(ContainElement("203.0.113.80/32"))
		Consistently(func() string { s, _ := rtrC.Session(speakerV4); return s.State }).ShouldNot(Equal("Established"))
		Expect(sessionPeers()).NotTo(ContainElement("rtr-c"))

		By("peering once the node is selected")
		labelNode("bgp-rack", "c")
		Eventually(prefixes(rtrC)).Should(ContainElement("203.0.113.80/32"))
		Eventually(session("rtr-c")).Should(MatchFields(IgnoreExtras, Fields{
			"State":        Equal(v1alpha1.SessionEstablished),
			"Address":      Equal("127.0.0.4"),
			"PrefixesSent": BeEquivalentTo(1),
		}))
		Eventually(peerStatus("rtr-c")).Should(MatchFields(IgnoreExtras, Fields{"Sessions": Equal("1/1")}))

		By("closing the session when it no longer is")
		setNodeLabel("bgp-rack", nil)
		Eventually(func() string { s, _ := rtrC.Session(speakerV4); return s.State }).ShouldNot(Equal("Established"))
		Eventually(sessionPeers).ShouldNot(ContainElement("rtr-c"))
		Expect(prefixes(rtrA)()).To(ContainElement("203.0.113.80/32"), "other sessions are untouched")
	})

	It("report a missing password Secret, and connect with TCP-MD5 once it exists", func() {
		rtrD, err := bgptest.Start(bgptest.Options{ASN: 65004, Address: mustAddr("127.0.0.5")})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(rtrD.Stop)
		Expect(rtrD.AddNeighbor(bgptest.Neighbor{Address: speakerV4, ASN: localASN, Password: "s3cret-md5"})).To(Succeed())
		p := bgpPeer("rtr-md5", rtrD, speakerV4)
		p.Spec.PasswordSecretRef = &v1alpha1.SecretKeyReference{Name: "rtr-md5-auth", Key: "password"}
		create(p)

		By("reporting the problem on the node's session, the BGPPeer's condition and an event")
		Eventually(session("rtr-md5")).Should(MatchFields(IgnoreExtras, Fields{
			"State":     Equal(v1alpha1.SessionIdle),
			"LastError": ContainSubstring("PasswordSecretNotFound"),
		}))
		Eventually(peerCondition("rtr-md5", "Valid")).Should(MatchFields(IgnoreExtras, Fields{
			"Status": Equal(metav1.ConditionFalse),
			"Reason": Equal("PasswordSecretNotFound"),
		}))
		Eventually(eventReasons("BGPPeer", "rtr-md5")).Should(ContainElement("PasswordSecretNotFound"))
		Expect(sessionEstablished(rtrA)).To(BeTrue(), "other sessions are untouched")

		By("connecting once the Secret exists")
		create(&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: v1alpha1.InstallNamespace, Name: "rtr-md5-auth"},
			Data:       map[string][]byte{"password": []byte("s3cret-md5")},
		})
		Eventually(func() bool { return sessionEstablished(rtrD) }).Should(BeTrue())
		Eventually(session("rtr-md5")).Should(MatchFields(IgnoreExtras, Fields{"State": Equal(v1alpha1.SessionEstablished)}))
		Eventually(peerCondition("rtr-md5", "Valid")).Should(MatchFields(IgnoreExtras, Fields{"Status": Equal(metav1.ConditionTrue)}))
	})
})

func sessionEstablished(r *bgptest.Router) bool {
	n := speakerV4
	if r.Address().Is6() {
		n = speakerV6
	}
	s, _ := r.Session(n)
	return s.Established()
}

var _ = Describe("Excluding the node from load balancers", func() {
	It("re-announces with GRACEFUL_SHUTDOWN, withdraws after the drain time, and restores when the label goes", func() {
		pool := uniq("pool")
		advertise(uniq("adv"), v1alpha1.BGPAdvertisementSpec{IPPools: []string{pool}, Peers: []string{"rtr-a", "rtr-b"},
			Communities: []v1alpha1.Community{"65000:300"}})
		announcedService("203.0.113.90", pool)
		Eventually(route(rtrA, "203.0.113.90/32")).Should(MatchFields(IgnoreExtras, Fields{"NextHop": Equal(speakerV4)}))
		Expect(communities(route(rtrA, "203.0.113.90/32")())).To(Equal("65000:300 | "))
		Eventually(condition("Draining")).Should(MatchFields(IgnoreExtras, Fields{"Status": Equal(metav1.ConditionFalse)}))

		By("labelling the node")
		labelNode(corev1.LabelNodeExcludeBalancers, "")
		for _, r := range []*bgptest.Router{rtrA, rtrB} {
			Eventually(func() string { return communities(route(r, "203.0.113.90/32")()) }).
				Should(Equal("65000:300 65535:0 | "), "router %v gets GRACEFUL_SHUTDOWN", r.Address())
		}
		Eventually(condition("Draining")).Should(MatchFields(IgnoreExtras, Fields{
			"Status": Equal(metav1.ConditionTrue), "Reason": Equal("GracefulShutdown"),
		}))

		By("withdrawing after the drain time, sessions still up")
		Eventually(prefixes(rtrA)).WithTimeout(drainTime + time.Minute).ShouldNot(ContainElement("203.0.113.90/32"))
		Eventually(prefixes(rtrB)).ShouldNot(ContainElement("203.0.113.90/32"))
		Expect(sessionEstablished(rtrA)).To(BeTrue())
		Eventually(condition("Draining")).Should(MatchFields(IgnoreExtras, Fields{"Reason": Equal("Withdrawn")}))

		// What the router saw, in order: the route, the route again with
		// GRACEFUL_SHUTDOWN no sooner than it was labelled, then the withdrawal
		// no sooner than the drain time after that.
		ups := rtrA.UpdatesFor(mustPrefix("203.0.113.90/32"))
		Expect(len(ups)).To(BeNumerically(">=", 3))
		last := ups[len(ups)-3:]
		Expect(last[0].Withdraw || last[0].HasCommunity("65535:0")).To(BeFalse(), "first the plain route: %+v", last[0])
		Expect(!last[1].Withdraw && last[1].HasCommunity("65535:0")).To(BeTrue(), "then GRACEFUL_SHUTDOWN: %+v", last[1])
		Expect(last[2].Withdraw).To(BeTrue(), "then the withdrawal: %+v", last[2])
		Expect(last[2].Time.Sub(last[1].Time)).To(BeNumerically(">=", drainTime-time.Second))

		By("announcing normally again when the label goes")
		setNodeLabel(corev1.LabelNodeExcludeBalancers, nil)
		Eventually(func() string { return communities(route(rtrA, "203.0.113.90/32")()) }).Should(Equal("65000:300 | "))
		Eventually(condition("Draining")).Should(MatchFields(IgnoreExtras, Fields{"Status": Equal(metav1.ConditionFalse)}))
	})
})
