package ipam_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/ipam"
)

// Deleting an IPPool never waits and never takes an address away: the
// IPAllocations, not the pool object, keep addresses with their Services.
var _ = Describe("Pool deletion", func() {
	It("goes at once; its Services keep their addresses, flagged, until they release them", func() {
		ns := newNamespace()
		createPool("pd-del", []string{"198.51.100.128/30"})
		createService(ns, "holder")
		Eventually(ingressIPs(ns, "holder")).Should(HaveExactElements("198.51.100.128"))
		createService(ns, "named", annotate(v1alpha1.AnnotationIPPool, "pd-del"))
		Eventually(ingressIPs(ns, "named")).Should(HaveExactElements("198.51.100.129"))
		createService(ns, "sharer", annotate(v1alpha1.AnnotationSharingKey, "pd-k"))
		Eventually(ingressIPs(ns, "sharer")).Should(HaveExactElements("198.51.100.130"))
		Expect(getPool("pd-del").Finalizers).To(BeEmpty(), "no finalizer is put on pools")
		held := map[string]string{"holder": "198.51.100.128", "named": "198.51.100.129", "sharer": "198.51.100.130"}
		before := allocationVersions(held)

		deletePoolNow("pd-del")
		for name, addr := range held {
			Eventually(condition(ns, name)).Should(Equal("True/PoolDeleted"), name)
			Expect(conditionMessage(ns, name)()).To(ContainSubstring("holds " + addr + " (pool pd-del, deleted); pool pd-del no longer exists: " +
				"the address stays with this Service until the Service releases it"))
			Eventually(eventsFor(ns, name)).Should(ContainElement(HavePrefix("Warning/PoolDeleted")), name)
			Expect(ingressIPs(ns, name)()).To(HaveExactElements(addr), name)
		}
		Expect(allocationVersions(held)).To(Equal(before), "the IPAllocations are not touched")

		// Nothing new comes from it: not to a new Service, not to one
		// naming it, not as a sharing join.
		createService(ns, "newcomer")
		Eventually(condition(ns, "newcomer")).Should(Equal("False/NoMatchingPool"))
		createService(ns, "wants-it", annotate(v1alpha1.AnnotationIPPool, "pd-del"))
		Eventually(condition(ns, "wants-it")).Should(Equal("False/NoMatchingPool"))
		Expect(conditionMessage(ns, "wants-it")()).To(ContainSubstring("pool pd-del named by " + v1alpha1.AnnotationIPPool + " does not exist"))
		createService(ns, "joiner", annotate(v1alpha1.AnnotationSharingKey, "pd-k"), ports(443))
		Eventually(condition(ns, "joiner")).Should(Equal("False/NoMatchingPool"))

		// Another pool serves the newcomers; the holders stay where they are.
		createPool("pd-other", []string{"198.51.100.132/30"})
		Eventually(ingressIPs(ns, "newcomer")).Should(HaveLen(1))
		Eventually(ingressIPs(ns, "joiner")).Should(HaveLen(1))
		Expect(append(ingressIPs(ns, "newcomer")(), ingressIPs(ns, "joiner")()...)).To(ConsistOf("198.51.100.132", "198.51.100.133"))
		Expect(condition(ns, "wants-it")()).To(Equal("False/NoMatchingPool"))
		Consistently(func() map[string]string { return allocationVersions(held) }, time.Second).Should(Equal(before))

		// A holder that goes releases its IPAllocation.
		deleteServiceAndWaitReleased(ns, "holder")
		Eventually(func() error { _, err := getAllocation("198.51.100.128"); return err }).Should(MatchError(ContainSubstring("not found")))
		Expect(allocationsOf(ns, "named")).To(ConsistOf("198.51.100.129"))
	})

	It("counts the kept addresses in a pool created again over them and never hands them out twice", func() {
		ns := newNamespace()
		createPool("pd-again", []string{"198.51.100.136/30"})
		for i, name := range []string{"a", "b", "c"} {
			createService(ns, name)
			Eventually(ingressIPs(ns, name)).Should(HaveExactElements("198.51.100.13" + string(rune('6'+i))))
		}
		deletePoolNow("pd-again")
		Eventually(condition(ns, "a")).Should(Equal("True/PoolDeleted"))
		deleteServiceAndWaitReleased(ns, "b") // freed while the pool is gone
		before := allocationVersions(map[string]string{"a": "198.51.100.136", "c": "198.51.100.138"})

		createPool("pd-again", []string{"198.51.100.136/30"})
		Eventually(condition(ns, "a")).Should(Equal("True/Allocated"))
		Eventually(condition(ns, "c")).Should(Equal("True/Allocated"))
		Eventually(func() *v1alpha1.PoolFamilyStatus { return getPool("pd-again").Status.IPv4 }).Should(
			Equal(&v1alpha1.PoolFamilyStatus{Total: "4", Allocated: 2, Available: "2"}))
		createService(ns, "d")
		Eventually(ingressIPs(ns, "d")).Should(HaveExactElements("198.51.100.137"))
		createService(ns, "e")
		Eventually(ingressIPs(ns, "e")).Should(HaveExactElements("198.51.100.139"))
		createService(ns, "f")
		Eventually(condition(ns, "f")).Should(Equal("False/PoolExhausted"))
		Expect(allocationVersions(map[string]string{"a": "198.51.100.136", "c": "198.51.100.138"})).To(Equal(before))
	})

	It("keeps them across a controller restart while the pool is missing", func() {
		ns := newNamespace()
		createPool("pd-restart", []string{"198.51.100.140/30"})
		createService(ns, "a")
		Eventually(ingressIPs(ns, "a")).Should(HaveExactElements("198.51.100.140"))
		b := createService(ns, "b")
		Eventually(ingressIPs(ns, "b")).Should(HaveExactElements("198.51.100.141"))
		deletePoolNow("pd-restart")
		Eventually(condition(ns, "a")).Should(Equal("True/PoolDeleted"))
		Eventually(condition(ns, "b")).Should(Equal("True/PoolDeleted"))
		rv := getService(ns, "a").ResourceVersion
		before := allocationVersions(map[string]string{"a": "198.51.100.140"})

		whileStopped(func() {
			Expect(k8s.Delete(ctx, b)).To(Succeed())
		})
		// The new instance rebuilds its memory from the IPAllocations of
		// the missing pool: the one whose Service went is released, the
		// other stays, its Service's status not even rewritten.
		Eventually(func() error { _, err := getAllocation("198.51.100.141"); return err }).Should(MatchError(ContainSubstring("not found")))
		Consistently(func() string { return getService(ns, "a").ResourceVersion }, time.Second).Should(Equal(rv))
		Expect(allocationVersions(map[string]string{"a": "198.51.100.140"})).To(Equal(before))

		createPool("pd-restart", []string{"198.51.100.140/30"})
		Eventually(condition(ns, "a")).Should(Equal("True/Allocated"))
		Eventually(func() int64 { return getPool("pd-restart").Status.Allocated }).Should(Equal(int64(1)))
		createService(ns, "c")
		Eventually(ingressIPs(ns, "c")).Should(HaveExactElements("198.51.100.141"))
		Expect(ingressIPs(ns, "a")()).To(HaveExactElements("198.51.100.140"))
	})

	It("removes the finalizer older versions put on pools, on start and whenever it comes back", func() {
		legacy := func(name string, fins ...string) *v1alpha1.IPPool {
			p := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name, Finalizers: fins}}
			p.Spec.Addresses = []v1alpha1.AddressRange{"198.51.100.160/30"}
			return p
		}
		plain := legacy("pd-legacy", ipam.LegacyPoolFinalizer)
		deleted := legacy("pd-legacy-deleted", ipam.LegacyPoolFinalizer)
		foreign := legacy("pd-legacy-foreign", "example.com/keep", ipam.LegacyPoolFinalizer)
		DeferCleanup(func() {
			for _, p := range []*v1alpha1.IPPool{plain, deleted, foreign} {
				updatePoolIfExists(p.Name, func(p *v1alpha1.IPPool) { p.Finalizers = nil })
				deletePoolAndWait(p.Name)
			}
		})
		whileStopped(func() {
			// As an older version left them: a pool in use, one deleted
			// while its addresses were held, one with someone else's
			// finalizer too. (Overlapping: only the oldest would give.)
			for _, p := range []*v1alpha1.IPPool{plain, deleted, foreign} {
				Expect(k8s.Create(ctx, p)).To(Succeed())
			}
			Expect(k8s.Delete(ctx, deleted)).To(Succeed())
			Consistently(func() error { return k8s.Get(ctx, client.ObjectKey{Name: deleted.Name}, &v1alpha1.IPPool{}) },
				300*time.Millisecond).Should(Succeed(), "held by the legacy finalizer while no controller runs")
		})
		Eventually(func() []string { return getPool(plain.Name).Finalizers }).Should(BeEmpty())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Name: deleted.Name}, &v1alpha1.IPPool{}))
		}).Should(BeTrue(), "a pool deleted under the old version goes once the controller starts")
		Eventually(func() []string { return getPool(foreign.Name).Finalizers }).Should(Equal([]string{"example.com/keep"}))

		// Put back (an older controller still running during an upgrade):
		// removed again.
		updatePool(plain.Name, func(p *v1alpha1.IPPool) { p.Finalizers = []string{ipam.LegacyPoolFinalizer} })
		Eventually(func() []string { return getPool(plain.Name).Finalizers }).Should(BeEmpty())

		// Someone else's finalizer is theirs to remove; meanwhile the pool
		// says it is being deleted.
		Expect(k8s.Delete(ctx, &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: foreign.Name}})).To(Succeed())
		Eventually(poolCondition(foreign.Name, v1alpha1.PoolReady)).Should(Equal("False/Deleting"))
		Expect(poolCondition(foreign.Name, "Deleting")()).To(Equal("<none>"))
	})

	It("leaves nothing behind when every pool and allocation goes at once, as deleting the CRDs does", func() {
		ns := newNamespace()
		createPool("pd-all-1", []string{"198.51.100.144/30"})
		createPool("pd-all-2", []string{"198.51.100.148/30"})
		createService(ns, "a")
		createService(ns, "b", annotate(v1alpha1.AnnotationIPPool, "pd-all-2"))
		Eventually(ingressIPs(ns, "a")).Should(HaveLen(1))
		Eventually(ingressIPs(ns, "b")).Should(HaveExactElements("198.51.100.148"))

		// `kubectl delete -k config/default`: the controller goes with the
		// CRDs, whose deletion deletes every object of theirs at once.
		whileStopped(func() {
			Expect(k8s.DeleteAllOf(ctx, &v1alpha1.IPPool{})).To(Succeed())
			Expect(k8s.DeleteAllOf(ctx, &v1alpha1.IPAllocation{})).To(Succeed())
			Eventually(func() []string {
				var left []string
				var pools v1alpha1.IPPoolList
				Expect(k8s.List(ctx, &pools)).To(Succeed())
				for _, p := range pools.Items {
					left = append(left, "IPPool "+p.Name)
				}
				var allocs v1alpha1.IPAllocationList
				Expect(k8s.List(ctx, &allocs)).To(Succeed())
				for _, a := range allocs.Items {
					left = append(left, "IPAllocation "+a.Name)
				}
				return left
			}, 5*time.Second).Should(BeEmpty(), "nothing may wait for a finalizer")
			// Gone too in a real uninstall; a controller started later
			// must not find them holding addresses of no pool.
			deleteSpecServices()
		})
	})
})

// deletePoolNow deletes a pool and expects it gone promptly: nothing holds it.
func deletePoolNow(name string) {
	GinkgoHelper()
	Expect(k8s.Delete(ctx, &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Name: name}, &v1alpha1.IPPool{}))
	}, 5*time.Second).Should(BeTrue(), "pool %s should go at once", name)
}

// allocationVersions returns "uid/resourceVersion/services" of the
// IPAllocation of each address (by the name given to it), to show they were
// not touched.
func allocationVersions(addrs map[string]string) map[string]string {
	GinkgoHelper()
	out := map[string]string{}
	for name, addr := range addrs {
		a, err := getAllocation(addr)
		Expect(err).NotTo(HaveOccurred(), "IPAllocation of %s (%s)", addr, name)
		s := string(a.UID) + "/" + a.ResourceVersion + "/" + a.Spec.Pool
		for _, r := range a.Spec.Services {
			s += "/" + r.Namespace + "." + r.Name
		}
		out[name] = s
	}
	return out
}

// updatePoolIfExists changes a pool unless it is gone.
func updatePoolIfExists(name string, change func(*v1alpha1.IPPool)) {
	GinkgoHelper()
	Eventually(func() error {
		p := &v1alpha1.IPPool{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: name}, p); err != nil {
			return client.IgnoreNotFound(err)
		}
		change(p)
		return client.IgnoreNotFound(k8s.Update(ctx, p))
	}).Should(Succeed())
}
