package ipam_test

import (
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/ipam"
)

// whileStopped runs fn with the controller stopped, then starts it again.
func whileStopped(fn func()) {
	GinkgoHelper()
	controller.stop()
	defer func() { controller = startController(ipam.Options{DefaultClass: true}) }()
	fn()
}

// Point 6 of the issue: every held address is an IPAllocation.
var _ = Describe("IPAllocations", func() {
	It("records each held address in an IPAllocation named after it, created before the status shows it", func() {
		ns := newNamespace()
		createPool("a-pool", []string{"203.0.113.40/29", "2001:db8:6::/120"})
		svc := createService(ns, "a", families(corev1.IPFamilyPolicyPreferDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol))
		Eventually(ingressIPs(ns, "a")).Should(HaveLen(2))
		s := getService(ns, "a")
		for i, want := range []string{"203.0.113.40", "2001:db8:6::"} {
			Expect(s.Status.LoadBalancer.Ingress[i].IP).To(Equal(want))
			a, err := getAllocation(want)
			Expect(err).NotTo(HaveOccurred())
			Expect(a.Spec.Address).To(Equal(want))
			Expect(a.Spec.Pool).To(Equal("a-pool"))
			Expect(a.Spec.Services).To(Equal([]v1alpha1.ServiceReference{{Namespace: ns, Name: "a", UID: svc.UID}}))
			// etcd revisions are global and increasing: the allocation was
			// written before the status that shows its address.
			Expect(revision(a.ResourceVersion)).To(BeNumerically("<", revision(s.ResourceVersion)))
		}
	})

	It("releases the addresses of Services deleted while the controller was down, and keeps the others", func() {
		ns := newNamespace()
		createPool("a-down", []string{"203.0.113.48/30"})
		gone := createService(ns, "gone")
		createService(ns, "stays")
		Eventually(ingressIPs(ns, "gone")).Should(HaveLen(1))
		Eventually(ingressIPs(ns, "stays")).Should(HaveLen(1))
		goneAddr, staysAddr := ingressIPs(ns, "gone")()[0], ingressIPs(ns, "stays")()[0]
		staysRV := getService(ns, "stays").ResourceVersion

		whileStopped(func() {
			Expect(k8s.Delete(ctx, gone)).To(Succeed())
		})
		Eventually(func() error { _, err := getAllocation(goneAddr); return err }).Should(MatchError(ContainSubstring("not found")))
		Expect(allocationsOf(ns, "stays")).To(ConsistOf(staysAddr))
		// The survivor's status is neither changed nor rewritten.
		Consistently(func() string { return getService(ns, "stays").ResourceVersion }, time.Second).Should(Equal(staysRV))
	})
})

// Point 7 of the issue: adopting addresses a Service already carries.
var _ = Describe("Adoption", func() {
	It("keeps an address a Service carries from a pool and records it, or reports a conflict", func() {
		ns := newNamespace()
		createPool("a-adopt", []string{"203.0.113.52/30"})
		createService(ns, "holder", annotate(v1alpha1.AnnotationLoadBalancerIPs, "203.0.113.53"))
		Eventually(ingressIPs(ns, "holder")).Should(HaveExactElements("203.0.113.53"))

		var restored, clash *corev1.Service
		whileStopped(func() {
			// As if restored from a backup or installed over another controller.
			restored = createService(ns, "restored")
			setIngress(ns, "restored", "203.0.113.55")
			clash = createService(ns, "clash")
			setIngress(ns, "clash", "203.0.113.53")
		})
		Eventually(func() []string { return allocationsOf(ns, "restored") }).Should(ConsistOf("203.0.113.55"))
		Eventually(condition(ns, "restored")).Should(Equal("True/Allocated"))
		Expect(ingressIPs(ns, "restored")()).To(HaveExactElements("203.0.113.55"))
		a, err := getAllocation("203.0.113.55")
		Expect(err).NotTo(HaveOccurred())
		Expect(a.Spec.Services).To(HaveExactElements(HaveField("UID", restored.UID)))

		Eventually(condition(ns, "clash")).Should(Equal("False/AddressConflict"))
		Expect(conditionMessage(ns, "clash")()).To(ContainSubstring("203.0.113.53, which " + ns + "/holder holds"))
		Eventually(eventsFor(ns, "clash")).Should(ContainElement(HavePrefix("Warning/AddressConflict")))
		Expect(allocationsOf(ns, "clash")).To(BeEmpty())
		Expect(allocationsOf(ns, "holder")).To(ConsistOf("203.0.113.53"))
		_ = clash
	})
})

func revision(rv string) int64 {
	GinkgoHelper()
	n, err := strconv.ParseInt(rv, 10, 64)
	Expect(err).NotTo(HaveOccurred())
	return n
}
