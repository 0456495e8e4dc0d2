package ipam_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// Point 5 of the issue: sharing an address between Services.
var _ = Describe("Sharing an address", func() {
	const keyAnn, nsAnn = v1alpha1.AnnotationSharingKey, v1alpha1.AnnotationSharingNamespaces

	It("shares between Services with the same key and disjoint ports, and only then", func() {
		ns := newNamespace()
		createPool("s-pool", []string{"203.0.113.0/28"})
		createService(ns, "web", annotate(keyAnn, "k"), ports(80))
		Eventually(ingressIPs(ns, "web")).Should(HaveLen(1))
		shared := ingressIPs(ns, "web")()[0]

		createService(ns, "tls", annotate(keyAnn, "k"), ports(443))
		createService(ns, "dns", annotate(keyAnn, "k"), ports(80), udp())
		createService(ns, "clash", annotate(keyAnn, "k"), ports(80))
		createService(ns, "local", annotate(keyAnn, "k"), ports(8080), localTraffic())
		createService(ns, "nokey", ports(8081))
		Eventually(ingressIPs(ns, "tls")).Should(HaveExactElements(shared))
		Eventually(ingressIPs(ns, "dns")).Should(HaveExactElements(shared), "80/UDP does not clash with 80/TCP")
		Eventually(ingressIPs(ns, "clash")).Should(HaveExactElements(Not(Equal(shared))), "80/TCP is taken on the shared address")
		Eventually(ingressIPs(ns, "local")).Should(HaveExactElements(Not(Equal(shared))), "different externalTrafficPolicy")
		Eventually(ingressIPs(ns, "nokey")).Should(HaveExactElements(Not(Equal(shared))))

		a, err := getAllocation(shared)
		Expect(err).NotTo(HaveOccurred())
		Expect(a.Spec.SharingKey).To(Equal("k"))
		Expect(a.Spec.Services).To(ConsistOf(HaveField("Name", "web"), HaveField("Name", "tls"), HaveField("Name", "dns")))

		// Leaving: the address stays while someone holds it.
		deleteServiceAndWaitReleased(ns, "web")
		Eventually(func() int { a, _ := getAllocation(shared); return len(a.Spec.Services) }).Should(Equal(2))
		Expect(ingressIPs(ns, "tls")()).To(HaveExactElements(shared))
		deleteServiceAndWaitReleased(ns, "tls")
		deleteServiceAndWaitReleased(ns, "dns")
		Eventually(func() error { _, err := getAllocation(shared); return err }).Should(MatchError(ContainSubstring("not found")))
	})

	It("shares with externalTrafficPolicy Local only between equal selectors", func() {
		ns := newNamespace()
		createPool("s-local", []string{"203.0.113.16/29"})
		createService(ns, "x1", annotate(keyAnn, "l"), ports(80), localTraffic(), selector("app", "x"))
		Eventually(ingressIPs(ns, "x1")).Should(HaveLen(1))
		shared := ingressIPs(ns, "x1")()[0]
		createService(ns, "x2", annotate(keyAnn, "l"), ports(81), localTraffic(), selector("app", "x"))
		createService(ns, "y", annotate(keyAnn, "l"), ports(82), localTraffic(), selector("app", "y"))
		Eventually(ingressIPs(ns, "x2")).Should(HaveExactElements(shared))
		Eventually(ingressIPs(ns, "y")).Should(HaveExactElements(Not(Equal(shared))))
	})

	It("shares across namespaces only when both list each other", func() {
		ns1, ns2 := newNamespace(), newNamespace()
		createPool("s-cross", []string{"203.0.113.24/29"})
		createService(ns1, "a", annotate(keyAnn, "x"), annotate(nsAnn, ns2), ports(80))
		Eventually(ingressIPs(ns1, "a")).Should(HaveLen(1))
		shared := ingressIPs(ns1, "a")()[0]
		createService(ns2, "one-way", annotate(keyAnn, "x"), ports(81))
		Eventually(ingressIPs(ns2, "one-way")).Should(HaveExactElements(Not(Equal(shared))))
		createService(ns2, "mutual", annotate(keyAnn, "x"), annotate(nsAnn, "other, "+ns1), ports(82))
		Eventually(ingressIPs(ns2, "mutual")).Should(HaveExactElements(shared))
	})

	It("reports SharingConflict when the requested shared address is held by an incompatible Service", func() {
		ns := newNamespace()
		createPool("s-conflict", []string{"203.0.113.32/29"})
		createService(ns, "a", annotate(keyAnn, "c"), ports(80))
		Eventually(ingressIPs(ns, "a")).Should(HaveLen(1))
		shared := ingressIPs(ns, "a")()[0]
		createService(ns, "b", annotate(keyAnn, "c"), annotate(v1alpha1.AnnotationLoadBalancerIPs, shared), ports(80))
		Eventually(condition(ns, "b")).Should(Equal("False/SharingConflict"))
		Expect(conditionMessage(ns, "b")()).To(ContainSubstring("both use 80/TCP"))
		Eventually(eventsFor(ns, "b")).Should(ContainElement(HavePrefix("Warning/SharingConflict")))
		updateService(ns, "b", func(s *corev1.Service) { s.Spec.Ports[0].Port = 8443 })
		Eventually(ingressIPs(ns, "b")).Should(HaveExactElements(shared))
	})
})
