package speaker_test

import (
	"net/netip"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// docs/architecture.md#constant-bgp-work: a change to one Service is
// handled on its own; the routers see nothing about the other Services.
var _ = Describe("A change to one Service", func() {
	updates := func(prefix string) int { return len(rtrA.UpdatesFor(netip.MustParsePrefix(prefix))) }

	It("sends the routers only that Service's route", func() {
		pool := uniq("pool")
		advertise(uniq("adv"), v1alpha1.BGPAdvertisementSpec{IPPools: []string{pool}, Peers: []string{"rtr-a"}})
		announcedService("192.0.2.50", pool)
		flipped := announcedService("192.0.2.51", pool)
		Eventually(prefixes(rtrA)).Should(ContainElements("192.0.2.50/32", "192.0.2.51/32"))
		before := updates("192.0.2.50/32")

		By("withdrawing the Service that lost its endpoints, and only it")
		setEndpoints(flipped, notReadyOn("node-b"))
		Eventually(prefixes(rtrA)).ShouldNot(ContainElement("192.0.2.51/32"))
		By("announcing it again when it has one")
		setEndpoints(flipped, readyOn("node-b"))
		Eventually(prefixes(rtrA)).Should(ContainElement("192.0.2.51/32"))
		announcedService("192.0.2.52", pool) // barrier
		Eventually(prefixes(rtrA)).Should(ContainElement("192.0.2.52/32"))
		Expect(updates("192.0.2.50/32")).To(Equal(before), "the other Service's route was sent again")
	})

	It("keeps an aggregate while any member is announced and withdraws it with the last", func() {
		pool, barrierPool := uniq("pool"), uniq("pool")
		advertise(uniq("adv"), v1alpha1.BGPAdvertisementSpec{IPPools: []string{pool}, Peers: []string{"rtr-a"},
			AggregationLength: ptrTo[int32](29)})
		advertise(uniq("adv"), v1alpha1.BGPAdvertisementSpec{IPPools: []string{barrierPool}, Peers: []string{"rtr-a"}})
		first := announcedService("203.0.113.200", pool)
		second := announcedService("203.0.113.201", pool)
		Eventually(prefixes(rtrA)).Should(ContainElement("203.0.113.200/29"))
		Expect(prefixes(rtrA)()).NotTo(ContainElements("203.0.113.200/32", "203.0.113.201/32"))
		before := updates("203.0.113.200/29")

		By("keeping it, without sending it again, while one member is left")
		setEndpoints(first, notReadyOn("node-b"))
		announcedService("192.0.2.53", barrierPool) // barrier
		Eventually(prefixes(rtrA)).Should(ContainElement("192.0.2.53/32"))
		Expect(prefixes(rtrA)()).To(ContainElement("203.0.113.200/29"))
		Expect(updates("203.0.113.200/29")).To(Equal(before))

		By("withdrawing it with the last member")
		setEndpoints(second, notReadyOn("node-b"))
		Eventually(prefixes(rtrA)).ShouldNot(ContainElement("203.0.113.200/29"))

		By("announcing it again with the first member back")
		setEndpoints(first, readyOn("node-b"))
		Eventually(prefixes(rtrA)).Should(ContainElement("203.0.113.200/29"))
	})
})
