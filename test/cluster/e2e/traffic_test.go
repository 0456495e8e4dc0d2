package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/bgplb/bgplb/test/lab"
)

func ctxBG() context.Context { return context.Background() }

// One ordered container: the specs share the installed bgplb and the last
// one uninstalls it.
var _ = Describe("bgplb installed by kubectl apply -k on real nodes", Ordered, func() {
	Describe("traffic through kube-proxy to real pods", trafficSpecs)
	Describe("the controller's leader pod deleted during a burst of Services", burstSpecs)
	Describe("least privilege", privilegeSpecs)
	Describe("status", statusSpecs)
	Describe("L2 mode (ARP/NDP)", l2Specs)
	Describe("externalTrafficPolicy Local with real pods", localSpecs)
	Describe("draining a node", drainSpecs)
	Describe("a rolling restart of the speaker DaemonSet", restartSpecs)
	Describe("a frozen speaker pod", bfdSpecs)
	Describe("a router restarted", routerRestartSpecs)
	Describe("the API server down for 5 minutes", apiOutageSpecs)
	Describe("kubectl delete -k", uninstallSpecs)
})

func trafficSpecs() {
	const ns, name = helloNS, helloName
	var addrs []netip.Addr

	BeforeAll(func(ctx SpecContext) { addrs = hello(ctx) }, NodeTimeout(5*time.Minute))

	It("is routed by both routers over every node (ECMP)", func(ctx SpecContext) {
		for _, a := range addrs {
			hops, err := cl.WaitRoutes(ctx, a, time.Minute)
			Expect(err).NotTo(HaveOccurred())
			for r, h := range hops {
				Expect(h).To(HaveLen(len(cl.Nodes)), "%s next hops for %s", r, a)
			}
		}
	}, SpecTimeout(2*time.Minute))

	It("answers from the pods of the Deployment, over IPv4 and IPv6, with no failed request", func(ctx SpecContext) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		Expect(err).NotTo(HaveOccurred())
		// Routers may route the addresses a moment before every kube-proxy
		// has programmed them: wait for every node's rules.
		t := time.Now()
		Expect(cl.WaitProxied(ctx, ns, name, time.Minute)).To(Succeed())
		fmt.Fprintf(GinkgoWriter, "programmed by kube-proxy on every node %s after the routes\n", time.Since(t).Round(time.Millisecond))
		podNode := map[string]string{}
		for _, p := range pods.Items {
			podNode[p.Name] = p.Spec.NodeName
		}
		for _, a := range addrs {
			seen := map[string]int{}
			for i := 0; i < 30; i++ {
				rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				body, err := cl.Lab.Client().HTTPGet(rctx, lab.ServiceURL(a, 80))
				cancel()
				Expect(err).NotTo(HaveOccurred(), "request %d to %s", i, a)
				pod, node := field(body, "pod"), field(body, "node")
				Expect(podNode).To(HaveKeyWithValue(pod, node), "answer %q names a pod of the Deployment and its node", strings.TrimSpace(body))
				seen[pod]++
			}
			fmt.Fprintf(GinkgoWriter, "%s: 30 requests answered by %v\n", a, seen)
			Expect(len(seen)).To(BeNumerically(">=", 2), "requests to %s spread over pods", a)
		}
	}, SpecTimeout(3*time.Minute))
}

func burstSpecs() {
	It("loses no Service, duplicates no address, changes none, and a new leader resumes", func(ctx SpecContext) {
		const ns, n = "burst", 500
		// A pool of its own (asked for by annotation, never announced: the
		// lab's BGPAdvertisement covers pool "lab" only) so 500 fit.
		_, err := cl.ApplyYAML(ctx, `apiVersion: v1
kind: Namespace
metadata: {name: burst}
---
apiVersion: bgplb.io/v1alpha1
kind: IPPool
metadata: {name: burst}
spec:
  addresses: ["198.19.128.0/22"]
  autoAssign: false
`)
		Expect(err).NotTo(HaveOccurred())
		leader, err := cl.LeaderPod(ctx)
		Expect(err).NotTo(HaveOccurred())

		// Follow every Service's addresses while the burst runs.
		first := sync.Map{} // name -> string of addresses first seen
		var changed atomic.Int32
		stopWatch := make(chan struct{})
		var watchWG sync.WaitGroup
		watchWG.Add(1)
		go func() {
			defer GinkgoRecover()
			defer watchWG.Done()
			for {
				list, err := cs.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
				if err == nil {
					for _, s := range list.Items {
						got := ingress(&s)
						if got == "" {
							continue
						}
						if prev, loaded := first.LoadOrStore(s.Name, got); loaded && prev.(string) != got {
							changed.Add(1)
							fmt.Fprintf(GinkgoWriter, "CHANGED: %s %s -> %s\n", s.Name, prev, got)
						}
					}
				}
				select {
				case <-stopWatch:
					return
				case <-time.After(300 * time.Millisecond):
				}
			}
		}()

		t0 := time.Now()
		var created atomic.Int32
		var deletedAt time.Time
		var wg sync.WaitGroup
		jobs := make(chan int)
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				for i := range jobs {
					Expect(createLB(ctx, ns, fmt.Sprintf("s-%04d", i))).To(Succeed())
					created.Add(1)
				}
			}()
		}
		for i := 0; i < n; i++ {
			if i == n/3 {
				deletedAt = time.Now()
				Expect(cs.CoreV1().Pods("bgplb-system").Delete(ctx, leader, metav1.DeleteOptions{})).To(Succeed())
				fmt.Fprintf(GinkgoWriter, "deleted leader pod %s after %d Services\n", leader, i)
			}
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		createdIn := time.Since(t0)

		var newLeader string
		Eventually(func(g Gomega) {
			l, err := cl.LeaderPod(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(l).NotTo(Equal(leader))
			newLeader = l
		}).Should(Succeed())
		takeover := time.Since(deletedAt)
		Eventually(func(g Gomega) {
			list, err := cs.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			got := 0
			for _, s := range list.Items {
				if ingress(&s) != "" {
					got++
				}
			}
			g.Expect(got).To(Equal(n))
		}, 3*time.Minute).Should(Succeed())
		allIn := time.Since(t0)
		// Keep watching a little after the last allocation.
		time.Sleep(3 * time.Second)
		close(stopWatch)
		watchWG.Wait()

		list, err := cs.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
		Expect(err).NotTo(HaveOccurred())
		holder := map[string]string{}
		for _, s := range list.Items {
			for _, in := range s.Status.LoadBalancer.Ingress {
				Expect(holder).NotTo(HaveKey(in.IP), "address %s held by %s and %s", in.IP, holder[in.IP], s.Name)
				holder[in.IP] = s.Name
			}
		}
		Expect(changed.Load()).To(BeZero(), "Services whose address changed")
		fmt.Fprintf(GinkgoWriter, "burst of %d Services: created in %s, all addressed after %s; leader %s deleted, %s holds the lease; lease seen with the new holder %s after the delete\n",
			n, createdIn.Round(time.Millisecond), allIn.Round(time.Millisecond), leader, newLeader, takeover.Round(time.Millisecond))
		AddReportEntry("leader takeover", takeover.String())
		Expect(cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})).To(Succeed())
	}, SpecTimeout(8*time.Minute))
}

func createLB(ctx context.Context, ns, name string) error {
	f := false
	_, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{"bgplb.io/ip-pool": "burst"}},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			AllocateLoadBalancerNodePorts: &f,
			Ports:                         []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}, metav1.CreateOptions{})
	return err
}

func ingress(s *corev1.Service) string {
	var ips []string
	for _, in := range s.Status.LoadBalancer.Ingress {
		ips = append(ips, in.IP)
	}
	return strings.Join(ips, ",")
}

func field(body, key string) string {
	for _, f := range strings.Fields(body) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}
