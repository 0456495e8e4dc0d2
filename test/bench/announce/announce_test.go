// Package announce benchmarks how fast the routers learn and forget
// Service addresses: on the network-namespace lab, with the real controller
// and speakers, against FRR routers, timed by the routers' own kernels.
//
//	make bench-announce            # or:
//	BGPLB_BIN=bin/bgplb go test -run '^$' -bench . -benchtime 1x ./test/bench/announce
//
// It prints figures and never fails on them. Knobs: BGPLB_BENCH_SEQUENTIAL
// (default 100), BGPLB_BENCH_BURST (1000; at most 16384), BGPLB_BENCH_FAILOVERS
// (5 with BFD, 3 without). The burst phase also reports the controller's and
// the speakers' resident memory with the burst's Services announced.
package announce

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/test/lab"
	"github.com/bgplb/bgplb/test/labcluster"
)

const ns = "bench"

var (
	// seqPool is the lab pool's IPv4 half (config/samples/lab).
	seqPool = netip.MustParsePrefix("203.0.113.0/25")
	// burstPool holds the burst's IPv6 addresses: the IPv4 documentation
	// range has only 256, so the burst is IPv6 /128s, up to 16,384 of them
	// (BGPLB_BENCH_BURST=10000 measures the footprint at DESIGN.md's scale).
	burstPool = netip.MustParsePrefix("2001:db8:ffff::4000/114")
	peers     = []string{"r1-v4", "r1-v6", "r2-v4", "r2-v6"}
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkAnnounce runs the phases on one lab per BGP backend of the
// speakers, one after the other (backends_test.go): with GoBGP,
// announcement latency one Service at a time, a burst, and failover with
// and without BFD; with frr-k8s (real FRR and frr-k8s in every node), the
// one-at-a-time latency. It ends with both backends' figures side by side.
//
// The routers keep FRR's defaults for the receive path. "coalesce-time"
// is not set: it only delays the updates a router sends, and the lab's
// routers send none to the nodes. On the router side the figures include
// bgpd's route processing queue, which holds received routes for 50 ms
// before best-path selection (fixed in FRR 8.4's bgpd, no knob), and
// zebra's work queue (10 ms default) before the kernel route appears: a
// floor of about 60 ms under every "route in the kernel" figure, which the
// reference figures of DESIGN.md, taken on the same FRR, include too.
func BenchmarkAnnounce(b *testing.B) {
	lab.RequireLab(b)
	ctrllog.SetLogger(logr.Discard())
	var report []string
	add := func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		report = append(report, line)
		fmt.Println(line)
	}
	seq := map[string]seqResult{}
	for _, backend := range benchBackends() {
		b.Run(backend, func(b *testing.B) {
			c := startLab(b, backend)
			say := func(format string, args ...any) { add("["+backend+"] "+format, args...) }
			if backend == labcluster.BackendFRRK8s {
				b.Run("sequential", func(b *testing.B) {
					seq[backend] = sequential(b, c, envInt("BGPLB_BENCH_SEQUENTIAL_FRRK8S", 30), say)
				})
				return
			}
			b.Run("sequential", func(b *testing.B) { seq[backend] = sequential(b, c, envInt("BGPLB_BENCH_SEQUENTIAL", 100), say) })
			b.Run("burst", func(b *testing.B) { burst(b, c, envInt("BGPLB_BENCH_BURST", 1000), say) })
			for _, bfd := range []bool{false, true} {
				name, reps := "failover-holdtime", envInt("BGPLB_BENCH_FAILOVERS_NOBFD", 3)
				if bfd {
					name, reps = "failover-bfd", envInt("BGPLB_BENCH_FAILOVERS", 5)
				}
				b.Run(name, func(b *testing.B) {
					if err := failover(b, c, bfd, reps, say); err != nil {
						say("%s: not measured: %v", name, err)
						b.Error(err)
					}
				})
			}
		})
	}

	fmt.Println("\n== bench-announce summary (targets in DESIGN.md; figures only, nothing fails on them)")
	for _, l := range report {
		fmt.Println("  " + l)
	}
	fmt.Println(sideBySide(seq))
}

// setup creates the benchmark's namespace, the burst pool and its
// advertisement, and waits until every session is up.
func setup(ctx context.Context, c *labcluster.Cluster) error {
	if err := c.EnsureNamespace(ctx, ns); err != nil {
		return err
	}
	objs := []client.Object{
		&v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "bench-burst"},
			Spec: v1alpha1.IPPoolSpec{Addresses: []v1alpha1.AddressRange{v1alpha1.AddressRange(burstPool.String())}, AutoAssign: ptr.To(false)}},
		&v1alpha1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: "bench-burst"},
			Spec: v1alpha1.BGPAdvertisementSpec{IPPools: []string{"bench-burst"}}},
	}
	for _, o := range objs {
		if err := c.Client.Create(ctx, o); err != nil {
			return err
		}
	}
	return waitSessions(ctx, c, 3*time.Minute)
}

// waitSessions waits until both routers have every node's sessions up.
func waitSessions(ctx context.Context, c *labcluster.Cluster, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		up := 0
		for _, r := range c.Lab.Routers() {
			nbrs, err := labcluster.Neighbors(r)
			if err != nil {
				continue
			}
			for _, n := range nbrs {
				if n.State == "Established" {
					up++
				}
			}
		}
		if up == 2*2*len(c.Lab.Nodes()) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d sessions established after %v", up, 4*len(c.Lab.Nodes()), timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func setPeer(ctx context.Context, c *labcluster.Cluster, name string, mutate func(*v1alpha1.BGPPeerSpec)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p := &v1alpha1.BGPPeer{}
		if err := c.Client.Get(ctx, types.NamespacedName{Name: name}, p); err != nil {
			return err
		}
		mutate(&p.Spec)
		return c.Client.Update(ctx, p)
	})
}

// sequential creates n IPv4 Services one at a time and times each from
// the create call to its route in r1's and r2's kernel tables.
func sequential(b *testing.B, c *labcluster.Cluster, n int, add func(string, ...any)) seqResult {
	ctx := context.Background()
	r1, r2 := c.Lab.Router("r1"), c.Lab.Router("r2")
	w1, err := labcluster.WatchRoutes(r1.Netns)
	if err != nil {
		b.Fatal(err)
	}
	defer w1.Close()
	w2, err := labcluster.WatchRoutes(r2.Netns)
	if err != nil {
		b.Fatal(err)
	}
	defer w2.Close()
	// When each Service's address shows up in its status, as a watching
	// client sees it: splits the latency into the controller's share and
	// the speakers' and routers' share.
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		b.Fatal(err)
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	sw, err := cs.CoreV1().Services(ns).Watch(wctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var amu sync.Mutex
	addressed := map[string]time.Time{}
	go func() {
		for ev := range sw.ResultChan() {
			now := time.Now()
			if svc, ok := ev.Object.(*corev1.Service); ok && len(svc.Status.LoadBalancer.Ingress) > 0 {
				amu.Lock()
				if _, seen := addressed[svc.Name]; !seen {
					addressed[svc.Name] = now
				}
				amu.Unlock()
			}
		}
	}()
	var first, both, toStatus, statusToRoute []time.Duration
	var svcs []*corev1.Service
	defer func() { cleanup(b, c, svcs, seqPool) }()
	for i := range n {
		svc := c.ServiceObject(labcluster.ServiceOptions{Namespace: ns, Name: fmt.Sprintf("seq-%03d", i)})
		// The endpoints exist already, as they would for pods that are running.
		if err := c.SetBackends(ctx, svc, c.NodeNames()...); err != nil {
			b.Fatal(err)
		}
		known := w1.SeenIn(seqPool)
		t0 := time.Now()
		if err := c.Client.Create(ctx, svc); err != nil {
			b.Fatal(err)
		}
		svcs = append(svcs, svc)
		p, t1, err := waitNew(ctx, w1, seqPool, known, time.Minute)
		if err != nil {
			b.Fatalf("service %d: %v", i, err)
		}
		t2, err := waitSeen(ctx, w2, p, time.Minute)
		if err != nil {
			b.Fatalf("service %d at r2: %v", i, err)
		}
		first = append(first, t1.Sub(t0))
		both = append(both, later(t1, t2).Sub(t0))
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			amu.Lock()
			ta, ok := addressed[svc.Name]
			amu.Unlock()
			if ok {
				toStatus = append(toStatus, ta.Sub(t0))
				statusToRoute = append(statusToRoute, t1.Sub(ta))
				break
			}
			if time.Now().After(deadline) {
				break // the watch lags; the split is then missing for this one
			}
		}
	}
	// The routes seen must be the Services' addresses.
	if err := checkAddresses(ctx, c, svcs, w1, seqPool); err != nil {
		b.Error(err)
	}
	p1, p2 := percentiles(first), percentiles(both)
	res := seqResult{n: n, r1: p1, both: p2}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(p1[0]), "p50-ms")
	b.ReportMetric(ms(p1[1]), "p95-ms")
	b.ReportMetric(ms(p1[2]), "p99-ms")
	add("one at a time (%d IPv4 Services): create -> route in r1's kernel: p50 %v p95 %v p99 %v max %v (target p99 < 100ms)",
		n, round(p1[0]), round(p1[1]), round(p1[2]), round(slices.Max(first)))
	add("one at a time: create -> route in both routers' kernels: p50 %v p95 %v p99 %v", round(p2[0]), round(p2[1]), round(p2[2]))
	if len(toStatus) > 0 {
		p3, p4 := percentiles(toStatus), percentiles(statusToRoute)
		add("one at a time, split: create -> address in the Service's status (controller) p50 %v p99 %v; address in status -> route in r1's kernel (speaker, BGP, router) p50 %v p99 %v",
			round(p3[0]), round(p3[2]), round(p4[0]), round(p4[2]))
		res.split = &[2][3]time.Duration{p3, p4}
	}
	return res
}

// burst creates n IPv6 Services (with their EndpointSlices) from 16
// clients at once and times how long until all are in r1's kernel table,
// against how long the creates took.
func burst(b *testing.B, c *labcluster.Cluster, n int, add func(string, ...any)) {
	ctx := context.Background()
	r1 := c.Lab.Router("r1")
	w, err := labcluster.WatchRoutes(r1.Netns)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	svcs := make([]*corev1.Service, n)
	for i := range svcs {
		svcs[i] = c.ServiceObject(labcluster.ServiceOptions{Namespace: ns, Name: fmt.Sprintf("burst-%04d", i),
			Families: labcluster.IPv6, Annotations: map[string]string{v1alpha1.AnnotationIPPool: "bench-burst"}})
	}
	defer func() { cleanup(b, c, svcs, burstPool) }()
	created := make([]time.Time, n)
	start := time.Now()
	err = parallel(16, n, func(i int) error {
		if err := c.SetBackends(ctx, svcs[i], c.NodeNames()...); err != nil {
			return err
		}
		if err := c.Client.Create(ctx, svcs[i]); err != nil {
			return err
		}
		created[i] = time.Now()
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	createTime := slices.MaxFunc(created, func(a, b time.Time) int { return a.Compare(b) }).Sub(start)

	// All n routes in the kernel: from the route events, or (if the kernel
	// dropped events) from counting the table.
	deadline := time.Now().Add(10 * time.Minute)
	var routed time.Duration
	for {
		seen := w.SeenIn(burstPool)
		if len(seen) >= n {
			var last time.Time
			for _, t := range seen {
				last = later(last, t)
			}
			routed = last.Sub(start)
			break
		}
		if w.Overflowed() {
			if cnt, err := labcluster.CountKernelRoutes(r1, burstPool); err == nil && cnt >= n {
				routed = time.Since(start)
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d burst routes in r1's kernel after 10 minutes", len(seen), n)
		}
		select {
		case <-w.Changed():
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := checkAddresses(ctx, c, svcs, w, burstPool); err != nil {
		b.Error(err)
	}
	ratio := routed.Seconds() / createTime.Seconds()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(createTime.Seconds(), "create-s")
	b.ReportMetric(routed.Seconds(), "routed-s")
	b.ReportMetric(ratio, "routed/create")
	note := ""
	if w.Overflowed() {
		note = " (route events overflowed; the end was found by counting the table)"
	}
	add("burst of %d IPv6 Services (16 clients): objects created in %v, all routed in r1's kernel after %v: %.2fx (target <= 1.25x)%s",
		n, round(createTime), round(routed), ratio, note)
	add("resident memory with the burst's %d Services announced: %s (targets at 10,000: controller < 200 MiB, speaker < 100 MiB)",
		n, footprint(c))
}

// footprint reports the resident memory of the controller and of every
// speaker, e.g. "controller 80 MiB, speakers n1 60 MiB, n2 61 MiB".
func footprint(c *labcluster.Cluster) string {
	mib := func(p *lab.Proc) string {
		if p == nil {
			return "not running"
		}
		return lab.ResidentMiB(p.PID)
	}
	out := "controller " + mib(c.Controller()) + ", speakers"
	for i, node := range c.NodeNames() {
		if i > 0 {
			out += ","
		}
		out += " " + node + " " + mib(c.Speaker(node))
	}
	return out
}

// failover freezes a node's speaker (SIGSTOP) and times how long until the
// routers' kernel routes stop using that node, reps times, with BFD on
// both ends or with only the hold time (9 s) to notice.
func failover(b *testing.B, c *labcluster.Cluster, bfd bool, reps int, add func(string, ...any)) error {
	ctx := context.Background()
	if bfd {
		for _, r := range c.Lab.Routers() {
			cfg := r.Config()
			cfg.PeerGroups = slices.Clone(cfg.PeerGroups)
			for i := range cfg.PeerGroups {
				cfg.PeerGroups[i].BFD = true
			}
			if err := r.Reconfigure(ctx, cfg); err != nil {
				return err
			}
		}
		for _, p := range peers {
			if err := setPeer(ctx, c, p, func(s *v1alpha1.BGPPeerSpec) {
				s.BFD = &v1alpha1.BFD{Enabled: true, MinReceiveInterval: &metav1.Duration{Duration: 300 * time.Millisecond},
					MinTransmitInterval: &metav1.Duration{Duration: 300 * time.Millisecond}, DetectMultiplier: ptr.To[int32](3)}
			}); err != nil {
				return err
			}
		}
	}
	if err := waitSessions(ctx, c, 3*time.Minute); err != nil {
		return err
	}
	svc, err := c.CreateService(ctx, labcluster.ServiceOptions{Namespace: ns, Name: fmt.Sprintf("failover-bfd-%v", bfd)})
	if err != nil {
		return err
	}
	defer func() { cleanup(b, c, []*corev1.Service{svc}, seqPool) }()
	addr, err := waitAddress(ctx, c, svc)
	if err != nil {
		return err
	}
	prefix := labcluster.HostPrefix(addr)
	routers := c.Lab.Routers()
	watchers := make([]*labcluster.RouteWatcher, len(routers))
	for i, r := range routers {
		if watchers[i], err = labcluster.WatchRoutes(r.Netns); err != nil {
			return err
		}
		defer watchers[i].Close()
	}
	nodes := c.NodeNames()
	var times []time.Duration
	for rep := range reps {
		node := nodes[rep%len(nodes)]
		if err := waitHops(ctx, c, prefix, len(nodes), 3*time.Minute); err != nil {
			return fmt.Errorf("rep %d: %w", rep, err)
		}
		if bfd {
			// Measure BFD only once it runs with the node on both routers.
			if err := waitBFD(ctx, c, node, addr, time.Minute); err != nil {
				return fmt.Errorf("rep %d: %w", rep, err)
			}
		}
		p := c.Speaker(node)
		t0 := time.Now()
		if err := p.Signal(syscall.SIGSTOP); err != nil {
			return err
		}
		gone := make([]time.Time, len(routers))
		errs := make([]error, len(routers))
		var wg sync.WaitGroup
		for i, r := range routers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
				defer cancel()
				gone[i], errs[i] = watchers[i].WaitUntil(wctx, 20*time.Millisecond, func() (bool, error) {
					hops, err := r.KernelRoutes(prefix)
					return err == nil && len(hops) > 0 && !slices.Contains(c.NodesOf(hops), node), err
				})
			}()
		}
		wg.Wait()
		_ = p.Signal(syscall.SIGCONT)
		for i, err := range errs {
			if err != nil {
				return fmt.Errorf("rep %d: %s never dropped frozen %s: %w", rep, routers[i].Name, node, err)
			}
			times = append(times, gone[i].Sub(t0))
			fmt.Fprintf(os.Stderr, "failover bfd=%v rep %d: %s dropped frozen %s after %v\n", bfd, rep, routers[i].Name, node, round(gone[i].Sub(t0)))
		}
	}
	if err := waitHops(ctx, c, prefix, len(nodes), 3*time.Minute); err != nil {
		b.Error(err)
	}
	slices.Sort(times)
	med := times[len(times)/2]
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(med), "median-ms")
	b.ReportMetric(ms(times[len(times)-1]), "max-ms")
	what, target := "hold time 9 s, no BFD", ""
	if bfd {
		what, target = "BFD 300ms x 3", " (target < 1s)"
	}
	add("SIGSTOP of a speaker -> its next hop out of the routers' kernel tables, %s: median %v, min %v, max %v over %d samples%s",
		what, round(med), round(times[0]), round(times[len(times)-1]), len(times), target)
	return nil
}

// waitNew waits for a route inside pool that is not in known and returns it
// with the time the kernel announced it.
func waitNew(ctx context.Context, w *labcluster.RouteWatcher, pool netip.Prefix, known map[netip.Prefix]time.Time, timeout time.Duration) (netip.Prefix, time.Time, error) {
	deadline := time.After(timeout)
	for {
		for p, t := range w.SeenIn(pool) {
			if _, old := known[p]; !old {
				return p, t, nil
			}
		}
		select {
		case <-w.Changed():
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			return netip.Prefix{}, time.Time{}, fmt.Errorf("no new route inside %s within %v", pool, timeout)
		case <-ctx.Done():
			return netip.Prefix{}, time.Time{}, ctx.Err()
		}
	}
}

func waitSeen(ctx context.Context, w *labcluster.RouteWatcher, p netip.Prefix, timeout time.Duration) (time.Time, error) {
	deadline := time.After(timeout)
	for {
		if t, ok := w.FirstSeen(p); ok {
			return t, nil
		}
		select {
		case <-w.Changed():
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			return time.Time{}, fmt.Errorf("no route for %s within %v", p, timeout)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// waitHops waits until both routers route prefix over want next hops.
func waitHops(ctx context.Context, c *labcluster.Cluster, prefix netip.Prefix, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ok := true
		for _, r := range c.Lab.Routers() {
			hops, err := r.KernelRoutes(prefix)
			if err != nil || len(hops) != want {
				ok = false
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not routed over %d next hops within %v", prefix, want, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitBFD waits until both routers' BFD sessions with node (for addr's
// family) are up.
func waitBFD(ctx context.Context, c *labcluster.Cluster, node string, addr netip.Addr, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		up := 0
		for _, r := range c.Lab.Routers() {
			peers, err := labcluster.BFDPeers(r)
			if err == nil && peers[c.NextHop(node, r.Name, addr).String()].Status == "up" {
				up++
			}
		}
		if up == len(c.Lab.Routers()) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("BFD with %s not up on both routers within %v", node, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func waitAddress(ctx context.Context, c *labcluster.Cluster, svc *corev1.Service) (netip.Addr, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		cur := &corev1.Service{}
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(svc), cur); err == nil {
			if a := labcluster.ServiceAddresses(cur); len(a) > 0 {
				return a[0], nil
			}
		}
		if time.Now().After(deadline) {
			return netip.Addr{}, fmt.Errorf("%s/%s got no address", svc.Namespace, svc.Name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkAddresses verifies that the routes the watcher saw inside pool are
// exactly the Services' addresses.
func checkAddresses(ctx context.Context, c *labcluster.Cluster, svcs []*corev1.Service, w *labcluster.RouteWatcher, pool netip.Prefix) error {
	seen := w.SeenIn(pool)
	for _, svc := range svcs {
		cur := &corev1.Service{}
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(svc), cur); err != nil {
			return err
		}
		addrs := labcluster.ServiceAddresses(cur)
		if len(addrs) != 1 {
			return fmt.Errorf("%s has addresses %v", svc.Name, addrs)
		}
		if _, ok := seen[labcluster.HostPrefix(addrs[0])]; !ok {
			return fmt.Errorf("%s holds %s, which never reached r1's kernel", svc.Name, addrs[0])
		}
	}
	return nil
}

// cleanup deletes the Services and waits until their routes are gone.
func cleanup(b *testing.B, c *labcluster.Cluster, svcs []*corev1.Service, pool netip.Prefix) {
	ctx := context.Background()
	start := time.Now()
	err := parallel(16, len(svcs), func(i int) error {
		if svcs[i] == nil {
			return nil
		}
		return c.DeleteService(ctx, svcs[i])
	})
	if err != nil {
		b.Error(err)
		return
	}
	deadline := time.Now().Add(5 * time.Minute)
	for _, r := range c.Lab.Routers() {
		for {
			n, err := labcluster.CountKernelRoutes(r, pool)
			if err == nil && n == 0 {
				break
			}
			if time.Now().After(deadline) {
				b.Errorf("%s still has %d routes in %s five minutes after the deletes (%v)", r.Name, n, pool, err)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if len(svcs) > 1 {
		fmt.Fprintf(os.Stderr, "deleted %d Services; routes gone from both routers after %v\n", len(svcs), round(time.Since(start)))
	}
}

// parallel runs fn(0..n-1) on workers goroutines and returns the first error.
func parallel(workers, n int, fn func(i int) error) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// percentiles returns p50, p95 and p99 (nearest rank).
func percentiles(d []time.Duration) [3]time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return [3]time.Duration{at(0.50), at(0.95), at(0.99)}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func round(d time.Duration) time.Duration {
	if d > 10*time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(100 * time.Microsecond)
}
