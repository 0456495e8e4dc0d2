package ipam_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// Point 9 of the issue: what Services and pools show.
var _ = Describe("Status", func() {
	It("shows VIP ingress entries, per-family pool counts that do not overflow, and pool conditions", func() {
		ns := newNamespace()
		createPool("st-pool", []string{"203.0.113.64/28", "2001:db8:7::/64"})
		createService(ns, "a")
		createService(ns, "b")
		Eventually(ingressIPs(ns, "a")).Should(HaveLen(1))
		Eventually(ingressIPs(ns, "b")).Should(HaveLen(1))
		for _, in := range getService(ns, "a").Status.LoadBalancer.Ingress {
			Expect(in.IPMode).To(HaveValue(Equal(corev1.LoadBalancerIPModeVIP)))
		}
		c := allocatedCondition(ns, "a")
		Expect(c.Status).To(Equal(metav1.ConditionTrue))
		Expect(c.Message).To(MatchRegexp(`^holds 203\.0\.113\.6\d \(pool st-pool\)$`))

		Eventually(func() v1alpha1.IPPoolStatus {
			s := getPool("st-pool").Status
			s.Conditions, s.ObservedGeneration = nil, 0
			return s
		}).Should(Equal(v1alpha1.IPPoolStatus{
			IPv4:      &v1alpha1.PoolFamilyStatus{Total: "16", Allocated: 2, Available: "14"},
			IPv6:      &v1alpha1.PoolFamilyStatus{Total: "18446744073709551616", Allocated: 0, Available: "18446744073709551616"},
			Allocated: 2,
			Available: "18446744073709551630",
		}))
		for t, want := range map[string]string{
			v1alpha1.PoolReady: "True/Ready", v1alpha1.PoolExhausted: "False/AddressesAvailable",
			v1alpha1.PoolOverlapping: "False/NoOverlap", "Deleting": "<none>", // older versions' condition, gone
		} {
			Expect(poolCondition("st-pool", t)()).To(Equal(want), t)
		}
	})

	It("writes nothing and records no event when nothing changed", func() {
		ns := newNamespace()
		createPool("st-quiet", []string{"203.0.113.80/30"})
		// The pool reports Ready once the controller has it, so the Service
		// cannot be decided before it (a NoMatchingPool warning first; seen
		// when CI was slow).
		Eventually(poolCondition("st-quiet", v1alpha1.PoolReady)).Should(Equal("True/Ready"))
		createService(ns, "a")
		Eventually(ingressIPs(ns, "a")).Should(HaveLen(1))
		Eventually(eventsFor(ns, "a")).Should(HaveExactElements(HavePrefix("Normal/Allocated")))
		Eventually(func() int64 { return getPool("st-quiet").Status.Allocated }).Should(Equal(int64(1)))

		// A change the controller looks at (labels) but that changes no decision.
		updateService(ns, "a", func(s *corev1.Service) { s.Labels = map[string]string{"touched": "yes"} })
		rv := getService(ns, "a").ResourceVersion
		poolRV := getPool("st-quiet").ResourceVersion
		Consistently(func() string { return getService(ns, "a").ResourceVersion }, time.Second).Should(Equal(rv))
		Expect(getPool("st-quiet").ResourceVersion).To(Equal(poolRV))
		Expect(eventsFor(ns, "a")()).To(HaveExactElements(HavePrefix("Normal/Allocated")))
	})
})

// Point 10 of the issue: metrics on controller-runtime's registry.
var _ = Describe("Metrics", func() {
	It("exports pool sizes per family, failures by reason and allocation latency", func() {
		ns := newNamespace()
		createPool("m-pool", []string{"203.0.113.84/31", "2001:db8:8::/120"})
		failuresBefore := counter("bgplb_ipam_allocation_failures_total", map[string]string{"reason": "PoolExhausted"})
		latencyBefore := histogramCount("bgplb_ipam_allocation_duration_seconds")
		createService(ns, "a")
		createService(ns, "b")
		Eventually(ingressIPs(ns, "a")).Should(HaveLen(1))
		Eventually(ingressIPs(ns, "b")).Should(HaveLen(1))
		createService(ns, "c")
		Eventually(condition(ns, "c")).Should(Equal("False/PoolExhausted"))

		pool := func(fam, state string) func() float64 {
			return func() float64 {
				return gauge("bgplb_ipam_pool_addresses", map[string]string{"pool": "m-pool", "family": fam, "state": state})
			}
		}
		Eventually(pool("IPv4", "allocated")).Should(Equal(2.0))
		Expect(pool("IPv4", "total")()).To(Equal(2.0))
		Expect(pool("IPv4", "available")()).To(Equal(0.0))
		Expect(pool("IPv6", "total")()).To(Equal(256.0))
		Expect(counter("bgplb_ipam_allocation_failures_total", map[string]string{"reason": "PoolExhausted"})).To(BeNumerically(">", failuresBefore))
		Expect(histogramCount("bgplb_ipam_allocation_duration_seconds")).To(BeNumerically(">=", latencyBefore+2))
	})
})

func findMetric(name string, lbls map[string]string) *dto.Metric {
	GinkgoHelper()
	mfs, err := metrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.Metric {
			for k, v := range lbls {
				found := false
				for _, lp := range m.Label {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			return m
		}
	}
	return nil
}

func gauge(name string, lbls map[string]string) float64 {
	if m := findMetric(name, lbls); m != nil {
		return m.GetGauge().GetValue()
	}
	return -1
}

func counter(name string, lbls map[string]string) float64 {
	if m := findMetric(name, lbls); m != nil {
		return m.GetCounter().GetValue()
	}
	return 0
}

func histogramCount(name string) uint64 {
	if m := findMetric(name, nil); m != nil {
		return m.GetHistogram().GetSampleCount()
	}
	return 0
}
