package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/test/lab"
	"github.com/bgplb/bgplb/test/labcluster"
)

// apiOutage is how long the API server stays down (the figure).
const apiOutage = 5 * time.Minute

// routerDown is how long a restarted router stays down.
const routerDown = 5 * time.Second

// routerRestartSpecs: one router's whole FRR (zebra, bgpd, bfdd) stopped
// and started again, as in a router reboot.
func routerRestartSpecs() {
	It("r1's FRR stopped and started: its sessions and every route come back; r2 keeps routing meanwhile", func(ctx SpecContext) {
		addrs := hello(ctx)
		expectSessionsUp()
		r1, r2 := cl.Lab.Router("r1"), cl.Lab.Router("r2")
		DeferCleanup(func(ctx SpecContext) {
			if r1.Daemon("zebra") == nil {
				Expect(r1.StartDaemons(ctx)).To(Succeed())
			}
		})
		probe := startProbe(addrs, 20*time.Millisecond)
		Eventually(func() int { return probe.Result().OK }).Should(BeNumerically(">=", 20), "the client is answered before the restart")

		Expect(r1.StopDaemons()).To(Succeed())
		stopped := time.Now()
		atStop := probe.Result()
		for _, a := range addrs {
			Eventually(func() ([]string, error) {
				v, err := viewOf(r2, a)
				return v.Kernel, err
			}).Should(Equal(allNodes()), "r2 keeps routing %s over every node", a)
			hops, err := r1.KernelRoutes(labcluster.HostPrefix(a))
			Expect(err).NotTo(HaveOccurred())
			fmt.Fprintf(GinkgoWriter, "r1 down: its kernel route for %s has next hops %v\n", a, hops)
		}
		// Long enough for the client to open a few hundred connections
		// through both routers while r1 is down.
		time.Sleep(routerDown)
		down := probe.Result()

		restarted := time.Now()
		Expect(r1.StartDaemons(ctx)).To(Succeed())
		Eventually(sessionsUp).Should(Succeed())
		sessions := time.Since(restarted)
		for _, a := range addrs {
			expectRouted(a, allNodes()...)
		}
		// All routes: r1 holds as many routes in the Service pools as r2.
		for _, pool := range []netip.Prefix{lab.Pool4, lab.Pool6} {
			Eventually(func(g Gomega) {
				n1, err := labcluster.CountKernelRoutes(r1, pool)
				g.Expect(err).NotTo(HaveOccurred())
				n2, err := labcluster.CountKernelRoutes(r2, pool)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(n1).To(Equal(n2), "routes in %s: r1 %d, r2 %d", pool, n1, n2)
				g.Expect(n1).To(BeNumerically(">=", 1))
			}).Should(Succeed())
		}
		back := time.Since(restarted)
		res := probe.Stop()
		fmt.Fprintf(GinkgoWriter, "r1 down for %s; after its start: sessions Established in %s, every route back in %s\n",
			restarted.Sub(stopped).Round(time.Millisecond), sessions.Round(time.Millisecond), back.Round(time.Millisecond))
		AddReportEntry("router restart: start -> every route back", back.String())
		okDown := down.OK - atStop.OK
		fmt.Fprintf(GinkgoWriter, "client while r1 was down: %d connections answered (through r2); failures of the whole spec: %d "+
			"(the client's static ECMP default route keeps sending about half of its connections to r1, which has no route for the Service)\n", okDown, res.Failed)
		AddReportEntry("router restart: answered while r1 down", fmt.Sprint(okDown))
		report("router restart: client connections, whole spec", res)
		Expect(okDown).To(BeNumerically(">", 0), "no connection went through r2 while r1 was down")
	}, SpecTimeout(4*time.Minute))
}

// apiOutageSpecs: the API server stopped for apiOutage while everything
// else runs.
func apiOutageSpecs() {
	It("keeps sessions, routes and client traffic while the API server is down for 5 minutes, and everything resumes after", func(ctx SpecContext) {
		addrs := hello(ctx)
		expectSessionsUp()
		before := bgplbPods(ctx)
		probe := startProbe(addrs, 200*time.Millisecond)
		Eventually(func() int { return probe.Result().OK }).Should(BeNumerically(">=", 10), "the client is answered before the outage")
		watch := watchRoutes(addrs, allNodes(), time.Second)
		apiDown := false
		DeferCleanup(func(ctx SpecContext) {
			if apiDown {
				Expect(cl.StartAPIServer(ctx)).To(Succeed())
			}
		})

		stalls := watchStalls()
		fmt.Fprintf(GinkgoWriter, "machine before the outage: %s\n", machineLoad())
		Expect(cl.StopAPIServer()).To(Succeed())
		apiDown = true
		stopped := time.Now()
		announceIdle()
		var sessionProblems []string
		for next := time.Minute; time.Since(stopped) < apiOutage; {
			if err := InterceptGomegaFailure(func() { sessionsUp(Default) }); err != nil && len(sessionProblems) < 10 {
				sessionProblems = append(sessionProblems, time.Now().Format("15:04:05 ")+err.Error())
			}
			if time.Since(stopped) >= next {
				r := probe.Result()
				fmt.Fprintf(GinkgoWriter, "API server down %s: client ok=%d failed=%d, session problems %d; %s\n", next, r.OK, r.Failed, len(sessionProblems), machineLoad())
				next += time.Minute
			}
			select {
			case <-ctx.Done():
				Fail("interrupted during the outage")
			case <-time.After(5 * time.Second):
			}
		}
		during := probe.Result()
		droppedDuring, _ := watch.Stop()
		stalled := stalls.Stop()

		Expect(cl.StartAPIServer(ctx)).To(Succeed())
		apiDown = false
		up := time.Now()
		watch = watchRoutes(addrs, allNodes(), time.Second)
		unready := watchUnready(helloNS, helloName)
		fmt.Fprintf(GinkgoWriter, "API server back after %s (ready %s after its start)\n", up.Sub(stopped).Round(time.Second), time.Since(up).Round(time.Millisecond))

		By("a new Service getting an address and being routed")
		_, err := cl.ApplyYAML(ctx, fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: after-outage, namespace: %s}
spec:
  type: LoadBalancer
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv4, IPv6]
  selector: {app: %s}
  ports:
    - {name: http, port: 80, targetPort: http}
`, helloNS, helloName))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { kubectlOK(ctx, "-n", helloNS, "delete", "service", "after-outage") })
		// Every informer (the controller's, the speakers', kube-proxy's)
		// retried through the outage with client-go's reflector back-off,
		// which reaches 30 s plus up to 100% jitter: each comes back up to
		// about a minute after the API server. Addressing waits for the
		// controller's, routing then for the speakers'. CI has seen 1 to 2
		// minutes in all; the times are printed below.
		newAddrs, err := cl.ServiceAddresses(ctx, helloNS, "after-outage", 2, 3*time.Minute)
		Expect(err).NotTo(HaveOccurred())
		addressed := time.Since(up)
		for _, a := range newAddrs {
			expectRoutedWithin(3*time.Minute, a, allNodes()...)
		}
		routed := time.Since(up)
		Expect(cl.WaitProxied(ctx, helloNS, "after-outage", time.Minute)).To(Succeed())
		for _, a := range newAddrs {
			answeredBy(ctx, helloNS, "app="+helloName, a, 5)
		}

		By("bgplb's pods healthy")
		kubectlOK(ctx, "-n", "bgplb-system", "rollout", "status", "daemonset/bgplb-speaker", "--timeout=5m")
		// The controller that led when the API went away lost its lease
		// and exited (controller-runtime does). Restarted by the kubelet
		// while the API was still down, it must keep running (it once
		// exited again and again, and came back minutes late from its
		// crash-loop back-off): both replicas Ready, one holding the lease.
		kubectlOK(ctx, "-n", "bgplb-system", "rollout", "status", "deployment/bgplb-controller", "--timeout=2m")
		var leader string
		Eventually(func(g Gomega) {
			l, err := cl.LeaderPod(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			p, err := cs.CoreV1().Pods("bgplb-system").Get(ctx, l, metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(p.Status.Conditions).To(ContainElement(And(HaveField("Type", corev1.PodReady), HaveField("Status", corev1.ConditionTrue))), "leader %s Ready", l)
			leader = l
		}).Should(Succeed(), "a Ready controller holds the lease")
		fmt.Fprintf(GinkgoWriter, "controller leader after the outage: %s\n", leader)
		expectSessionsUp()
		after := bgplbPods(ctx)
		res := probe.Stop()
		dropAt := watch.DroppedAt()
		dropped, samples := watch.Stop()
		// Right after a long outage the node lifecycle controller may mark
		// every Node NotReady, and their pods with them, before the kubelets
		// renew their leases (CI saw it once: "all Nodes are not-Ready.
		// Entering master disruption mode"). The Service then has no ready
		// endpoint for a moment and is rightly withdrawn (kube-proxy would
		// refuse it anyway). Only failures and drops inside that window, up
		// to unreadyLag after it ends (the speakers' informers come back
		// with their own back-off), are excused; any other still fails.
		win := unready.Stop()
		failedOutside, failedIn := win.split(res.FailedAt)
		dropsOutside, dropsIn := win.split(dropAt)
		fmt.Fprintf(GinkgoWriter, "after the outage, Kubernetes itself: %s; client failures in that window %d, outside %d; route drops in it %d, outside %d\n",
			win, failedIn, failedOutside, dropsIn, dropsOutside)
		if win.seen {
			AddReportEntry("API back: Kubernetes marked nodes or endpoints not ready", win.String())
		}

		fmt.Fprintf(GinkgoWriter, "new Service addressed %s and routed by both routers %s after the API server came back\n",
			addressed.Round(time.Millisecond), routed.Round(time.Millisecond))
		AddReportEntry("API back -> new Service routed", routed.String())
		fmt.Fprintf(GinkgoWriter, "bgplb pods before the outage:\n%s", podTable(before))
		fmt.Fprintf(GinkgoWriter, "bgplb pods after:\n%s", podTable(after))
		AddReportEntry("bgplb pods after the API outage", podTable(after))
		fmt.Fprintf(GinkgoWriter, "during the outage: %s\nsession problems: %v\n", stalled, sessionProblems)
		report("API down: client connections during the outage", during)
		report("API down: client connections, whole spec", res)
		fmt.Fprintf(GinkgoWriter, "route samples during the outage and after: %d\n", samples)
		Expect(during.Failed).To(BeZero(), "client connections failed while the API server was down:\n%s", strings.Join(during.Errors, "\n"))
		Expect(droppedDuring).To(BeEmpty(), "a router lost a next hop while the API server was down")
		Expect(sessionProblems).To(BeEmpty(), "sessions not Established while the API server was down")
		Expect(failedOutside).To(BeZero(), "client connections failed after the API server came back (%s):\n%s", win, strings.Join(res.Errors, "\n"))
		Expect(dropsOutside).To(BeZero(), "a router lost a next hop after the API server came back (%s): %v", win, dropped)
	}, SpecTimeout(20*time.Minute))
}

// podTable prints bgplbPods' result one pod a line.
func podTable(m map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "  %s: %s\n", k, m[k])
	}
	return b.String()
}

// announceIdle tells `make test` (hack/beside.sh) that the suite now waits
// for minutes with little to do, so the suites it holds back may run: it
// creates the file $BGPLB_IDLE_FLAG names, if set.
func announceIdle() {
	f := os.Getenv("BGPLB_IDLE_FLAG")
	if f == "" {
		return
	}
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		fmt.Fprintf(GinkgoWriter, "could not announce the outage to make test (%s): %v\n", f, err)
	}
}

// unreadyLag is how long after Kubernetes shows the nodes and endpoints
// ready again a withdrawal is still excused: the speakers' informers
// retried through the outage with client-go's back-off and may see the
// not-ready state, and then the ready one, up to about a minute late.
const unreadyLag = time.Minute

// unreadyWatch records when, polled from the API, some Node is not Ready or
// a Service has no ready endpoint.
type unreadyWatch struct {
	mu          sync.Mutex
	seen        bool
	first, last time.Time
	what        string
	stop        context.CancelFunc
	done        chan struct{}
}

func watchUnready(ns, svc string) *unreadyWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &unreadyWatch{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			if what := unreadyNow(ctx, ns, svc); what != "" {
				w.mu.Lock()
				if !w.seen {
					w.seen, w.first, w.what = true, time.Now(), what
				}
				w.last = time.Now()
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	DeferCleanup(w.Stop)
	return w
}

// unreadyNow describes what is not ready now ("" if nothing, or if the API
// cannot be read).
func unreadyNow(ctx context.Context, ns, svc string) string {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return ""
	}
	for _, n := range nodes.Items {
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue {
				return fmt.Sprintf("Node %s Ready=%s", n.Name, c.Status)
			}
		}
	}
	eps, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
	if err != nil {
		return ""
	}
	for _, s := range eps.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && *e.Conditions.Ready {
				return ""
			}
		}
	}
	return fmt.Sprintf("Service %s/%s without a ready endpoint", ns, svc)
}

// Stop ends the polling and returns the window seen.
func (w *unreadyWatch) Stop() *unreadyWatch {
	w.stop()
	<-w.done
	return w
}

// split counts the times outside and inside the window (from a second
// before the first observation to unreadyLag after the last).
func (w *unreadyWatch) split(ts []time.Time) (outside, inside int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, t := range ts {
		if w.seen && !t.Before(w.first.Add(-time.Second)) && !t.After(w.last.Add(unreadyLag)) {
			inside++
		} else {
			outside++
		}
	}
	return outside, inside
}

func (w *unreadyWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.seen {
		return "every Node Ready and the Service's endpoints ready throughout"
	}
	return fmt.Sprintf("%s first at %s, not ready until %s", w.what, w.first.Format("15:04:05.000"), w.last.Format("15:04:05.000"))
}
