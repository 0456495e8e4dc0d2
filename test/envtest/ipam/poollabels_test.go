package ipam_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// Every IPAllocation carries its pool's labels (spec.poolLabels), so that
// an advertisement selecting pools by label still selects the address
// after its pool is deleted.
var _ = Describe("Pool labels on IPAllocations", func() {
	It("are copied at allocation, follow the pool's changes, and stay as last known once the pool is deleted", func() {
		ns := newNamespace()
		createPool("pl-follow", []string{"198.51.100.168/30"}, poolLabels("tier", "public"))
		createService(ns, "a")
		Eventually(ingressIPs(ns, "a")).Should(HaveExactElements("198.51.100.168"))
		// Written with the object: already there when the status shows it.
		Expect(allocationLabels("198.51.100.168")()).To(Equal(kv("tier", "public")))
		holders := allocationHolders("198.51.100.168")

		updatePool("pl-follow", func(p *v1alpha1.IPPool) { p.Labels = kv("tier", "internal", "zone", "a") })
		Eventually(allocationLabels("198.51.100.168")).Should(Equal(kv("tier", "internal", "zone", "a")))
		Expect(allocationHolders("198.51.100.168")).To(Equal(holders), "only the labels change")
		createService(ns, "b")
		Eventually(ingressIPs(ns, "b")).Should(HaveExactElements("198.51.100.169"))
		Expect(allocationLabels("198.51.100.169")()).To(Equal(kv("tier", "internal", "zone", "a")))

		updatePool("pl-follow", func(p *v1alpha1.IPPool) { p.Labels = kv("zone", "b") })
		Eventually(allocationLabels("198.51.100.168")).Should(Equal(kv("zone", "b")), "a removed label goes")
		Eventually(allocationLabels("198.51.100.169")).Should(Equal(kv("zone", "b")))

		deletePoolNow("pl-follow")
		Eventually(condition(ns, "a")).Should(Equal("True/PoolDeleted"))
		before := allocationVersions(map[string]string{"a": "198.51.100.168", "b": "198.51.100.169"})
		Consistently(allocationLabels("198.51.100.168"), time.Second).Should(Equal(kv("zone", "b")))
		Expect(allocationLabels("198.51.100.169")()).To(Equal(kv("zone", "b")))
		Expect(allocationVersions(map[string]string{"a": "198.51.100.168", "b": "198.51.100.169"})).To(Equal(before),
			"a deleted pool's allocations are not written")
		Expect(ingressIPs(ns, "a")()).To(HaveExactElements("198.51.100.168"))
	})

	It("are filled in on allocations made before the field existed, without touching their holders", func() {
		ns := newNamespace()
		createPool("pl-backfill", []string{"198.51.100.172/30"}, poolLabels("tier", "public"))
		createService(ns, "a")
		createService(ns, "shared-1", annotate(v1alpha1.AnnotationSharingKey, "pl-k"), ports(80))
		createService(ns, "shared-2", annotate(v1alpha1.AnnotationSharingKey, "pl-k"), ports(443))
		Eventually(ingressIPs(ns, "a")).Should(HaveLen(1))
		Eventually(ingressIPs(ns, "shared-1")).Should(HaveLen(1))
		Eventually(ingressIPs(ns, "shared-2")).Should(Equal(ingressIPs(ns, "shared-1")()))
		addrs := []string{ingressIPs(ns, "a")()[0], ingressIPs(ns, "shared-1")()[0]}
		holders := map[string][]v1alpha1.ServiceReference{}
		for _, addr := range addrs {
			holders[addr] = allocationHolders(addr)
		}
		Expect(holders[addrs[1]]).To(HaveLen(2))
		svcVersion := getService(ns, "a").ResourceVersion

		whileStopped(func() {
			// As an older version wrote them: no pool labels.
			for _, addr := range addrs {
				a, err := getAllocation(addr)
				Expect(err).NotTo(HaveOccurred())
				orig := a.DeepCopy()
				a.Spec.PoolLabels = nil
				Expect(k8s.Patch(ctx, a, client.MergeFrom(orig))).To(Succeed())
				Expect(allocationLabels(addr)()).To(BeNil())
			}
		})
		for _, addr := range addrs {
			Eventually(allocationLabels(addr)).Should(Equal(kv("tier", "public")), addr)
			Expect(allocationHolders(addr)).To(Equal(holders[addr]), addr)
		}
		Expect(getService(ns, "a").ResourceVersion).To(Equal(svcVersion), "the Service is not written")
	})
})

// poolLabels sets a pool's labels.
func poolLabels(pairs ...string) poolOpt {
	return func(p *v1alpha1.IPPool) { p.Labels = kv(pairs...) }
}

// allocationLabels returns the spec.poolLabels of an address's IPAllocation.
func allocationLabels(addr string) func() map[string]string {
	return func() map[string]string {
		a, err := getAllocation(addr)
		if err != nil {
			return map[string]string{"error": err.Error()}
		}
		return a.Spec.PoolLabels
	}
}

// allocationHolders returns the Services an address's IPAllocation names.
func allocationHolders(addr string) []v1alpha1.ServiceReference {
	GinkgoHelper()
	a, err := getAllocation(addr)
	Expect(err).NotTo(HaveOccurred())
	return a.Spec.Services
}
