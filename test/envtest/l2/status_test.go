package l2_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// What `kubectl describe svc` shows of L2 mode: the condition naming the
// owner, an event per owner change, and no write while nothing changes.
var _ = Describe("The L2Announced condition and events", func() {
	It("names the owner, records an event on every owner change, and writes nothing while nothing changes", func() {
		ns := newNamespace("status")
		createPool("st-pool", "198.51.100.8/29", nil)
		createAdv("st-adv", v1alpha1.L2AdvertisementSpec{IPPools: []string{"st-pool"}})
		createService(ns, "web", nil, inPool("st-pool"))
		ip := addressOf(ns, "web")
		Expect(ip.String()).To(HavePrefix("198.51.100."))

		owner := ownerOf(ns, "web", ip)
		Eventually(l2Events(ns, "web")).Should(Equal([]string{
			"Normal: L2: " + ip.String() + " on " + owner + " (eth0) (written by " + owner + ")",
		}))

		// Bounded writes: heartbeats keep flowing every 100 ms and every
		// speaker reconciles on its peers' news, yet the Service is not
		// written again and no event is added.
		rv := getService(ns, "web").ResourceVersion
		Consistently(func() string { return getService(ns, "web").ResourceVersion }).Should(Equal(rv),
			"nothing changed: the Service must not be written")
		Expect(l2Events(ns, "web")()).To(HaveLen(1))

		// An owner change: the owner is excluded from load balancers.
		setNodeLabel(owner, excludeLabel, "")
		DeferCleanup(removeNodeLabel, owner, excludeLabel)
		next := ownerOf(ns, "web", ip, owner)
		Eventually(l2Events(ns, "web")).Should(ConsistOf(
			"Normal: L2: "+ip.String()+" on "+owner+" (eth0) (written by "+owner+")",
			"Normal: L2: "+ip.String()+" on "+next+" (eth0) (written by "+next+")",
		))
		rv = getService(ns, "web").ResourceVersion
		Consistently(func() string { return getService(ns, "web").ResourceVersion }).Should(Equal(rv))
	})

	It("is False with NoEligibleNode when no node may answer, written by the first Ready selected node", func() {
		ns := newNamespace("status")
		createPool("st-none", "198.51.100.16/29", nil)
		createAdv("st-none", v1alpha1.L2AdvertisementSpec{IPPools: []string{"st-none"}})
		// externalTrafficPolicy: Local with the only endpoint not ready.
		createService(ns, "local", []string{"node-b"}, inPool("st-none"), localTraffic())
		ip := addressOf(ns, "local")
		expectOwner(ns, "local", ip, "node-b")

		setEndpoints(ns, "local", []string{"node-b"}, false)
		Eventually(l2Condition(ns, "local")).Should(Equal("False/NoEligibleNode: " + ip.String() + " on no node (none is eligible)"))
		Eventually(answering(ip)).Should(BeEmpty())
		Eventually(l2Events(ns, "local")).Should(ContainElement(
			"Normal: L2: " + ip.String() + " on no node (none is eligible) (written by node-a)"))
	})

	It("is False with NoEligibleNode when the advertisement selects no node, instead of naming the old owner", func() {
		ns := newNamespace("status")
		createPool("st-nosel", "198.51.100.88/29", nil)
		createAdv("st-nosel", v1alpha1.L2AdvertisementSpec{IPPools: []string{"st-nosel"}})
		createService(ns, "web", nil, inPool("st-nosel"))
		ip := addressOf(ns, "web")
		ownerOf(ns, "web", ip)

		updateAdv("st-nosel", func(a *v1alpha1.L2Advertisement) {
			a.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"l2.test/none": "yes"}}
		})
		Eventually(l2Condition(ns, "web")).Should(Equal("False/NoEligibleNode: " + ip.String() + " on no node (none is eligible)"))
		Eventually(answering(ip)).Should(BeEmpty())
	})
})
