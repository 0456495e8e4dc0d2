package l2_test

import (
	"fmt"
	"net/netip"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/test/envtest/framework"
)

var _ = Describe("Which addresses are announced", func() {
	It("announces the pools an L2Advertisement selects by name or label, also those BGP announces, and no other", func() {
		ns := newNamespace("pools")
		createPool("po-name", "198.51.100.96/29", nil)
		createPool("po-label", "198.51.100.104/29", map[string]string{"l2.test/mode": "l2"})
		createPool("po-other", "198.51.100.112/29", map[string]string{"l2.test/mode": "bgp"})
		createAdv("po-name", v1alpha1.L2AdvertisementSpec{IPPools: []string{"po-name"}})
		createAdv("po-label", v1alpha1.L2AdvertisementSpec{
			IPPoolSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"l2.test/mode": "l2"}}})
		// BGP announces po-name too: L2 still gives it an owner.
		bgpAdv := &v1alpha1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: "po-both"},
			Spec: v1alpha1.BGPAdvertisementSpec{IPPools: []string{"po-name", "po-other"}}}
		Expect(k8s.Create(ctx, bgpAdv)).To(Succeed())
		DeferCleanup(k8s.Delete, ctx, bgpAdv)

		createService(ns, "by-name", nil, inPool("po-name"))
		createService(ns, "by-label", nil, inPool("po-label"))
		createService(ns, "not-l2", nil, inPool("po-other"))
		byName, byLabel, notL2 := addressOf(ns, "by-name"), addressOf(ns, "by-label"), addressOf(ns, "not-l2")
		ownerOf(ns, "by-name", byName)
		ownerOf(ns, "by-label", byLabel)
		Consistently(l2Condition(ns, "not-l2")).Should(Equal("<none>"), "no L2Advertisement selects po-other")
		Expect(answering(notL2)()).To(BeEmpty())

		// The pool's label changes: L2 follows it.
		updatePoolLabel("po-other", "l2")
		ownerOf(ns, "not-l2", notL2)
		updatePoolLabel("po-label", "bgp")
		Eventually(answering(byLabel)).Should(BeEmpty(), "po-label is no longer selected")
		Eventually(l2Condition(ns, "by-label")).Should(Equal("<none>"), "the condition goes with the announcement, not naming a node that stopped answering")
		ownerOf(ns, "by-name", byName) // the others keep theirs
	})

	It("has one node answer from the start when the first L2Advertisement selects an address, not every node for a moment", func() {
		var advs v1alpha1.L2AdvertisementList
		Expect(k8s.List(ctx, &advs)).To(Succeed())
		Expect(advs.Items).To(BeEmpty(), "the spec needs nodes no advertisement selected yet")
		ns := newNamespace("first")
		createPool("first-pool", "198.51.100.128/29", nil)
		createService(ns, "web", nil, inPool("first-pool"))
		ip := addressOf(ns, "web")
		Consistently(answering(ip), "300ms").Should(BeEmpty(), "no L2Advertisement yet")
		// No advertisement selected these nodes before this one: they
		// exchange no heartbeats yet and know nothing of each other's links.
		createAdv("first-adv", v1alpha1.L2AdvertisementSpec{IPPools: []string{"first-pool"}})
		owner := ownerOf(ns, "web", ip)
		Expect(answeredEver(ip)).To(Equal([]string{owner}), "a node other than the owner answered for %s at some point", ip)
	})

	It("gives a shared address one owner for all its Services", func() {
		ns := newNamespace("pools")
		createPool("po-share", "198.51.100.120/29", nil)
		createAdv("po-share", v1alpha1.L2AdvertisementSpec{IPPools: []string{"po-share"}})
		createService(ns, "http", nil, inPool("po-share"), sharing("web"), port(80))
		createService(ns, "https", nil, inPool("po-share"), sharing("web"), port(443))
		ip := addressOf(ns, "http")
		Expect(addressOf(ns, "https")).To(Equal(ip), "the IPAM controller shares the address")
		owner := ownerOf(ns, "http", ip)
		Eventually(l2Condition(ns, "https")).Should(Equal(announced(ip, owner)))
	})

	It("spreads addresses over the three nodes, one owner each", func() {
		// A fixed namespace: the owners hash the Services' names, so the
		// spread checked is the same on every run, whatever the spec order.
		ns := "l2-spread"
		Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		createPool("po-spread", "198.51.100.128/28", nil)
		createAdv("po-spread", v1alpha1.L2AdvertisementSpec{IPPools: []string{"po-spread"}})
		const n = 12
		ips := make([]netip.Addr, n)
		for i := range n {
			createService(ns, fmt.Sprintf("s%d", i), nil, inPool("po-spread"))
		}
		perNode := map[string]int{}
		for i := range n {
			name := fmt.Sprintf("s%d", i)
			ips[i] = addressOf(ns, name)
			perNode[ownerOf(ns, name, ips[i])]++
		}
		GinkgoWriter.Printf("addresses per node: %v\n", perNode)
		Expect(perNode).To(HaveLen(3), "every node should own some of the %d addresses: %v", n, perNode)
	})
})

func updatePoolLabel(name, mode string) {
	GinkgoHelper()
	Expect(framework.Update(ctx, k8s, client.ObjectKey{Name: name}, &v1alpha1.IPPool{},
		func(p *v1alpha1.IPPool) { p.Labels["l2.test/mode"] = mode })).To(Succeed())
}
