package ipam_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// Point 4 of the issue: which pool a Service gets its address from.
var _ = Describe("Pool choice", func() {
	It("prefers pools whose allocateTo matches, by priority then name, then pools without allocateTo", func() {
		ns, other := newNamespace(), newNamespace()
		createPool("p-general", []string{"192.0.2.80/30"})
		createPool("p-team-b", []string{"192.0.2.84/30"}, allocateTo(v1alpha1.AllocateTo{Priority: 20, Namespaces: []string{ns}}))
		createPool("p-team-z", []string{"192.0.2.88/30"}, allocateTo(v1alpha1.AllocateTo{Priority: 10, Namespaces: []string{ns}}))
		createPool("p-team-a", []string{"192.0.2.92/31"}, allocateTo(v1alpha1.AllocateTo{Priority: 10, Namespaces: []string{ns}}))

		createService(ns, "s1")
		Eventually(ingressIPs(ns, "s1")).Should(HaveExactElements(HavePrefix("192.0.2.9")), "priority 10, name p-team-a")
		createService(ns, "s2")
		Eventually(ingressIPs(ns, "s2")).Should(HaveExactElements(HavePrefix("192.0.2.9")))
		// p-team-a is full now: next by priority and name is p-team-z.
		createService(ns, "s3")
		Eventually(ingressIPs(ns, "s3")).Should(HaveExactElements("192.0.2.88"))
		createService(other, "elsewhere")
		Eventually(ingressIPs(other, "elsewhere")).Should(HaveExactElements("192.0.2.80"))
	})

	It("matches allocateTo namespace and Service selectors, and retries when namespace labels change", func() {
		ns := newNamespace()
		createPool("p-nssel", []string{"192.0.2.112/30"}, allocateTo(v1alpha1.AllocateTo{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "gold"}}}))
		createPool("p-svcsel", []string{"192.0.2.116/30"}, allocateTo(v1alpha1.AllocateTo{
			ServiceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"exposure": "public"}}}))
		createService(ns, "public", labelled("exposure", "public"))
		createService(ns, "plain")
		Eventually(ingressIPs(ns, "public")).Should(HaveExactElements("192.0.2.116"))
		Eventually(condition(ns, "plain")).Should(Equal("False/NoMatchingPool"))
		Expect(conditionMessage(ns, "plain")()).To(ContainSubstring("pool p-nssel does not allocate to this Service"))

		nsObj := &corev1.Namespace{}
		Expect(k8s.Get(ctx, client.ObjectKey{Name: ns}, nsObj)).To(Succeed())
		nsObj.Labels["tier"] = "gold"
		Expect(k8s.Update(ctx, nsObj)).To(Succeed())
		Eventually(ingressIPs(ns, "plain")).Should(HaveExactElements("192.0.2.112"))
	})

	It("gives nothing new from a disabled pool but leaves held addresses alone", func() {
		ns := newNamespace()
		createPool("p-disabled", []string{"192.0.2.120/30"})
		createService(ns, "early")
		Eventually(ingressIPs(ns, "early")).Should(HaveExactElements("192.0.2.120"))
		updatePool("p-disabled", func(p *v1alpha1.IPPool) { p.Spec.Disabled = true })
		Eventually(poolCondition("p-disabled", v1alpha1.PoolReady)).Should(Equal("False/Disabled"))
		createService(ns, "late")
		Eventually(condition(ns, "late")).Should(Equal("False/NoMatchingPool"))
		Expect(conditionMessage(ns, "late")()).To(ContainSubstring("pool p-disabled is disabled"))
		Expect(ingressIPs(ns, "early")()).To(HaveExactElements("192.0.2.120"))
		Expect(condition(ns, "early")()).To(Equal("True/Allocated"))
	})

	It("skips addresses ending in .0 and .255 with avoidBuggyIPs, and reports exhaustion", func() {
		ns := newNamespace()
		createPool("p-buggy", []string{"198.51.100.0/31", "198.51.100.254/31"}, avoidBuggy())
		createService(ns, "a")
		createService(ns, "b")
		Eventually(ingressIPs(ns, "a")).Should(HaveLen(1))
		Eventually(ingressIPs(ns, "b")).Should(HaveLen(1))
		Expect(append(ingressIPs(ns, "a")(), ingressIPs(ns, "b")()...)).To(ConsistOf("198.51.100.1", "198.51.100.254"))
		createService(ns, "c")
		Eventually(condition(ns, "c")).Should(Equal("False/PoolExhausted"))
		Expect(conditionMessage(ns, "c")()).To(ContainSubstring("no free IPv4 address in pool(s) p-buggy"))
		Eventually(eventsFor(ns, "c")).Should(ContainElement(HavePrefix("Warning/PoolExhausted")))
		Eventually(func() *v1alpha1.PoolFamilyStatus { return getPool("p-buggy").Status.IPv4 }).Should(
			Equal(&v1alpha1.PoolFamilyStatus{Total: "2", Allocated: 2, Available: "0"}))
		Eventually(poolCondition("p-buggy", v1alpha1.PoolExhausted)).Should(Equal("True/Exhausted"))

		// Freeing one retries the pending Service.
		deleteServiceAndWaitReleased(ns, "a")
		Eventually(ingressIPs(ns, "c")).Should(HaveLen(1))
		Eventually(condition(ns, "c")).Should(Equal("True/Allocated"))

		// Emptied: the counts go back to zero (a field that reaches zero
		// must be written, not left at its last value).
		deleteServiceAndWaitReleased(ns, "b")
		deleteServiceAndWaitReleased(ns, "c")
		Eventually(func() int64 { return getPool("p-buggy").Status.Allocated }).Should(BeZero())
		Expect(getPool("p-buggy").Status.IPv4).To(Equal(&v1alpha1.PoolFamilyStatus{Total: "2", Allocated: 0, Available: "2"}))
	})
})

// Point 8 of the issue: pool edits never move an address (deletion:
// pooldelete_test.go).
var _ = Describe("Pool edits", func() {
	It("leaves an address cut out of a pool with its Service, flagged, and never hands it out again", func() {
		ns := newNamespace()
		createPool("p-edit", []string{"192.0.2.100/30"})
		createService(ns, "a")
		Eventually(ingressIPs(ns, "a")).Should(HaveExactElements("192.0.2.100"))
		createService(ns, "b")
		Eventually(ingressIPs(ns, "b")).Should(HaveExactElements("192.0.2.101"))

		updatePool("p-edit", func(p *v1alpha1.IPPool) {
			p.Spec.Addresses = []v1alpha1.AddressRange{"192.0.2.101/32", "192.0.2.102/31"}
		})
		Eventually(condition(ns, "a")).Should(Equal("True/AddressOutsidePool"))
		Expect(conditionMessage(ns, "a")()).To(ContainSubstring("192.0.2.100 is no longer in pool p-edit"))
		Expect(ingressIPs(ns, "a")()).To(HaveExactElements("192.0.2.100"))
		Eventually(eventsFor(ns, "a")).Should(ContainElement(HavePrefix("Warning/AddressOutsidePool")))
		Expect(condition(ns, "b")()).To(Equal("True/Allocated"))
		Eventually(poolCondition("p-edit", v1alpha1.PoolAddressesOutsideRanges)).Should(Equal("True/AddressesOutsideRanges"))
		Eventually(eventsFor("default", "p-edit")).Should(ContainElement(HavePrefix("Warning/AddressesOutsideRanges")))

		createService(ns, "c")
		Eventually(ingressIPs(ns, "c")).Should(HaveExactElements("192.0.2.102"))
		deleteServiceAndWaitReleased(ns, "a")
		Eventually(poolCondition("p-edit", v1alpha1.PoolAddressesOutsideRanges)).Should(Equal("<none>"))
		createService(ns, "d")
		Eventually(ingressIPs(ns, "d")).Should(HaveExactElements("192.0.2.103"))
		createService(ns, "e")
		Eventually(condition(ns, "e")).Should(Equal("False/PoolExhausted"), "192.0.2.100 is not handed out again")
	})

	It("marks a pool that overlaps an older one and gives nothing from it until fixed", func() {
		ns := newNamespace()
		createPool("p-old", []string{"192.0.2.104/30"})
		// creationTimestamp has one-second resolution: make the order certain.
		Eventually(func() bool { return time.Since(getPool("p-old").CreationTimestamp.Time) > time.Second }).Should(BeTrue())
		createPool("p-new", []string{"192.0.2.106/31"})
		Eventually(poolCondition("p-new", v1alpha1.PoolOverlapping)).Should(Equal("True/OverlapsOlderPool"))
		Expect(poolCondition("p-new", v1alpha1.PoolReady)()).To(Equal("False/Overlapping"))
		Eventually(poolCondition("p-old", v1alpha1.PoolOverlapping)).Should(Equal("False/NoOverlap"))
		Eventually(eventsFor("default", "p-new")).Should(ContainElement(HavePrefix("Warning/OverlapsOlderPool")))

		createService(ns, "want-new", annotate(v1alpha1.AnnotationIPPool, "p-new"))
		Eventually(condition(ns, "want-new")).Should(Equal("False/NoMatchingPool"))
		Expect(conditionMessage(ns, "want-new")()).To(ContainSubstring("overlaps the older pool p-old"))

		updatePool("p-new", func(p *v1alpha1.IPPool) { p.Spec.Addresses = []v1alpha1.AddressRange{"192.0.2.108/31"} })
		Eventually(poolCondition("p-new", v1alpha1.PoolReady)).Should(Equal("True/Ready"))
		Eventually(ingressIPs(ns, "want-new")).Should(HaveExactElements("192.0.2.108"))
	})
})
