package ipam_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/ipam"
)

// Point 1 of the issue: which Services bgplb handles, and release when a
// Service stops qualifying.
var _ = Describe("Which Services get addresses", func() {
	It("gives an address to LoadBalancer Services of class bgplb.io/bgp and of no class, and none to others", func() {
		ns := newNamespace()
		createPool("q-pool", []string{"192.0.2.0/28"})
		createService(ns, "classed")
		createService(ns, "classless", func(s *corev1.Service) { s.Spec.LoadBalancerClass = nil })
		createService(ns, "other-class", class("example.com/other"))
		createService(ns, "cluster-ip", clusterIP())

		Eventually(ingressIPs(ns, "classed")).Should(HaveExactElements(HavePrefix("192.0.2.")))
		Eventually(ingressIPs(ns, "classless")).Should(HaveExactElements(HavePrefix("192.0.2.")))
		Expect(condition(ns, "classed")()).To(Equal("True/Allocated"))
		Consistently(ingressIPs(ns, "other-class"), time.Second).Should(BeEmpty())
		Expect(condition(ns, "other-class")()).To(Equal("<none>"))
		Expect(condition(ns, "cluster-ip")()).To(Equal("<none>"))
	})

	It("releases the address and its status entries when a Service stops being a LoadBalancer", func() {
		ns := newNamespace()
		createPool("q-release", []string{"192.0.2.16/31"})
		createService(ns, "a")
		Eventually(ingressIPs(ns, "a")).Should(HaveLen(1))
		addr := ingressIPs(ns, "a")()[0]
		Expect(allocationsOf(ns, "a")).To(ConsistOf(addr))

		updateService(ns, "a", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeClusterIP
			s.Spec.LoadBalancerClass = nil
			s.Spec.AllocateLoadBalancerNodePorts = nil
		})
		Eventually(func() []string { return allocationsOf(ns, "a") }).Should(BeEmpty())
		Eventually(condition(ns, "a")).Should(Equal("<none>"))
		Expect(ingressIPs(ns, "a")()).To(BeEmpty())
		Eventually(eventsFor(ns, "a")).Should(ContainElement(HavePrefix("Normal/Released: released " + addr)))

		// The address is free again: the next Service gets it.
		createService(ns, "b")
		Eventually(ingressIPs(ns, "b")).Should(ConsistOf(addr))
	})

	It("releases the address of a deleted Service", func() {
		ns := newNamespace()
		createPool("q-delete", []string{"192.0.2.18/32"})
		s := createService(ns, "a")
		Eventually(ingressIPs(ns, "a")).Should(ConsistOf("192.0.2.18"))
		Expect(k8s.Delete(ctx, s)).To(Succeed())
		Eventually(func() error { _, err := getAllocation("192.0.2.18"); return err }).Should(MatchError(ContainSubstring("not found")))
		createService(ns, "b")
		Eventually(ingressIPs(ns, "b")).Should(ConsistOf("192.0.2.18"))
	})

	Context("with --default-class=false", Ordered, func() {
		withController(ipam.Options{DefaultClass: false})

		It("leaves Services without a class alone", func() {
			ns := newNamespace()
			createPool("q-noclass", []string{"192.0.2.20/30"})
			createService(ns, "classed")
			createService(ns, "classless", func(s *corev1.Service) { s.Spec.LoadBalancerClass = nil })
			Eventually(ingressIPs(ns, "classed")).Should(HaveLen(1))
			Consistently(ingressIPs(ns, "classless"), time.Second).Should(BeEmpty())
			Expect(condition(ns, "classless")()).To(Equal("<none>"))
			Expect(v1alpha1.LoadBalancerClass).To(Equal("bgplb.io/bgp"))
		})
	})
})
