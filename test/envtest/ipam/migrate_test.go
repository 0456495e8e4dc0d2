package ipam_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/ipam"
	"github.com/bgplb/bgplb/internal/migrate/metallb"
)

// MetalLB's pools of the migration spec, as a user would have them.
const migrationPools = `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: mig-a, namespace: metallb-system}
spec:
  addresses: [203.0.113.200/29, "2001:db8:16::/120"]
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: mig-b, namespace: metallb-system}
spec:
  addresses: [203.0.113.208-203.0.113.215]
`

// noClass makes a Service as MetalLB serves it: without loadBalancerClass.
func noClass() svcOpt { return func(s *corev1.Service) { s.Spec.LoadBalancerClass = nil } }

// Issue #16 point 6: Services that MetalLB gave addresses keep them when
// bgplb takes over with the converted configuration.
var _ = Describe("Migration from MetalLB", func() {
	It("keeps every address MetalLB assigned, records it, and serves new Services", func() {
		ns := newNamespace()
		cfg, err := metallb.Read(strings.NewReader(migrationPools))
		Expect(err).NotTo(HaveOccurred())
		var pools []*v1alpha1.IPPool
		for _, it := range metallb.Convert(cfg).Items {
			if p, ok := it.Object.(*v1alpha1.IPPool); ok {
				pools = append(pools, p)
			}
		}
		Expect(pools).To(HaveLen(2))

		// What MetalLB left: Services with addresses in their status and
		// MetalLB's annotations, and some it could not serve (pending).
		type svc struct {
			name string
			opts []svcOpt
			ips  []string
		}
		metallbServices := []svc{
			{"plain", nil, []string{"203.0.113.200"}},
			{"pinned", []svcOpt{annotate(ipam.MetalLBAnnotationLoadBalancerIPs, "203.0.113.201")}, []string{"203.0.113.201"}},
			{"legacy-pool", []svcOpt{annotate(ipam.MetalLBLegacyAnnotationAddressPool, "mig-b")}, []string{"203.0.113.208"}},
			{"share-a", []svcOpt{annotate(ipam.MetalLBAnnotationAllowSharedIP, "web"), ports(80)}, []string{"203.0.113.203"}},
			{"share-b", []svcOpt{annotate(ipam.MetalLBAnnotationAllowSharedIP, "web"), ports(443)}, []string{"203.0.113.203"}},
			{"dual", []svcOpt{families(corev1.IPFamilyPolicyPreferDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol)},
				[]string{"203.0.113.202", "2001:db8:16::7"}},
			{"conflict", []svcOpt{annotate(v1alpha1.AnnotationIPPool, "mig-a"), annotate(ipam.MetalLBAnnotationAddressPool, "mig-b")},
				[]string{"203.0.113.204"}},
		}
		pending := []string{"pending-1", "pending-2", "pending-3"}
		// bgplb's controller starts after all this exists, with one worker:
		// the first reconciles then run in the API's list order (by name),
		// so the pending Services are decided before "pinned", "plain" and
		// the "share" pair, and would be handed their addresses if the
		// controller did not protect the addresses Services show.
		controller.stop()
		for _, p := range pools {
			// Not createPool: it waits for the (stopped) controller.
			Expect(k8s.Create(ctx, p)).To(Succeed())
			DeferCleanup(func() {
				deleteSpecServices()
				deletePoolAndWait(p.Name)
			})
		}
		for _, name := range pending {
			createService(ns, name, noClass())
		}
		for _, s := range metallbServices {
			createService(ns, s.name, append([]svcOpt{noClass()}, s.opts...)...)
			setIngress(ns, s.name, s.ips...)
		}
		controller = startController(ipam.Options{DefaultClass: true, Workers: 1})
		DeferCleanup(func() {
			controller.stop()
			controller = startController(ipam.Options{DefaultClass: true})
		})

		for _, s := range metallbServices {
			Eventually(condition(ns, s.name)).Should(HavePrefix("True/"), "Service %s", s.name)
			Eventually(func() []string { return allocationsOf(ns, s.name) }).Should(ConsistOf(s.ips), "Service %s", s.name)
		}
		// 0 changed, and none changes later.
		Consistently(func() map[string][]string {
			got := map[string][]string{}
			for _, s := range metallbServices {
				got[s.name] = ingressIPs(ns, s.name)()
			}
			return got
		}, "2s").Should(Equal(func() map[string][]string {
			want := map[string][]string{}
			for _, s := range metallbServices {
				want[s.name] = s.ips
			}
			return want
		}()))
		shared, err := getAllocation("203.0.113.203")
		Expect(err).NotTo(HaveOccurred())
		Expect(shared.Spec.SharingKey).To(Equal("web"))
		Expect(shared.Spec.Services).To(HaveLen(2))

		// bgplb's annotation wins over MetalLB's, and the user is told.
		Expect(conditionMessage(ns, "conflict")()).To(ContainSubstring(
			`conflicting annotations, bgplb's own win: metallb.io/address-pool="mig-b" is ignored: bgplb.io/ip-pool="mig-a" wins`))
		Eventually(eventsFor(ns, "conflict")).Should(ContainElement(HavePrefix("Warning/AnnotationConflict")))

		// The pending Services got the addresses nobody showed.
		var got []string
		for _, name := range pending {
			Eventually(ingressIPs(ns, name)).Should(HaveLen(1), "Service %s", name)
			got = append(got, ingressIPs(ns, name)()...)
		}
		Expect(got).To(ConsistOf("203.0.113.205", "203.0.113.206", "203.0.113.207"))

		// A new Service gets an address (mig-a is full now).
		createService(ns, "new", noClass())
		Eventually(ingressIPs(ns, "new")).Should(HaveExactElements("203.0.113.209"))
	})
})
