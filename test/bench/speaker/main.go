// Command speaker benchmarks one node's speaker at scale, on a real
// kube-apiserver and etcd (envtest): how fast it announces a burst of
// Services, what it costs per change, and its footprint.
//
// It creates a Node, a BGPPeer for an in-process GoBGP router on loopback
// (bgp/bgptest; the session comes up and the router receives every route,
// as a top-of-rack router would), a pool and an advertisement, starts the
// built binary as `bgplb speaker` for that node, then creates N Services,
// each with a ready EndpointSlice and an IPAllocation (what the controller
// would write), from parallel clients. It waits until the node's
// BGPNodeStatus reports N announced prefixes, lets the speaker settle,
// reads its resident memory and Go heap, then flips Services' endpoints to
// not ready and back, one change at a time: each change is acted on when
// the router receives the withdrawal or the route (watched in this
// process, so the speaker does no work for the benchmark's observation).
// It reports the speaker's CPU per change (from /proc, over all the
// changes), the latency of change -> route at the router, and the mean
// reconcile time. One line on stdout:
//
//	services=N announced_after=S rss_mib=R heap_mib=H cpu_ms_per_change=C reconcile_ms=M acted_p50_ms=P acted_p99_ms=Q
//
// (acted: from the EndpointSlice update until the router has the change)
// and diagnostics on stderr. It prints figures and never fails on them.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp/bgptest"
	"github.com/bgplb/bgplb/test/bench/benchutil"
	"github.com/bgplb/bgplb/test/envtest/framework"
	"github.com/bgplb/bgplb/test/lab"
)

const (
	nodeName   = "bench-node"
	ns         = "bench"
	routerASN  = 65001
	speakerASN = 64512
)

// The router listens on its own loopback address; the speaker dials it from
// 127.0.0.1.
var (
	routerAddr  = netip.MustParseAddr("127.0.0.61")
	speakerAddr = netip.MustParseAddr("127.0.0.1")
)

// The pool: the benchmarking range (no traffic is sent).
var poolRange = netip.MustParsePrefix("198.19.0.0/17")

type options struct {
	n, clients, changes int
	bin                 string
	logFile             string
	heapProfile         string
	speakerArgs         string
	cpuProfile          string
	settle              time.Duration
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 1000, "Services to create")
	flag.IntVar(&o.clients, "clients", 16, "parallel clients creating the objects")
	flag.IntVar(&o.changes, "changes", 200, "endpoint changes (one at a time) to measure the CPU per change")
	flag.StringVar(&o.bin, "bin", "bin/bgplb", "the bgplb binary to run as the speaker")
	flag.StringVar(&o.logFile, "speaker-log", filepath.Join(os.TempDir(), "bgplb-bench-speaker.log"), "where the speaker's log goes")
	flag.StringVar(&o.heapProfile, "heapprofile", "", "write the speaker's heap profile, taken after the burst, to this file")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the speaker taken during the changes to this file")
	flag.DurationVar(&o.settle, "settle", 10*time.Second, "time the speaker gets after the burst before its memory is read")
	flag.StringVar(&o.speakerArgs, "speaker-args", "", "extra flags for the speaker, space-separated (e.g. --l2-heartbeat-port=17947: L2 mode on, as the manifests run it)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "bench-speaker: %v\n", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.n > 1<<15 {
		return fmt.Errorf("-n %d: at most %d Services fit the benchmark pool %s", o.n, 1<<15, poolRange)
	}
	sigCtx, stopSignals := benchutil.Interruptible()
	defer stopSignals()
	ctx, cancel := context.WithCancel(sigCtx)
	defer cancel()
	ctrl.SetLogger(logr.Discard())

	logf("starting envtest API server")
	env, err := framework.Start(framework.Options{})
	if err != nil {
		return err
	}
	defer func() { _ = env.Stop() }()
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 3000, 6000
	cfg.UserAgent = "bench-speaker"
	c, err := client.New(cfg, client.Options{Scheme: framework.Scheme})
	if err != nil {
		return fmt.Errorf("creating client: %w", err)
	}
	rtr, err := bgptest.Start(bgptest.Options{ASN: routerASN, Address: routerAddr})
	if err != nil {
		return fmt.Errorf("starting the router: %w", err)
	}
	defer rtr.Stop()
	if err := rtr.AddNeighbor(bgptest.Neighbor{Address: speakerAddr, ASN: speakerASN}); err != nil {
		return fmt.Errorf("configuring the router: %w", err)
	}
	if err := setup(ctx, c, rtr); err != nil {
		return err
	}
	sp, err := startSpeaker(env.Config, o)
	if err != nil {
		return err
	}
	defer sp.Stop(30 * time.Second)
	if err := benchutil.WaitFor(ctx, 2*time.Minute, func() (bool, error) {
		s, _ := rtr.Session(speakerAddr)
		return s.Established(), nil
	}); err != nil {
		return fmt.Errorf("waiting for the BGP session: %w", err)
	}

	// The burst: Services, their endpoints and their allocations.
	t0 := time.Now()
	svcs := make([]*corev1.Service, o.n)
	if err := benchutil.ForEach(o.n, o.clients, func(i int) error {
		svc, err := createService(ctx, c, i)
		svcs[i] = svc
		return err
	}); err != nil {
		return err
	}
	created := time.Since(t0)
	logf("%d Services with endpoints and allocations created in %.1fs", o.n, created.Seconds())
	if err := benchutil.WaitFor(ctx, 10*time.Minute, func() (bool, error) {
		var st v1alpha1.BGPNodeStatus
		err := c.Get(ctx, client.ObjectKey{Name: nodeName}, &st)
		return err == nil && int(st.Status.AnnouncedPrefixes) >= o.n, err
	}); err != nil {
		return fmt.Errorf("waiting for %d announced prefixes: %w", o.n, err)
	}
	announced := time.Since(t0)
	logf("all %d announced %.1fs after the first create (BGPNodeStatus is written at most once a second)", o.n, announced.Seconds())

	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(o.settle):
	}
	rss := float64(mustStat(sp.PID).RSS) / (1 << 20)
	heap, err := heapInUse(ctx, sp.pprof)
	if err != nil {
		return err
	}
	logf("after %v: RSS %.0f MiB, Go heap in use %.0f MiB", o.settle, rss, heap)
	if o.heapProfile != "" {
		if err := saveProfile(ctx, sp.pprof, "/debug/pprof/heap", o.heapProfile); err != nil {
			return err
		}
	}

	// Changes one at a time: each flips one Service's endpoint to not
	// ready (its route is withdrawn) or back (announced again), and waits
	// until the router has the withdrawal or the route.
	perChange, reconcileMs, recomputes := 0.0, 0.0, 0.0
	var lat []time.Duration
	if o.changes > 0 {
		var profDone chan error
		if o.cpuProfile != "" {
			profDone = make(chan error, 1)
			go func() {
				profDone <- saveProfile(ctx, sp.pprof, "/debug/pprof/profile?seconds=20", o.cpuProfile)
			}()
		}
		m0, err := scrape(ctx, sp.metrics)
		if err != nil {
			return err
		}
		cpu0 := mustStat(sp.PID).Ticks
		t1 := time.Now()
		for i := range o.changes {
			k := (i / 2) % len(svcs)
			ready := i%2 == 1
			seen := rtr.UpdateCount()
			start := time.Now()
			if err := setReady(ctx, c, svcs[k], ready); err != nil {
				return err
			}
			// Polled every 200 µs, in this process only.
			for !routerGot(rtr, &seen, netip.PrefixFrom(addrOf(k), 32), !ready) {
				if time.Since(start) > time.Minute {
					return fmt.Errorf("the router did not get change %d within a minute", i)
				}
				time.Sleep(200 * time.Microsecond)
			}
			lat = append(lat, time.Since(start))
		}
		ticks := mustStat(sp.PID).Ticks - cpu0
		m1, err := scrape(ctx, sp.metrics)
		if err != nil {
			return err
		}
		// Clock ticks are 1/100 s on Linux.
		perChange = float64(ticks) * 10 / float64(o.changes)
		if n := m1.reconciles - m0.reconciles; n > 0 {
			reconcileMs = (m1.reconcileSeconds - m0.reconcileSeconds) * 1000 / n
		}
		recomputes = m1.recomputes - m0.recomputes
		slices.Sort(lat)
		logf("%d changes in %.1fs: speaker CPU %.2f ms per change, %.0f reconciles of %.2f ms on average (%.0f of the whole node); change -> route at the router p50 %v p99 %v",
			o.changes, time.Since(t1).Seconds(), perChange, m1.reconciles-m0.reconciles, reconcileMs, recomputes,
			lat[len(lat)/2].Round(100*time.Microsecond), lat[len(lat)*99/100].Round(100*time.Microsecond))
		if profDone != nil {
			if err := <-profDone; err != nil {
				logf("CPU profile: %v", err)
			}
		}
	}
	var p50, p99 float64
	if len(lat) > 0 {
		p50 = float64(lat[len(lat)/2].Microseconds()) / 1000
		p99 = float64(lat[len(lat)*99/100].Microseconds()) / 1000
	}
	if recomputes > 0 {
		logf("%.0f runs during the changes recomputed the whole node", recomputes)
	}
	fmt.Printf("services=%d announced_after=%.1fs rss_mib=%.0f heap_mib=%.0f cpu_ms_per_change=%.2f reconcile_ms=%.2f acted_p50_ms=%.1f acted_p99_ms=%.1f\n",
		o.n, announced.Seconds(), rss, heap, perChange, reconcileMs, p50, p99)
	return nil
}

// routerGot reports whether the router received, after the first *seen
// updates, the route (withdraw false) or withdrawal of prefix; *seen moves
// past the updates looked at.
func routerGot(r *bgptest.Router, seen *int, prefix netip.Prefix, withdraw bool) bool {
	ups := r.UpdatesSince(*seen)
	*seen += len(ups)
	for _, u := range ups {
		if u.Prefix == prefix && u.Withdraw == withdraw {
			return true
		}
	}
	return false
}

// setup creates the namespace, the node, the peer, the pool and the
// advertisement.
func setup(ctx context.Context, c client.Client, rtr *bgptest.Router) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName, Labels: map[string]string{"kubernetes.io/hostname": nodeName}}}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.InstallNamespace}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		node,
		&v1alpha1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "router"}, Spec: v1alpha1.BGPPeerSpec{
			Address: rtr.Address().String(), Port: int32(rtr.Port()), ASN: routerASN, LocalASN: speakerASN,
			SourceAddress: speakerAddr.String(), ConnectRetryTime: &metav1.Duration{Duration: time.Second},
		}},
		&v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "bench"}, Spec: v1alpha1.IPPoolSpec{
			Addresses: []v1alpha1.AddressRange{v1alpha1.AddressRange(poolRange.String())}, AutoAssign: ptr.To(false),
		}},
		&v1alpha1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: "bench"}, Spec: v1alpha1.BGPAdvertisementSpec{
			IPPools: []string{"bench"}, Communities: []v1alpha1.Community{"65000:100"},
		}},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.1"}}
	if err := c.Status().Update(ctx, node); err != nil {
		return fmt.Errorf("setting the node's address: %w", err)
	}
	return nil
}

// createService creates Service i, its EndpointSlice (one ready endpoint
// on another node) and its IPAllocation.
func createService(ctx context.Context, c client.Client, i int) (*corev1.Service, error) {
	name := fmt.Sprintf("svc-%05d", i)
	svc := benchutil.LoadBalancerService(ns, name, v1alpha1.LoadBalancerClass)
	if err := c.Create(ctx, svc); err != nil {
		return nil, fmt.Errorf("creating Service %s: %w", name, err)
	}
	if err := c.Create(ctx, endpointSlice(svc, true)); err != nil {
		return nil, fmt.Errorf("creating EndpointSlice of %s: %w", name, err)
	}
	addr := addrOf(i)
	alloc := &v1alpha1.IPAllocation{
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.AllocationName(addr.String())},
		Spec: v1alpha1.IPAllocationSpec{Address: addr.String(), Pool: "bench",
			Services: []v1alpha1.ServiceReference{{Namespace: ns, Name: name, UID: svc.UID}}},
	}
	if err := c.Create(ctx, alloc); err != nil {
		return nil, fmt.Errorf("creating IPAllocation %s: %w", alloc.Name, err)
	}
	return svc, nil
}

// addrOf is Service i's address.
func addrOf(i int) netip.Addr {
	base := poolRange.Addr().As4()
	v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(i)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func endpointSlice(svc *corev1.Service, ready bool) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: svc.Name + "-1",
			Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{"198.19.0.1"},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)},
			NodeName:   ptr.To("other-node"),
		}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
}

func setReady(ctx context.Context, c client.Client, svc *corev1.Service, ready bool) error {
	want := endpointSlice(svc, ready)
	var cur discoveryv1.EndpointSlice
	if err := c.Get(ctx, client.ObjectKeyFromObject(want), &cur); err != nil {
		return fmt.Errorf("getting EndpointSlice %s: %w", want.Name, err)
	}
	cur.Endpoints = want.Endpoints
	if err := c.Update(ctx, &cur); err != nil {
		return fmt.Errorf("updating EndpointSlice %s: %w", want.Name, err)
	}
	return nil
}

type speakerProc struct {
	*benchutil.Child
	pprof   string
	metrics string
}

// startSpeaker runs `bgplb speaker` for the benchmark's node, serving pprof
// and plain-HTTP metrics on loopback.
func startSpeaker(cfg *rest.Config, o options) (*speakerProc, error) {
	pprofAddr, err := benchutil.FreeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	metricsAddr, err := benchutil.FreeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	child, err := benchutil.StartChild(cfg, o.bin, append([]string{"speaker", "--node-name", nodeName,
		"--metrics-bind-address", metricsAddr, "--metrics-secure=false",
		"--health-probe-bind-address", "0", "--pprof-bind-address", pprofAddr}, strings.Fields(o.speakerArgs)...), o.logFile)
	if err != nil {
		return nil, err
	}
	logf("speaker %s running as pid %d; log in %s", o.bin, child.PID, o.logFile)
	return &speakerProc{Child: child, pprof: pprofAddr, metrics: metricsAddr}, nil
}

func mustStat(pid int) lab.ProcStat {
	st, err := lab.ReadProcStat(pid)
	if err != nil {
		logf("reading /proc/%d/stat: %v", pid, err)
	}
	return st
}

// heapInUse reads the speaker's HeapInuse from its pprof heap endpoint.
func heapInUse(ctx context.Context, addr string) (float64, error) {
	body, err := benchutil.Get(ctx, addr, "/debug/pprof/heap?debug=1")
	if err != nil {
		return 0, err
	}
	defer body.Close()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapInuse = "); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return n / (1 << 20), err
		}
	}
	return 0, fmt.Errorf("no HeapInuse in the speaker's heap profile (%v)", sc.Err())
}

// counters are the speaker's metrics the benchmark follows.
type counters struct {
	reconciles, reconcileSeconds float64
	recomputes                   float64
}

// scrape reads the speaker's reconcile counters (once before and once after
// the changes: a scrape costs the speaker more than a change).
func scrape(ctx context.Context, addr string) (counters, error) {
	body, err := benchutil.Get(ctx, addr, "/metrics")
	if err != nil {
		return counters{}, err
	}
	defer body.Close()
	var m counters
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		var dst *float64
		switch name {
		case "bgplb_speaker_node_recomputes_total":
			dst = &m.recomputes
		case "bgplb_speaker_reconcile_duration_seconds_count":
			dst = &m.reconciles
		case "bgplb_speaker_reconcile_duration_seconds_sum":
			dst = &m.reconcileSeconds
		default:
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return counters{}, fmt.Errorf("metric %s: %w", name, err)
		}
		*dst = f
	}
	return m, sc.Err()
}

func saveProfile(ctx context.Context, addr, path, file string) error {
	body, err := benchutil.Get(ctx, addr, path)
	if err != nil {
		return err
	}
	defer body.Close()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, body); err != nil {
		_ = f.Close()
		return fmt.Errorf("saving %s: %w", path, err)
	}
	logf("wrote %s", file)
	return f.Close()
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench-speaker: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}
