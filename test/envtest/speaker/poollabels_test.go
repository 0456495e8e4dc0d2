package speaker_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// Deleting an IPPool leaves its Services their addresses (and their
// IPAllocations): an advertisement selecting the pool by label must keep
// announcing them, or traffic stops while the Services still show them.
var _ = Describe("A deleted pool's kept addresses", func() {
	It("stay announced by an advertisement selecting the pool by label, through the labels their IPAllocation recorded", func() {
		name := uniq("pool")
		lbls := map[string]string{"exposure": "kept-" + name}
		p := &v1alpha1.IPPool{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
			Spec:       v1alpha1.IPPoolSpec{Addresses: []v1alpha1.AddressRange{"203.0.113.96/29"}},
		}
		create(p)
		advertise(uniq("adv"), v1alpha1.BGPAdvertisementSpec{
			IPPoolSelector: &metav1.LabelSelector{MatchLabels: lbls}, Peers: []string{"rtr-a"},
		})
		kept := service(uniq("kept"))
		setEndpoints(kept, readyOn("node-b"))
		recorded := allocateWithPoolLabels("203.0.113.97", name, lbls, kept) // as the controller writes them
		announcedService("203.0.113.98", name)                               // as an older controller did: no labels recorded
		Eventually(prefixes(rtrA)).Should(ContainElements("203.0.113.97/32", "203.0.113.98/32"))

		By("deleting the pool")
		Expect(k8s.Delete(ctx, p)).To(Succeed())
		// The speaker has acted on the deletion once the address with no
		// recorded labels goes.
		Eventually(prefixes(rtrA)).ShouldNot(ContainElement("203.0.113.98/32"))
		Consistently(prefixes(rtrA), time.Second).Should(ContainElement("203.0.113.97/32"))

		By("following the recorded labels while the pool is gone")
		setPoolLabels(recorded, map[string]string{"exposure": "elsewhere"})
		Eventually(prefixes(rtrA)).ShouldNot(ContainElement("203.0.113.97/32"))
		setPoolLabels(recorded, lbls)
		Eventually(prefixes(rtrA)).Should(ContainElement("203.0.113.97/32"))
	})
})

// allocateWithPoolLabels records, as the controller does, that svc holds
// addr from pool, with the pool's labels.
func allocateWithPoolLabels(addr, pool string, lbls map[string]string, svc *corev1.Service) *v1alpha1.IPAllocation {
	GinkgoHelper()
	a := &v1alpha1.IPAllocation{
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.AllocationName(addr)},
		Spec: v1alpha1.IPAllocationSpec{Address: addr, Pool: pool, PoolLabels: lbls, Services: []v1alpha1.ServiceReference{
			{Namespace: svc.Namespace, Name: svc.Name, UID: svc.UID}}},
	}
	create(a)
	return a
}

// setPoolLabels changes the pool labels an IPAllocation records.
func setPoolLabels(a *v1alpha1.IPAllocation, lbls map[string]string) {
	GinkgoHelper()
	Expect(k8s.Get(ctx, client.ObjectKeyFromObject(a), a)).To(Succeed())
	orig := a.DeepCopy()
	a.Spec.PoolLabels = lbls
	Expect(k8s.Patch(ctx, a, client.MergeFrom(orig))).To(Succeed())
}
