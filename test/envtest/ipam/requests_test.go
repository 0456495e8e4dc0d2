package ipam_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// Point 3 of the issue: requested addresses and named pools.
var _ = Describe("Requested addresses", func() {
	const ipsAnn, poolAnn = v1alpha1.AnnotationLoadBalancerIPs, v1alpha1.AnnotationIPPool

	It("gives the addresses asked for by annotation or spec.loadBalancerIP", func() {
		ns := newNamespace()
		createPool("r-pool", []string{"192.0.2.48/29", "2001:db8:5::/120"})
		createService(ns, "ann", annotate(ipsAnn, "2001:db8:5::50, 192.0.2.50"),
			families(corev1.IPFamilyPolicyPreferDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol))
		createService(ns, "spec", lbIP("192.0.2.51"))
		createService(ns, "v6long", annotate(ipsAnn, "2001:DB8:5:0:0:0:0:51"),
			families(corev1.IPFamilyPolicySingleStack, corev1.IPv6Protocol))
		Eventually(ingressIPs(ns, "ann")).Should(HaveExactElements("192.0.2.50", "2001:db8:5::50"))
		Eventually(ingressIPs(ns, "spec")).Should(HaveExactElements("192.0.2.51"))
		Eventually(ingressIPs(ns, "v6long")).Should(HaveExactElements("2001:db8:5::51"), "canonical form")
		a, err := getAllocation("2001:db8:5::51")
		Expect(err).NotTo(HaveOccurred())
		Expect(a.Name).To(Equal("2001-db8-5--51"))
	})

	It("hands out IPv6 addresses whose short form ends in ::", func() {
		ns := newNamespace()
		createPool("r-edge", []string{"2001:db8:9::/127"})
		createService(ns, "first", families(corev1.IPFamilyPolicySingleStack, corev1.IPv6Protocol))
		Eventually(ingressIPs(ns, "first")).Should(HaveExactElements("2001:db8:9::"))
		a, err := getAllocation("2001:db8:9::")
		Expect(err).NotTo(HaveOccurred())
		Expect(a.Name).To(Equal("2001-db8-9--0"))
		createService(ns, "asked", annotate(ipsAnn, "2001:db8:9::"), families(corev1.IPFamilyPolicySingleStack, corev1.IPv6Protocol))
		Eventually(condition(ns, "asked")).Should(Equal("False/RequestedAddressUnavailable"))
		Expect(conditionMessage(ns, "asked")()).To(ContainSubstring("is held by " + ns + "/first"))
	})

	It("rejects invalid requests with InvalidRequest, and serves them once fixed", func() {
		ns := newNamespace()
		createPool("r-invalid", []string{"192.0.2.56/30"})
		createService(ns, "both", annotate(ipsAnn, "192.0.2.57"), lbIP("192.0.2.57"))
		createService(ns, "garbage", annotate(ipsAnn, "192.0.2.999"))
		createService(ns, "twov4", annotate(ipsAnn, "192.0.2.57,192.0.2.58"))
		createService(ns, "family", annotate(ipsAnn, "2001:db8:5::9"))
		Eventually(condition(ns, "both")).Should(Equal("False/InvalidRequest"))
		Expect(conditionMessage(ns, "both")()).To(ContainSubstring("both spec.loadBalancerIP and the bgplb.io/load-balancer-ips annotation"))
		Eventually(condition(ns, "garbage")).Should(Equal("False/InvalidRequest"))
		Expect(conditionMessage(ns, "garbage")()).To(ContainSubstring(`"192.0.2.999" is not an IP address`))
		Eventually(condition(ns, "twov4")).Should(Equal("False/InvalidRequest"))
		Expect(conditionMessage(ns, "twov4")()).To(ContainSubstring("at most one address per family"))
		Eventually(condition(ns, "family")).Should(Equal("False/InvalidRequest"))
		Expect(conditionMessage(ns, "family")()).To(ContainSubstring("is IPv6 but the Service"))
		Eventually(eventsFor(ns, "garbage")).Should(ContainElement(HavePrefix("Warning/InvalidRequest")))
		for _, n := range []string{"both", "garbage", "twov4", "family"} {
			Expect(ingressIPs(ns, n)()).To(BeEmpty())
		}

		updateService(ns, "garbage", func(s *corev1.Service) { s.Annotations[ipsAnn] = "192.0.2.58" })
		Eventually(ingressIPs(ns, "garbage")).Should(HaveExactElements("192.0.2.58"))
		Eventually(condition(ns, "garbage")).Should(Equal("True/Allocated"))
		Eventually(eventsFor(ns, "garbage")).Should(ContainElement(HavePrefix("Normal/Allocated: holds 192.0.2.58 (pool r-invalid)")))
	})

	It("leaves a Service asking for an address outside every pool pending until a pool has it", func() {
		ns := newNamespace()
		createPool("r-elsewhere", []string{"192.0.2.60/30"})
		createService(ns, "a", annotate(ipsAnn, "198.51.100.77"))
		Eventually(condition(ns, "a")).Should(Equal("False/RequestedAddressUnavailable"))
		Expect(conditionMessage(ns, "a")()).To(ContainSubstring("requested address 198.51.100.77 is not in any pool"))
		Eventually(eventsFor(ns, "a")).Should(ContainElement(HavePrefix("Warning/RequestedAddressUnavailable")))
		createPool("r-later", []string{"198.51.100.64/28"})
		Eventually(ingressIPs(ns, "a")).Should(HaveExactElements("198.51.100.77"))
		Eventually(condition(ns, "a")).Should(Equal("True/Allocated"))
	})

	It("leaves a Service asking for a held address pending until it is released", func() {
		ns := newNamespace()
		createPool("r-held", []string{"192.0.2.64/30"})
		first := createService(ns, "first", annotate(ipsAnn, "192.0.2.65"))
		Eventually(ingressIPs(ns, "first")).Should(HaveExactElements("192.0.2.65"))
		createService(ns, "second", annotate(ipsAnn, "192.0.2.65"))
		Eventually(condition(ns, "second")).Should(Equal("False/RequestedAddressUnavailable"))
		Expect(conditionMessage(ns, "second")()).To(ContainSubstring("is held by " + ns + "/first"))
		Expect(ingressIPs(ns, "second")()).To(BeEmpty())

		Expect(k8s.Delete(ctx, first)).To(Succeed())
		Eventually(ingressIPs(ns, "second")).Should(HaveExactElements("192.0.2.65"))
		a, err := getAllocation("192.0.2.65")
		Expect(err).NotTo(HaveOccurred())
		Expect(a.Spec.Services).To(HaveExactElements(HaveField("Name", "second")))
	})

	It("uses the named pool, and refuses addresses that are not in it", func() {
		ns := newNamespace()
		createPool("r-named", []string{"192.0.2.68/30"}, autoAssign(false))
		createPool("r-default", []string{"192.0.2.72/30"})
		createService(ns, "named", annotate(poolAnn, "r-named"))
		createService(ns, "unnamed")
		createService(ns, "mismatch", annotate(poolAnn, "r-named"), annotate(ipsAnn, "192.0.2.73"))
		createService(ns, "missing", annotate(poolAnn, "r-nosuch"))
		Eventually(ingressIPs(ns, "named")).Should(HaveExactElements("192.0.2.68"))
		Eventually(ingressIPs(ns, "unnamed")).Should(HaveExactElements(HavePrefix("192.0.2.7")), "autoAssign:false pools are used only when named")
		Eventually(condition(ns, "mismatch")).Should(Equal("False/RequestedAddressUnavailable"))
		Expect(conditionMessage(ns, "mismatch")()).To(ContainSubstring("is not in pool r-named"))
		Eventually(condition(ns, "missing")).Should(Equal("False/NoMatchingPool"))
		Expect(conditionMessage(ns, "missing")()).To(ContainSubstring("pool r-nosuch named by bgplb.io/ip-pool does not exist"))
	})
})
