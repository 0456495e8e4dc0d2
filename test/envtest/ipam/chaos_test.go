package ipam_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/ipam"
)

// The chaos spec: the controller is killed and restarted again and again
// while Services are created in a burst. No address may be held twice and
// no Service may see its address change.
var _ = Describe("Controller restarts during a burst", Ordered, func() {
	const total, creators = 400, 8

	var (
		ns      string
		watcher *statusWatcher
	)
	It("never gives an address twice nor changes one", func() {
		ns = newNamespace()
		createPool("chaos", []string{"198.19.0.0/20"})
		controller.stop()
		controller = nil
		DeferCleanup(func() {
			if controller == nil {
				controller = startController(ipam.Options{DefaultClass: true})
			}
		})
		watcher = watchStatuses(ns)

		created := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(created)
			var wg sync.WaitGroup
			for w := range creators {
				wg.Go(func() {
					defer GinkgoRecover()
					for i := w; i < total; i += creators {
						Expect(k8s.Create(ctx, newService(ns, fmt.Sprintf("s-%04d", i)))).To(Succeed())
					}
				})
			}
			wg.Wait()
		}()

		restarts := 0
		for done := false; !done || restarts < 8; restarts++ {
			c := startController(ipam.Options{DefaultClass: true})
			time.Sleep(time.Duration(150+rand.IntN(450)) * time.Millisecond)
			c.stop()
			select {
			case <-created:
				done = true
			default:
			}
		}
		controller = startController(ipam.Options{DefaultClass: true})
		AddReportEntry("controller restarts during the burst", restarts)

		Eventually(func() int {
			var list corev1.ServiceList
			Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
			n := 0
			for _, s := range list.Items {
				if len(s.Status.LoadBalancer.Ingress) > 0 {
					n++
				}
			}
			return n
		}, 90*time.Second).Should(Equal(total))
		// The watch has seen the same (it is how changes are caught).
		Eventually(watcher.withAddress).Should(Equal(total))
		var list corev1.ServiceList
		Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
		owner := map[string]string{}
		for _, s := range list.Items {
			Expect(s.Status.LoadBalancer.Ingress).To(HaveLen(1), s.Name)
			ip := s.Status.LoadBalancer.Ingress[0].IP
			Expect(owner).NotTo(HaveKey(ip), "address %s held by %s and %s", ip, owner[ip], s.Name)
			owner[ip] = s.Name
		}
		// Every address shown is held, by an IPAllocation naming that Service.
		Eventually(func() map[string]string {
			var allocs v1alpha1.IPAllocationList
			Expect(k8s.List(ctx, &allocs)).To(Succeed())
			held := map[string]string{}
			for _, a := range allocs.Items {
				for _, s := range a.Spec.Services {
					if s.Namespace == ns {
						held[a.Spec.Address] = s.Name
					}
				}
			}
			return held
		}).Should(Equal(owner))
		watcher.stop()
		Expect(watcher.violations()).To(BeEmpty())
		Expect(watcher.changes()).To(BeEmpty())
	})
})

// statusWatcher follows every status change of the Services of a namespace.
type statusWatcher struct {
	w    watch.Interface
	mu   sync.Mutex
	cur  map[string]string // Service -> address
	seen map[string]string // Service -> first address seen
	chg  []string
	dup  []string
	// mayShare, when set, tells which two Services may show one address
	// (same sharing key).
	mayShare func(a, b string) bool
}

func watchStatuses(ns string) *statusWatcher {
	GinkgoHelper()
	cs, err := kubernetes.NewForConfig(env.Config)
	Expect(err).NotTo(HaveOccurred())
	list, err := cs.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	Expect(err).NotTo(HaveOccurred())
	// A RetryWatcher resumes from the last event seen if the API server
	// closes the stream, so no status change is missed.
	w, err := watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(c context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return cs.CoreV1().Services(ns).Watch(c, o)
		},
	})
	Expect(err).NotTo(HaveOccurred())
	sw := &statusWatcher{w: w, cur: map[string]string{}, seen: map[string]string{}}
	go func() {
		for ev := range w.ResultChan() {
			s, ok := ev.Object.(*corev1.Service)
			if !ok {
				sw.mu.Lock()
				sw.dup = append(sw.dup, fmt.Sprintf("watch error: %v", ev.Object))
				sw.mu.Unlock()
				continue
			}
			ip := ""
			if len(s.Status.LoadBalancer.Ingress) > 0 {
				ip = s.Status.LoadBalancer.Ingress[0].IP
			}
			sw.observe(s.Name, ip, ev.Type == watch.Deleted)
		}
	}()
	return sw
}

func (sw *statusWatcher) observe(name, ip string, deleted bool) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if deleted {
		delete(sw.cur, name)
		return
	}
	if first, ok := sw.seen[name]; ok && first != ip {
		sw.chg = append(sw.chg, fmt.Sprintf("%s: %q -> %q", name, first, ip))
	}
	if ip == "" {
		delete(sw.cur, name)
		return
	}
	if _, ok := sw.seen[name]; !ok {
		sw.seen[name] = ip
	}
	for other, oip := range sw.cur {
		if other != name && oip == ip && (sw.mayShare == nil || !sw.mayShare(other, name)) {
			sw.dup = append(sw.dup, fmt.Sprintf("%s shown by %s and %s at once", ip, other, name))
		}
	}
	sw.cur[name] = ip
}

func (sw *statusWatcher) withAddress() int {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return len(sw.cur)
}

func (sw *statusWatcher) stop() { sw.w.Stop() }

func (sw *statusWatcher) violations() []string {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sort.Strings(sw.dup)
	return sw.dup
}

func (sw *statusWatcher) changes() []string {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.chg
}
