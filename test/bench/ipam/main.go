// Command ipam benchmarks the IPAM controller against the API server's
// ceiling, on a real kube-apiserver and etcd (envtest).
//
// It first measures the ceiling: a plain client with the given QPS/burst and
// as many goroutines as there are creators writes, for each of N Services,
// what is written when the controller is at work (create the Service,
// create its IPAllocation, patch its status, and record the event the
// controller records, through the same kind of asynchronous events.k8s.io
// broadcaster). Then, on a fresh API server of the same build, it
// starts the real controller (the built binary as a child process, or
// in-process with -inprocess), creates N LoadBalancer Services from the same
// number of parallel clients, and waits until every one has its address. It
// prints one line:
//
//	services=N seconds=S rate=R/s duplicates=D ceiling=C/s ratio=R/C controller_cpu_ms_per_service=M controller_rss_mib=R
//
// (the controller's figures are -1 with -inprocess)
// and diagnostics on stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/ipam"
	"github.com/bgplb/bgplb/test/bench/benchutil"
	"github.com/bgplb/bgplb/test/envtest/framework"
	"github.com/bgplb/bgplb/test/lab"
)

type options struct {
	n, clients, workers int
	qps                 float64
	burst               int
	bin                 string
	inProcess           bool
	cpuProfile          string
	apiProfile          string
	ctrlProfile         string
	apiProfileAfter     time.Duration
	logFile             string
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 1000, "Services to create")
	flag.IntVar(&o.clients, "clients", 16, "parallel clients creating Services (and goroutines of the ceiling)")
	flag.IntVar(&o.workers, "workers", 16, "the controller's concurrent reconciles")
	flag.Float64Var(&o.qps, "qps", 3000, "client QPS of every client: creators, ceiling and controller")
	flag.IntVar(&o.burst, "burst", 6000, "client burst of every client")
	flag.StringVar(&o.bin, "bin", "bin/bgplb", "the bgplb binary to run as the controller")
	flag.BoolVar(&o.inProcess, "inprocess", false, "run the controller in this process instead of the binary")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process during the controller phase (useful with -inprocess)")
	flag.StringVar(&o.apiProfile, "apiserver-cpuprofile", "", "write 30s CPU profiles of kube-apiserver taken during each phase to this path + .ceiling and .controller")
	flag.StringVar(&o.ctrlProfile, "controller-cpuprofile", "", "write a 30s CPU profile of the controller binary taken during its phase to this path")
	flag.DurationVar(&o.apiProfileAfter, "apiserver-cpuprofile-after", 10*time.Second, "when to start the kube-apiserver and controller profiles, from the start of each phase")
	flag.StringVar(&o.logFile, "controller-log", filepath.Join(os.TempDir(), "bgplb-bench-ipam-controller.log"), "where the controller's log goes")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "bench-ipam: %v\n", err)
		os.Exit(1)
	}
}

// Address plan: the controller's pool and the ceiling's addresses are
// disjoint halves of 198.19.0.0/16 (the benchmarking range; the envtest
// API server takes its cluster IPs from 198.18.0.0/16). The phases run on
// separate API servers, so disjoint is not needed, only tidy.
var (
	poolRange    = netip.MustParsePrefix("198.19.0.0/17")
	ceilingRange = netip.MustParsePrefix("198.19.128.0/17")
)

func run(o options) error {
	if o.n > 1<<15 {
		return fmt.Errorf("-n %d: at most %d Services fit the benchmark pool %s", o.n, 1<<15, poolRange)
	}
	sigCtx, stopSignals := benchutil.Interruptible()
	defer stopSignals()
	ctx, cancel := context.WithCancel(sigCtx)
	defer cancel()
	ctrl.SetLogger(logr.Discard())
	// Each phase gets a fresh API server of the same build and flags: its
	// costs depend on what it has held (kube-apiserver 1.37's ClusterIP
	// allocator scans every IPAddress it has seen on each Service create, and
	// its maps keep their size after deletions), so sharing one would tilt
	// the comparison towards whichever phase runs first.
	env, cfg, c, procs, err := startAPIServer(o)
	if err != nil {
		return err
	}

	// Phase 1: the ceiling.
	if err := createNamespace(ctx, c, "bench-ceiling"); err != nil {
		_ = env.Stop()
		return err
	}
	// Both phases end when the same kind of watch has seen every Service
	// with an address, so the observation costs the API server the same.
	cw, err := watchAddresses(ctx, cfg, "bench-ceiling")
	if err != nil {
		_ = env.Stop()
		return err
	}
	// A profile still being taken when the phase ends is cut short, or the
	// API server would wait for it before stopping.
	profCtx, endProfile := context.WithCancel(ctx)
	defer endProfile()
	if o.apiProfile != "" {
		go apiServerProfile(profCtx, cfg, o.apiProfile+".ceiling", o.apiProfileAfter)
	}
	cpu0 := cpuTimes(procs)
	req0 := requestCounts(ctx, cfg)
	t0 := time.Now()
	err = ceiling(ctx, c, cfg, o)
	if err == nil {
		err = cw.waitAll(ctx, o.n, 10*time.Minute)
	}
	if err != nil {
		_ = env.Stop()
		return err
	}
	ceilSec := time.Since(t0).Seconds()
	cw.stop()
	logf("ceiling: %d Services x (create Service, create IPAllocation, patch status, record event) in %.2fs; CPU %s; requests %s",
		o.n, ceilSec, cpuDiff(cpu0, cpuTimes(procs), o.n), requestDiff(req0, requestCounts(ctx, cfg)))
	endProfile()
	if err := env.Stop(); err != nil {
		return fmt.Errorf("stopping the ceiling's API server: %w", err)
	}

	env, cfg, c, procs, err = startAPIServer(o)
	if err != nil {
		return err
	}
	defer func() { _ = env.Stop() }()

	// Phase 2: the controller.
	pool := &v1alpha1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: "bench"},
		Spec:       v1alpha1.IPPoolSpec{Addresses: []v1alpha1.AddressRange{v1alpha1.AddressRange(poolRange.String())}},
	}
	if err := c.Create(ctx, pool); err != nil {
		return fmt.Errorf("creating pool: %w", err)
	}
	if err := createNamespace(ctx, c, "bench"); err != nil {
		return err
	}
	stop, ctrlPID, ctrlPprof, err := startController(ctx, env, cfg, o)
	if err != nil {
		return err
	}
	defer stop()
	if ctrlPID > 0 {
		procs = append(procs, proc{"controller", ctrlPID})
	}
	// The controller is ready once it has written the pool's status.
	if err := benchutil.WaitFor(ctx, time.Minute, func() (bool, error) {
		p := &v1alpha1.IPPool{}
		err := c.Get(ctx, client.ObjectKey{Name: "bench"}, p)
		return err == nil && p.Status.ObservedGeneration == p.Generation, err
	}); err != nil {
		return fmt.Errorf("waiting for the controller to start: %w", err)
	}
	w, err := watchAddresses(ctx, cfg, "bench")
	if err != nil {
		return err
	}
	defer w.stop()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("creating CPU profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("starting CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if o.apiProfile != "" {
		go apiServerProfile(ctx, cfg, o.apiProfile+".controller", o.apiProfileAfter)
	}
	if o.ctrlProfile != "" && ctrlPprof != "" {
		go controllerProfile(ctx, ctrlPprof, o.ctrlProfile, o.apiProfileAfter)
	}
	cpu0 = cpuTimes(procs)
	req0 = requestCounts(ctx, cfg)
	t0 = time.Now()
	var createdAt atomic.Int64
	go func() {
		if err := benchutil.ForEach(o.n, o.clients, func(i int) error {
			return c.Create(ctx, benchutil.LoadBalancerService("bench", fmt.Sprintf("svc-%05d", i), v1alpha1.LoadBalancerClass))
		}); err != nil {
			logf("creating Services: %v", err)
			cancel()
		}
		createdAt.Store(int64(time.Since(t0)))
	}()
	if err := w.waitAll(ctx, o.n, 10*time.Minute); err != nil {
		return err
	}
	sec := time.Since(t0).Seconds()
	cpu1 := cpuTimes(procs)
	logf("controller: %d Services created in %.2fs, all addressed after %.2fs; CPU %s; requests %s",
		o.n, time.Duration(createdAt.Load()).Seconds(), sec, cpuDiff(cpu0, cpu1, o.n), requestDiff(req0, requestCounts(ctx, cfg)))
	if o.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	// The controller's own figures: CPU per Service over the burst (only
	// with the controller as a child process) and resident memory once
	// every Service has its address.
	ctrlCPU, ctrlRSS := -1.0, -1.0
	if ctrlPID > 0 {
		ctrlCPU = float64(cpu1["controller"]-cpu0["controller"]) * 10 / float64(o.n)
		if st, err := lab.ReadProcStat(ctrlPID); err == nil {
			ctrlRSS = float64(st.RSS) / (1 << 20)
		}
		logf("controller RSS %.0f MiB", ctrlRSS)
	}
	dups, err := duplicates(ctx, c, "bench")
	if err != nil {
		return err
	}
	rate, ceil := float64(o.n)/sec, float64(o.n)/ceilSec
	fmt.Printf("services=%d seconds=%.2f rate=%.1f/s duplicates=%d ceiling=%.1f/s ratio=%.2f controller_cpu_ms_per_service=%.2f controller_rss_mib=%.0f\n",
		o.n, sec, rate, dups, ceil, rate/ceil, ctrlCPU, ctrlRSS)
	return nil
}

// startAPIServer starts an envtest API server and a client for it with
// the benchmark's QPS and burst.
func startAPIServer(o options) (*framework.Env, *rest.Config, client.Client, []proc, error) {
	logf("starting envtest API server")
	env, err := framework.Start(framework.Options{})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = float32(o.qps), o.burst
	cfg.UserAgent = "bench-ipam"
	c, err := client.New(cfg, client.Options{Scheme: framework.Scheme})
	if err != nil {
		_ = env.Stop()
		return nil, nil, nil, nil, fmt.Errorf("creating client: %w", err)
	}
	return env, cfg, c, controlPlaneProcs(), nil
}

// ceiling writes, per Service, what is written when the controller is at
// work, from a plain client: create the Service (of a class the controller
// ignores), create its IPAllocation, patch its status and record an event
// the way the controller does.
func ceiling(ctx context.Context, c client.Client, cfg *rest.Config, o options) error {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return fmt.Errorf("creating the events client: %w", err)
	}
	eb, err := ipam.EventBroadcaster(cfg, hc)
	if err != nil {
		return err
	}
	if err := eb.StartRecordingToSinkWithContext(ctx); err != nil {
		return fmt.Errorf("starting the event broadcaster: %w", err)
	}
	defer eb.Shutdown()
	rec := eb.NewRecorder(framework.Scheme, "bench-ceiling")
	base := ceilingRange.Addr().As4()
	first := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	return benchutil.ForEach(o.n, o.clients, func(i int) error {
		svc := benchutil.LoadBalancerService("bench-ceiling", fmt.Sprintf("svc-%05d", i), "bench.example/ceiling")
		if err := c.Create(ctx, svc); err != nil {
			return fmt.Errorf("creating Service: %w", err)
		}
		v := first + uint32(i)
		addr := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		alloc := &v1alpha1.IPAllocation{
			ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.AllocationName(addr.String())},
			Spec: v1alpha1.IPAllocationSpec{Address: addr.String(), Pool: "bench-ceiling", Services: []v1alpha1.ServiceReference{
				{Namespace: svc.Namespace, Name: svc.Name, UID: svc.UID}}},
		}
		if err := c.Create(ctx, alloc); err != nil {
			return fmt.Errorf("creating IPAllocation: %w", err)
		}
		out := ipam.Outcome{Manage: true, Addrs: []ipam.Assigned{{Addr: addr, Pool: "bench-ceiling"}}}
		st := ipam.DesiredStatus(ipam.ServiceStatus{}, out, nil, svc.Generation, metav1.Now())
		st.Condition.Type = "bench.example/Ceiling"
		patch, err := ipam.StatusPatch(svc.ResourceVersion, st, false)
		if err != nil {
			return err
		}
		target := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: svc.Name}}
		if err := c.Status().Patch(ctx, target, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
			return fmt.Errorf("patching status: %w", err)
		}
		rec.Eventf(svc, nil, corev1.EventTypeNormal, st.Condition.Reason, "Allocate", "%s", st.Condition.Message)
		return nil
	})
}

func createNamespace(ctx context.Context, c client.Client, name string) error {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}

// startController runs the controller as `bgplb controller` (a child
// process) or in-process, with the benchmark's QPS, burst and workers. With
// -controller-cpuprofile the child serves pprof on the returned address.
func startController(ctx context.Context, env *framework.Env, cfg *rest.Config, o options) (stop func(), pid int, pprofAddr string, err error) {
	if o.inProcess {
		ctrl.SetLogger(zap.New(zap.WriteTo(mustCreate(o.logFile))))
		// A dialer of its own keeps client-go from sharing the creators'
		// cached transport: one HTTP/2 connection for both would serialize
		// them and measure the connection rather than the controller.
		cfg := rest.CopyConfig(cfg)
		cfg.Dial = (&net.Dialer{}).DialContext
		mgr, err := ctrl.NewManager(cfg, ctrl.Options{
			Scheme:                 framework.Scheme,
			Metrics:                metricsserver.Options{BindAddress: "0"},
			HealthProbeBindAddress: "0",
			Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
		})
		if err != nil {
			return nil, 0, "", fmt.Errorf("creating manager: %w", err)
		}
		if err := ipam.Setup(mgr, ipam.Options{DefaultClass: true, Workers: o.workers}); err != nil {
			return nil, 0, "", err
		}
		mctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := mgr.Start(mctx); err != nil {
				logf("controller: %v", err)
			}
		}()
		logf("controller running in-process; log in %s", o.logFile)
		return func() { cancel(); <-done }, 0, "", nil
	}
	args := []string{"controller",
		"--kube-api-qps", fmt.Sprint(o.qps), "--kube-api-burst", fmt.Sprint(o.burst),
		"--workers", fmt.Sprint(o.workers),
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--leader-elect=false"}
	if o.ctrlProfile != "" {
		if pprofAddr, err = benchutil.FreeLoopbackAddr(); err != nil {
			return nil, 0, "", err
		}
		args = append(args, "--pprof-bind-address", pprofAddr)
	}
	child, err := benchutil.StartChild(env.Config, o.bin, args, o.logFile)
	if err != nil {
		return nil, 0, "", err
	}
	logf("controller %s running as pid %d; log in %s", o.bin, child.PID, o.logFile)
	return func() { child.Stop(10 * time.Second) }, child.PID, pprofAddr, nil
}

func mustCreate(path string) *os.File {
	f, err := os.Create(path)
	if err != nil {
		logf("cannot create %s: %v; logging to stderr", path, err)
		return os.Stderr
	}
	return f
}

// addressWatcher counts the Services of a namespace that show an address.
type addressWatcher struct {
	w     watch.Interface
	mu    sync.Mutex
	addrs map[string]string
	ch    chan struct{}
}

func watchAddresses(ctx context.Context, cfg *rest.Config, ns string) (*addressWatcher, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating watch client: %w", err)
	}
	list, err := cs.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing Services: %w", err)
	}
	// A RetryWatcher resumes from the last event seen if the API server
	// closes the stream.
	w, err := watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(c context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return cs.CoreV1().Services(ns).Watch(c, o)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("watching Services: %w", err)
	}
	aw := &addressWatcher{w: w, addrs: map[string]string{}, ch: make(chan struct{}, 1)}
	go func() {
		for ev := range w.ResultChan() {
			s, ok := ev.Object.(*corev1.Service)
			if !ok {
				continue
			}
			aw.mu.Lock()
			if len(s.Status.LoadBalancer.Ingress) > 0 && ev.Type != watch.Deleted {
				aw.addrs[s.Name] = s.Status.LoadBalancer.Ingress[0].IP
			} else {
				delete(aw.addrs, s.Name)
			}
			aw.mu.Unlock()
			select {
			case aw.ch <- struct{}{}:
			default:
			}
		}
		close(aw.ch)
	}()
	return aw, nil
}

func (aw *addressWatcher) count() int {
	aw.mu.Lock()
	defer aw.mu.Unlock()
	return len(aw.addrs)
}

func (aw *addressWatcher) waitAll(ctx context.Context, n int, timeout time.Duration) error {
	deadline := time.After(timeout)
	progress := time.NewTicker(5 * time.Second)
	defer progress.Stop()
	for aw.count() < n {
		select {
		case _, ok := <-aw.ch:
			if !ok {
				return errors.New("the Service watch ended")
			}
		case <-progress.C:
			logf("%d of %d Services have an address", aw.count(), n)
		case <-deadline:
			return fmt.Errorf("only %d of %d Services got an address within %s", aw.count(), n, timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (aw *addressWatcher) stop() { aw.w.Stop() }

// duplicates counts Services beyond the first showing the same address.
func duplicates(ctx context.Context, c client.Client, ns string) (int, error) {
	var list corev1.ServiceList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return 0, fmt.Errorf("listing Services: %w", err)
	}
	seen := map[string]int{}
	dups := 0
	for _, s := range list.Items {
		for _, in := range s.Status.LoadBalancer.Ingress {
			if seen[in.IP]++; seen[in.IP] > 1 {
				dups++
			}
		}
	}
	return dups, nil
}

// --- CPU accounting of the processes involved, for the diagnostics ---

type proc struct {
	name string
	pid  int
}

// controlPlaneProcs finds the envtest etcd and kube-apiserver children.
func controlPlaneProcs() []proc {
	out := []proc{{"bench", os.Getpid()}}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := lab.ReadProcStat(pid)
		if err == nil && st.PPID == os.Getpid() && (st.Comm == "kube-apiserver" || st.Comm == "etcd") {
			out = append(out, proc{st.Comm, pid})
		}
	}
	return out
}

func cpuTimes(ps []proc) map[string]int64 {
	out := map[string]int64{}
	for _, p := range ps {
		if st, err := lab.ReadProcStat(p.pid); err == nil {
			out[p.name] = st.Ticks
		}
	}
	return out
}

// cpuDiff renders CPU milliseconds per Service for each process (100 ticks/s).
func cpuDiff(a, b map[string]int64, n int) string {
	var parts []string
	for _, name := range []string{"kube-apiserver", "etcd", "controller", "bench"} {
		if _, ok := b[name]; !ok {
			continue
		}
		ms := float64(b[name]-a[name]) * 10 / float64(n)
		parts = append(parts, fmt.Sprintf("%s %.2fms", name, ms))
	}
	return strings.Join(parts, ", ") + " per Service"
}

// requestCounts reads the API server's request counters by verb, resource,
// subresource and code.
func requestCounts(ctx context.Context, cfg *rest.Config) map[string]float64 {
	rc, err := rest.UnversionedRESTClientFor(withCodecs(cfg))
	if err != nil {
		return nil
	}
	body, err := rc.Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		lbl := map[string]string{}
		for _, kv := range strings.Split(line[len("apiserver_request_total{"):strings.LastIndexByte(line, '}')], ",") {
			k, val, _ := strings.Cut(kv, "=")
			lbl[k] = strings.Trim(val, `"`)
		}
		if lbl["verb"] == "WATCH" || lbl["resource"] == "" {
			continue
		}
		key := lbl["verb"] + " " + lbl["resource"]
		if lbl["subresource"] != "" {
			key += "/" + lbl["subresource"]
		}
		key += " " + lbl["code"]
		out[key] += v
	}
	return out
}

// apiServerProfile saves a 30s CPU profile of kube-apiserver, taken after a delay.
func apiServerProfile(ctx context.Context, cfg *rest.Config, path string, after time.Duration) {
	saveProfile(ctx, "kube-apiserver", path, after, func() ([]byte, error) {
		rc, err := rest.UnversionedRESTClientFor(withCodecs(cfg))
		if err != nil {
			return nil, err
		}
		return rc.Get().AbsPath("/debug/pprof/profile").Param("seconds", "30").Timeout(time.Minute).DoRaw(ctx)
	})
}

// controllerProfile saves a 30s CPU profile of the controller binary,
// taken after a delay, from its pprof endpoint.
func controllerProfile(ctx context.Context, addr, path string, after time.Duration) {
	saveProfile(ctx, "controller", path, after, func() ([]byte, error) {
		body, err := benchutil.Get(ctx, addr, "/debug/pprof/profile?seconds=30")
		if err != nil {
			return nil, err
		}
		defer body.Close()
		return io.ReadAll(body)
	})
}

// saveProfile waits, fetches a profile and writes it to path. Failures are
// only logged: a profile is a diagnostic and must not fail the benchmark.
func saveProfile(ctx context.Context, what, path string, after time.Duration, fetch func() ([]byte, error)) {
	select {
	case <-time.After(after):
	case <-ctx.Done():
		return
	}
	body, err := fetch()
	if err == nil {
		err = os.WriteFile(path, body, 0o644)
	}
	if err != nil {
		logf("%s profile: %v", what, err)
		return
	}
	logf("wrote %s CPU profile to %s", what, path)
}

func withCodecs(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.NegotiatedSerializer = clientgoscheme.Codecs.WithoutConversion()
	return c
}

func requestDiff(a, b map[string]float64) string {
	var parts []string
	for k, v := range b {
		if d := v - a[k]; d >= 1 {
			parts = append(parts, fmt.Sprintf("%s=%.0f", k, d))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench-ipam: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}
