package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/test/lab"
	"github.com/bgplb/bgplb/test/labcluster"
)

// What the specs read from the routers, the pods and the client, in one place.

// helloNS and helloName are the shared backend: 3 replicas spread over the
// nodes behind a dual-stack LoadBalancer Service (externalTrafficPolicy
// Cluster).
const helloNS, helloName = "traffic", "hello"

// hello applies the shared backend (idempotent), waits until it is rolled
// out with 3 ready endpoints per family, routed by both routers over every
// node and programmed by every kube-proxy, and returns its two addresses
// (IPv4 first).
func hello(ctx context.Context) []netip.Addr {
	GinkgoHelper()
	_, err := cl.ApplyYAML(ctx, clusterBackend(helloNS, helloName))
	Expect(err).NotTo(HaveOccurred())
	_, err = cl.Kubectl(ctx, "-n", helloNS, "rollout", "status", "deployment/"+helloName, "--timeout=3m")
	Expect(err).NotTo(HaveOccurred())
	Expect(cl.WaitEndpoints(ctx, helloNS, helloName, 3, time.Minute)).To(Succeed())
	addrs, err := cl.ServiceAddresses(ctx, helloNS, helloName, 2, time.Minute)
	Expect(err).NotTo(HaveOccurred())
	Expect(addrs).To(HaveLen(2))
	for _, a := range addrs {
		expectRouted(a, allNodes()...)
	}
	Expect(cl.WaitProxied(ctx, helloNS, helloName, time.Minute)).To(Succeed())
	return addrs
}

// allNodes names every node of the cluster.
func allNodes() []string {
	var out []string
	for _, n := range cl.Nodes {
		out = append(out, n.Name)
	}
	return out
}

// nextHop is node's address on router's LAN in addr's family: the next hop
// of the routes it announces to that router.
func nextHop(node, router string, addr netip.Addr) netip.Addr {
	return cl.Lab.NextHop(node, router, addr)
}

// viewOf is what router r holds for addr, next hops named by node
// (nodeOfHop).
func viewOf(r *lab.Router, addr netip.Addr) (labcluster.RouteView, error) {
	return labcluster.ViewOf(r, addr, nodeOfHop)
}

// nodeOfHop names the node a next hop belongs to (a node address on a
// router LAN or, IPv6, a node's link-local address), else the hop itself.
func nodeOfHop(h netip.Addr) string {
	if n := cl.NodeOf(h); n != "" {
		return n
	}
	return h.String()
}

// expectRouted waits until both routers hold addr from exactly nodes: one
// BGP path per node and a kernel route with one next hop per node.
func expectRouted(addr netip.Addr, nodes ...string) {
	GinkgoHelper()
	expectRoutedWithin(2*time.Minute, addr, nodes...)
}

// expectRoutedWithin is expectRouted with its own timeout.
func expectRoutedWithin(timeout time.Duration, addr netip.Addr, nodes ...string) {
	GinkgoHelper()
	want := append([]string{}, nodes...)
	slices.Sort(want)
	for _, r := range cl.Lab.Routers() {
		Eventually(func(g Gomega) {
			v, err := viewOf(r, addr)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(v.BGP).To(Equal(want), "%s: BGP paths of %s: %+v", r.Name, addr, v.Paths)
			g.Expect(v.Kernel).To(Equal(want), "%s: kernel next hops of %s", r.Name, addr)
		}, timeout).Should(Succeed())
	}
}

// expectWithdrawn waits until neither router has a path or route for addr.
func expectWithdrawn(addr netip.Addr) {
	GinkgoHelper()
	expectRouted(addr)
}

// sessionsUp checks that every router has an Established session with
// every node in both families.
func sessionsUp(g Gomega) {
	for _, r := range cl.Lab.Routers() {
		nbrs, err := labcluster.Neighbors(r)
		g.Expect(err).NotTo(HaveOccurred())
		for _, n := range cl.Nodes {
			for _, a := range []netip.Addr{nextHop(n.Name, r.Name, lab.Pool4.Addr()), nextHop(n.Name, r.Name, lab.Pool6.Addr())} {
				g.Expect(nbrs).To(HaveKeyWithValue(a.String(), HaveField("State", "Established")), "%s: session with %s (%s)", r.Name, n.Name, a)
			}
		}
	}
}

// expectSessionsUp waits until sessionsUp holds.
func expectSessionsUp() {
	GinkgoHelper()
	Eventually(sessionsUp).Should(Succeed())
}

// answeredBy sends n requests to addr from the client, each on a new
// connection; every one must be answered by a pod of Service
// helloNS/name's Deployment naming the node it runs on. It returns the
// answers per node.
func answeredBy(ctx context.Context, ns, selector string, addr netip.Addr, n int) map[string]int {
	GinkgoHelper()
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	Expect(err).NotTo(HaveOccurred())
	podNode := map[string]string{}
	for _, p := range pods.Items {
		podNode[p.Name] = p.Spec.NodeName
	}
	counts := map[string]int{}
	for i := range n {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		body, err := cl.Lab.Client().HTTPGet(rctx, lab.ServiceURL(addr, 80))
		cancel()
		Expect(err).NotTo(HaveOccurred(), "request %d to %s (answers so far %v)", i, addr, counts)
		pod, node := field(body, "pod"), field(body, "node")
		Expect(podNode).To(HaveKeyWithValue(pod, node), "answer %q names a pod of %s and its node", strings.TrimSpace(body), selector)
		counts[node]++
	}
	return counts
}

// readyPodNodes returns the sorted nodes that run a ready pod matching selector.
func readyPodNodes(ctx context.Context, ns, selector string) ([]string, error) {
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && !slices.Contains(out, p.Spec.NodeName) {
				out = append(out, p.Spec.NodeName)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// startProbe starts the client connecting to every address of addrs on
// port 80 every interval; answers are counted per node that served them.
// The probe is stopped when the spec ends if the spec did not stop it.
func startProbe(addrs []netip.Addr, interval time.Duration) *lab.Probe {
	var urls []string
	for _, a := range addrs {
		urls = append(urls, lab.ServiceURL(a, 80))
	}
	p := cl.Lab.Client().StartProbe(urls, interval, func(body string) string { return field(body, "node") })
	DeferCleanup(func() { p.Stop() })
	return p
}

// report prints a probe's counts and adds them to the report.
func report(name string, r lab.ProbeResult) {
	line := fmt.Sprintf("ok=%d failed=%d answers by node: %s", r.OK, r.Failed, lab.DescribeCounts(r.Answers))
	fmt.Fprintf(GinkgoWriter, "%s: %s\n", name, line)
	for _, e := range r.Errors {
		fmt.Fprintf(GinkgoWriter, "  %s\n", e)
	}
	AddReportEntry(name, line)
}

// bgplbPods returns "pod (node): restarts" for every pod in bgplb-system.
func bgplbPods(ctx context.Context) map[string]string {
	GinkgoHelper()
	pods, err := cs.CoreV1().Pods("bgplb-system").List(ctx, metav1.ListOptions{})
	Expect(err).NotTo(HaveOccurred())
	out := map[string]string{}
	for _, p := range pods.Items {
		var restarts int32
		last := ""
		for _, c := range p.Status.ContainerStatuses {
			restarts += c.RestartCount
			if t := c.LastTerminationState.Terminated; t != nil {
				last = fmt.Sprintf(", last exit %d (%s) at %s", t.ExitCode, t.Reason, t.FinishedAt.Format("15:04:05"))
			}
		}
		out[fmt.Sprintf("%s (%s)", p.Name, p.Spec.NodeName)] = fmt.Sprintf("%s, restarts %d%s", p.Status.Phase, restarts, last)
	}
	return out
}

// kubectlOK runs kubectl and fails the spec on error.
func kubectlOK(ctx context.Context, args ...string) string {
	GinkgoHelper()
	out, err := cl.Kubectl(ctx, args...)
	Expect(err).NotTo(HaveOccurred())
	return out
}

// machineLoad describes how busy the machine is: the load average and the
// share of time runnable tasks waited for a CPU (PSI, last 60 s). BFD at
// 300 ms x 3 needs every speaker and bfdd scheduled within 900 ms.
func machineLoad() string {
	load, _ := os.ReadFile("/proc/loadavg")
	psi, _ := os.ReadFile("/proc/pressure/cpu")
	some := ""
	for _, f := range strings.Fields(string(psi)) {
		if strings.HasPrefix(f, "avg60=") {
			some = f
			break
		}
	}
	return fmt.Sprintf("load %s, cpu pressure %s%%", strings.Join(strings.Fields(string(load))[:min(3, len(strings.Fields(string(load))))], " "), some)
}

// stallWatch measures, in the background, how late a 100 ms timer fires
// in this process: a direct figure for how long the machine left
// processes unscheduled.
type stallWatch struct {
	mu   sync.Mutex
	max  time.Duration
	at   time.Time
	over []string // stalls longer than 500 ms
	stop chan struct{}
	done chan struct{}
}

func watchStalls() *stallWatch {
	w := &stallWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			t := time.Now()
			select {
			case <-w.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			late := time.Since(t) - 100*time.Millisecond
			w.mu.Lock()
			if late > w.max {
				w.max, w.at = late, t
			}
			if late > 500*time.Millisecond && len(w.over) < 20 {
				w.over = append(w.over, fmt.Sprintf("%s +%s", t.Format("15:04:05.000"), late.Round(time.Millisecond)))
			}
			w.mu.Unlock()
		}
	}()
	DeferCleanup(w.Stop)
	return w
}

// Stop ends the measurement and describes the worst stall.
func (w *stallWatch) Stop() string {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return fmt.Sprintf("longest timer delay in the test process %s (at %s); delays > 500 ms: %v",
		w.max.Round(time.Millisecond), w.at.Format("15:04:05.000"), w.over)
}
