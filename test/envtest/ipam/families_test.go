package ipam_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// Point 2 of the issue: ipFamilyPolicy and ipFamilies decide the families.
var _ = Describe("Address families", func() {
	v4, v6 := corev1.IPv4Protocol, corev1.IPv6Protocol

	It("gives SingleStack Services one address of ipFamilies[0] and PreferDualStack ones both", func() {
		ns := newNamespace()
		createPool("f-dual", []string{"192.0.2.32/29", "2001:db8:2::/120"})
		createService(ns, "single4", families(corev1.IPFamilyPolicySingleStack, v4))
		createService(ns, "single6", families(corev1.IPFamilyPolicySingleStack, v6))
		createService(ns, "prefer", families(corev1.IPFamilyPolicyPreferDualStack, v6, v4))
		createService(ns, "require", families(corev1.IPFamilyPolicyRequireDualStack, v4, v6))

		Eventually(ingressIPs(ns, "single4")).Should(HaveExactElements(HavePrefix("192.0.2.")))
		Eventually(ingressIPs(ns, "single6")).Should(HaveExactElements(HavePrefix("2001:db8:2::")))
		// Primary family first, as in ipFamilies.
		Eventually(ingressIPs(ns, "prefer")).Should(HaveExactElements(HavePrefix("2001:db8:2::"), HavePrefix("192.0.2.")))
		Eventually(ingressIPs(ns, "require")).Should(HaveExactElements(HavePrefix("192.0.2."), HavePrefix("2001:db8:2::")))
		Expect(condition(ns, "require")()).To(Equal("True/Allocated"))
	})

	It("keeps RequireDualStack pending until a pool has both families, holding nothing meanwhile", func() {
		ns := newNamespace()
		createPool("f-v4only", []string{"192.0.2.40/30"})
		createService(ns, "require", families(corev1.IPFamilyPolicyRequireDualStack, v4, v6))
		Eventually(condition(ns, "require")).Should(Equal("False/NoMatchingPool"))
		Expect(conditionMessage(ns, "require")()).To(ContainSubstring("no IPv6 address"))
		Expect(ingressIPs(ns, "require")()).To(BeEmpty())
		Expect(allocationsOf(ns, "require")).To(BeEmpty(), "no half allocation is held")
		Eventually(eventsFor(ns, "require")).Should(ContainElement(HavePrefix("Warning/NoMatchingPool")))

		updatePool("f-v4only", func(p *v1alpha1.IPPool) {
			p.Spec.Addresses = append(p.Spec.Addresses, "2001:db8:3::/126")
		})
		Eventually(ingressIPs(ns, "require")).Should(HaveExactElements(HavePrefix("192.0.2.4"), HavePrefix("2001:db8:3::")))
		Eventually(condition(ns, "require")).Should(Equal("True/Allocated"))
	})

	It("gives PreferDualStack one family when only one is available and adds the other later", func() {
		ns := newNamespace()
		createPool("f-prefer4", []string{"192.0.2.44/30"})
		createService(ns, "prefer", families(corev1.IPFamilyPolicyPreferDualStack, v4, v6))
		Eventually(ingressIPs(ns, "prefer")).Should(HaveExactElements(HavePrefix("192.0.2.4")))
		first := ingressIPs(ns, "prefer")()[0]
		Eventually(condition(ns, "prefer")).Should(Equal("True/Allocated"))
		Expect(conditionMessage(ns, "prefer")()).To(ContainSubstring("no IPv6 address yet"))

		createPool("f-prefer6", []string{"2001:db8:4::/126"})
		Eventually(ingressIPs(ns, "prefer")).Should(HaveExactElements(first, HavePrefix("2001:db8:4::")))
		Eventually(conditionMessage(ns, "prefer")).ShouldNot(ContainSubstring("yet"))
	})
})
