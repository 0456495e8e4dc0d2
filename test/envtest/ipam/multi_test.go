package ipam_test

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/ipam"
)

// Several controllers at once, without leader election: what a leader change
// with an overlapping old leader or a copy-pasted Deployment produces. The
// IPAllocation names are the only lock they share, so this is the test that
// the lock alone keeps one address to one Service.
var _ = Describe("Several controllers at once during a burst", Ordered, func() {
	const total, creators = 1000, 16

	// burst stops the suite's controller, starts n of them, creates the
	// Services from 16 clients and checks what every observer saw.
	burst := func(n int, key func(i int) string) {
		ns := newNamespace()
		createPool(fmt.Sprintf("multi-%d", nsCount.Load()), []string{"198.18.0.0/22"})
		controller.stop()
		controller = nil
		var running []*runningController
		DeferCleanup(func() {
			for _, c := range running {
				c.stop()
			}
			controller = startController(ipam.Options{DefaultClass: true})
		})
		for range n {
			running = append(running, startController(ipam.Options{DefaultClass: true}))
		}
		keys := map[string]string{}
		for i := range total {
			keys[svcName(i)] = key(i)
		}
		watcher := watchStatuses(ns)
		watcher.mayShare = func(a, b string) bool { return keys[a] != "" && keys[a] == keys[b] }

		start := time.Now()
		createBurst(ns, total, creators, func(i int) *corev1.Service {
			var opts []svcOpt
			if k := key(i); k != "" {
				// Distinct ports so every Service of a key is compatible.
				opts = append(opts, annotate(v1alpha1.AnnotationSharingKey, k), ports(int32(1000+i)))
			}
			return newService(ns, svcName(i), opts...)
		})
		created := time.Since(start)
		Eventually(watcher.withAddress, 2*time.Minute).Should(Equal(total))
		AddReportEntry(fmt.Sprintf("%d controllers: %d Services created in", n, total), created.Round(time.Millisecond).String())
		AddReportEntry(fmt.Sprintf("%d controllers: all addressed after", n), time.Since(start).Round(time.Millisecond).String())

		// Settle: nothing left over from the races (losers' locks released).
		Eventually(func() []string { return statusMismatches(ns) }, time.Minute).Should(BeEmpty())
		Consistently(func() []string { return statusMismatches(ns) }, 3*time.Second).Should(BeEmpty())
		watcher.stop()
		Expect(watcher.violations()).To(BeEmpty(), "an address was shown by two Services at once")
		// Several controllers at once (no leader election) guarantee no
		// duplicate and a status that matches the allocations; under heavy
		// load a racing Service's first address was seen replaced once in a
		// few runs (docs/kinds/ipallocation.md says so). Reported, not
		// failed; with leader election (leader_test.go) and across restarts
		// (chaos_test.go) a change fails the spec.
		if ch := watcher.changes(); len(ch) > 0 {
			AddReportEntry(fmt.Sprintf("%d controllers: addresses changed during the race", n), ch)
		}
	}

	It("gives every Service its own address with two controllers", func() {
		burst(2, func(int) string { return "" })
	})
	It("gives every Service its own address with three controllers", func() {
		burst(3, func(int) string { return "" })
	})
	It("keeps sharing keys right with three controllers", func() {
		// Every fourth Service is alone, the others share in groups of three.
		burst(3, func(i int) string {
			if i%4 == 0 {
				return ""
			}
			return fmt.Sprintf("k%d", i/12)
		})
	})
})

func svcName(i int) string { return fmt.Sprintf("m-%04d", i) }

// createBurst creates total Services from creators clients at once.
func createBurst(ns string, total, creators int, build func(i int) *corev1.Service) {
	GinkgoHelper()
	var wg sync.WaitGroup
	errs := make(chan error, creators)
	for w := range creators {
		wg.Go(func() {
			for i := w; i < total; i += creators {
				if err := k8s.Create(ctx, build(i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		Expect(err).NotTo(HaveOccurred())
	}
}

// statusMismatches compares, for every Service of a namespace, the addresses
// in its status with the IPAllocations that name it (by UID), and lists
// every difference and every Service whose condition is not True.
func statusMismatches(ns string) []string {
	var svcs corev1.ServiceList
	Expect(k8s.List(ctx, &svcs, client.InNamespace(ns))).To(Succeed())
	var allocs v1alpha1.IPAllocationList
	Expect(k8s.List(ctx, &allocs)).To(Succeed())
	held := map[string][]string{} // Service name/uid -> addresses
	for _, a := range allocs.Items {
		for _, s := range a.Spec.Services {
			if s.Namespace == ns {
				k := s.Name + "/" + string(s.UID)
				held[k] = append(held[k], a.Spec.Address)
			}
		}
	}
	var out []string
	for _, s := range svcs.Items {
		var shown []string
		for _, in := range s.Status.LoadBalancer.Ingress {
			shown = append(shown, canonical(in.IP))
		}
		slices.Sort(shown)
		h := held[s.Name+"/"+string(s.UID)]
		slices.Sort(h)
		if !slices.Equal(shown, h) {
			out = append(out, fmt.Sprintf("%s shows %v, holds %v", s.Name, shown, h))
		}
		delete(held, s.Name+"/"+string(s.UID))
		if c := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionAddressAllocated); c == nil || c.Status != metav1.ConditionTrue {
			out = append(out, fmt.Sprintf("%s: condition %v", s.Name, c))
		}
	}
	for k, h := range held {
		out = append(out, fmt.Sprintf("IPAllocations %v name %s, which does not exist", h, k))
	}
	slices.Sort(out)
	return out
}

func canonical(ip string) string {
	if a, err := netip.ParseAddr(ip); err == nil {
		return a.String()
	}
	return ip
}
