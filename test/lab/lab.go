package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
)

// DefaultRunDir holds the lab lock and the registry of started processes.
const DefaultRunDir = "/run/bgplb-lab"

// Lab is one instance of the network-namespace topology. Only one lab runs
// on a machine at a time: Up waits for the lock in RunDir.
type Lab struct {
	opts     Options
	log      logr.Logger
	nodeASN  uint32
	runDir   string
	dir      string
	ownDir   bool // dir was created by the lab
	registry ProcRegistry

	routers []*Router
	nodes   []*Node
	client  *Client

	mu       sync.Mutex
	lockFile *os.File
	up       bool
	procs    map[string]*Proc
	order    []string
	servers  []*HTTPServer
	madeDirs []string // mount points of node FRR instances (nodefrr.go)
	downOnce sync.Once
	downErr  error
	hops     hopNames
}

// New validates opts and computes the topology; nothing is created until Up.
func New(opts Options) (*Lab, error) {
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.Nodes < 1 || opts.Nodes > MaxNodes {
		return nil, fmt.Errorf("lab: %d nodes, want 1..%d", opts.Nodes, MaxNodes)
	}
	l := &Lab{
		opts:    opts,
		log:     opts.Log,
		nodeASN: opts.NodeASN,
		runDir:  opts.RunDir,
		procs:   map[string]*Proc{},
	}
	if l.log.GetSink() == nil {
		l.log = logr.Discard()
	}
	if l.nodeASN == 0 {
		l.nodeASN = NodeASN
	}
	if l.runDir == "" {
		l.runDir = DefaultRunDir
	}
	l.registry = ProcRegistry{Dir: filepath.Join(l.runDir, "procs")}
	l.buildTopology(opts.Nodes)
	for _, r := range l.routers {
		cfg := r.DefaultRouterConfig()
		if opts.Router != nil {
			opts.Router(r.Name, &cfg)
		}
		if err := cfg.Validate(); err != nil {
			return nil, fmt.Errorf("lab: router %s: %w", r.Name, err)
		}
		r.frr = &frrRouter{cfg: cfg}
	}
	return l, nil
}

// Dir is the lab's directory (configs, pid files, logs); empty before Up.
func (l *Lab) Dir() string { return l.dir }

// LogDir is where every process the lab starts writes its output.
func (l *Lab) LogDir() string { return filepath.Join(l.dir, "logs") }

// Up takes the machine-wide lab lock (waiting while another lab runs),
// removes leftovers of a crashed run, builds the namespaces and links and
// starts the routers. On error everything created so far is removed.
func (l *Lab) Up(ctx context.Context) (err error) {
	start := time.Now()
	if err := l.lock(ctx); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = l.teardown()
			_ = os.Remove(filepath.Join(l.runDir, "current"))
			l.unlock()
		}
	}()
	if err := l.cleanupStale(ctx); err != nil {
		return fmt.Errorf("lab: remove leftovers: %w", err)
	}
	if err := l.makeDir(); err != nil {
		return err
	}
	l.mu.Lock()
	l.up = true
	l.mu.Unlock()
	if err := os.WriteFile(filepath.Join(l.runDir, "current"), []byte(l.dir+"\n"), 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := l.buildNetwork(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(l.routers))
	for i, r := range l.routers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.start(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	l.log.Info("lab up", "dir", l.dir, "nodes", len(l.nodes), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (l *Lab) makeDir() error {
	if l.opts.Dir != "" {
		l.dir = l.opts.Dir
		if err := os.MkdirAll(l.dir, 0o755); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
	} else {
		d, err := os.MkdirTemp("", "bgplb-lab-")
		if err != nil {
			return fmt.Errorf("lab: %w", err)
		}
		l.dir, l.ownDir = d, true
	}
	// The FRR daemons run as user frr and must traverse the lab dir.
	if err := os.Chmod(l.dir, 0o755); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	abs, err := filepath.Abs(l.dir)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	l.dir = abs
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("lab: dir %s: FRR runs as user frr and cannot enter %s (mode %v); pick a dir under /tmp", abs, d, fi.Mode().Perm())
		}
		if d == "/" {
			break
		}
	}
	if err := os.MkdirAll(l.LogDir(), 0o755); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}

// lock takes RunDir/lock, polling so ctx can end the wait.
func (l *Lab) lock(ctx context.Context) error {
	if err := os.MkdirAll(l.registry.Dir, 0o755); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	path := filepath.Join(l.runDir, "lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	logged := false
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return fmt.Errorf("lab: lock %s: %w", path, err)
		}
		if !logged {
			owner, _ := os.ReadFile(path)
			l.log.Info("waiting for another lab to finish", "lock", path, "owner", strings.TrimSpace(string(owner)))
			logged = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return fmt.Errorf("lab: another lab holds %s: %w", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	l.mu.Lock()
	l.lockFile = f
	l.mu.Unlock()
	return nil
}

func (l *Lab) unlock() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lockFile != nil {
		_ = l.lockFile.Truncate(0)
		l.lockFile.Close() // releases the flock
		l.lockFile = nil
	}
}

// CleanupStale removes what a crashed lab left behind: processes recorded
// in runDir ("" = DefaultRunDir), namespaces named bgplb-lab-*, and the
// management bridge and veths. It fails if a running lab holds the lock.
func CleanupStale(ctx context.Context, runDir string) error {
	l, err := New(Options{RunDir: runDir})
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(l.runDir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if os.IsNotExist(err) {
		// No run dir: nothing recorded, but stray namespaces may exist.
		return l.cleanupStale(ctx)
	}
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(f.Name())
		return fmt.Errorf("lab: a running lab (pid %s) holds %s: %w", strings.TrimSpace(string(owner)), f.Name(), err)
	}
	return l.cleanupStale(ctx)
}

// cleanupStale runs with the lock held.
func (l *Lab) cleanupStale(ctx context.Context) error {
	var errs []error
	// Processes first: a namespace with a process inside lives on unnamed.
	if err := l.registry.KillAll(); err != nil {
		errs = append(errs, err)
	}
	if b, err := os.ReadFile(filepath.Join(l.runDir, "current")); err == nil {
		prev := strings.TrimSpace(string(b))
		l.log.Info("removing leftovers of an earlier lab", "dir", prev)
		// Should the registry be gone, FRR's own pid files still name the daemons.
		if err := killFromPidFiles(prev); err != nil {
			errs = append(errs, err)
		}
	}
	nss, err := listNetns(Prefix)
	if err != nil {
		errs = append(errs, err)
	}
	links, err := rootLinks(mgmtVethPrefix)
	if err != nil {
		errs = append(errs, err)
	}
	if _, err := os.Stat("/sys/class/net/" + MgmtBridge); err == nil {
		links = append(links, MgmtBridge)
	}
	if len(nss) > 0 || len(links) > 0 {
		l.log.Info("removing stale namespaces and links", "netns", nss, "links", links)
	}
	if err := deleteNetwork(ctx, nss, links); err != nil {
		errs = append(errs, err)
	}
	_ = os.Remove(filepath.Join(l.runDir, "current"))
	return errors.Join(errs...)
}

// deleteNetwork deletes root links then namespaces, tolerating ones already gone.
func deleteNetwork(ctx context.Context, nss, links []string) error {
	var cmds []string
	for _, k := range links {
		cmds = append(cmds, "link del "+k)
	}
	for _, ns := range nss {
		cmds = append(cmds, "netns del "+ns)
	}
	if len(cmds) == 0 {
		return nil
	}
	// -force: keep going past entries that vanished meanwhile; then check.
	_, _ = run(ctx, strings.Join(cmds, "\n")+"\n", "ip", "-force", "-batch", "-")
	var errs []error
	for _, k := range links {
		if _, err := os.Stat("/sys/class/net/" + k); err == nil {
			errs = append(errs, fmt.Errorf("link %s still exists", k))
		}
	}
	for _, ns := range nss {
		if _, err := os.Stat(filepath.Join(netnsDir, ns)); err == nil {
			errs = append(errs, fmt.Errorf("netns %s still exists", ns))
		}
	}
	return errors.Join(errs...)
}

// Down stops every process the lab started, closes its servers, deletes its
// namespaces and links, and releases the lock. It is safe to call more than
// once and from a signal handler.
func (l *Lab) Down() error {
	l.downOnce.Do(func() {
		l.mu.Lock()
		wasUp := l.up
		l.mu.Unlock()
		if !wasUp {
			return
		}
		err := l.teardown()
		if err == nil {
			_ = os.Remove(filepath.Join(l.runDir, "current"))
			if l.ownDir && !l.opts.KeepDir {
				err = os.RemoveAll(l.dir)
			}
		}
		l.unlock()
		l.downErr = err
		l.log.Info("lab down", "err", err)
	})
	return l.downErr
}

func (l *Lab) teardown() error {
	var errs []error
	l.mu.Lock()
	servers := l.servers
	l.servers = nil
	l.up = false
	l.mu.Unlock()
	for _, s := range servers {
		_ = s.Close()
	}
	if err := l.stopAll(2 * time.Second); err != nil {
		errs = append(errs, err)
	}
	if err := l.registry.KillAll(); err != nil {
		errs = append(errs, err)
	}
	if err := l.removeMountPoints(); err != nil {
		errs = append(errs, err)
	}
	links := []string{MgmtBridge}
	for _, n := range l.nodes {
		links = append(links, mgmtVethPrefix+n.Name)
	}
	var present []string
	for _, k := range links {
		if _, err := os.Stat("/sys/class/net/" + k); err == nil {
			present = append(present, k)
		}
	}
	nss, _ := listNetns(Prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := deleteNetwork(ctx, nss, present); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// DownOnSignal tears the lab down when the process gets SIGINT or SIGTERM,
// then exits with 128+signal. The returned func uninstalls the handler.
func (l *Lab) DownOnSignal() (stop func()) {
	return OnSignal(l.Down)
}

// OnSignal runs teardown when the process gets SIGINT or SIGTERM, then exits
// with 128+signal, so a Ctrl-C leaves nothing behind. The returned func
// uninstalls the handler.
func OnSignal(teardown func() error) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	quit := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			fmt.Fprintf(os.Stderr, "\nlab: got %v, tearing down\n", sig)
			if err := teardown(); err != nil {
				fmt.Fprintf(os.Stderr, "lab: teardown: %v\n", err)
			}
			code := 1
			if s, ok := sig.(syscall.Signal); ok {
				code = 128 + int(s)
			}
			os.Exit(code)
		case <-quit:
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(ch)
			close(quit)
		})
	}
}

// buildNetwork creates namespaces, links, addresses and routes.
func (l *Lab) buildNetwork(ctx context.Context) error {
	nss := l.namespaces()
	var cmds []string
	for _, ns := range nss {
		cmds = append(cmds, "netns add "+ns)
	}
	if err := ipBatch(ctx, "", cmds); err != nil {
		return err
	}
	// Before any interface exists, so "default" applies to all of them.
	common := map[string]string{
		"net.ipv4.conf.all.rp_filter":          "0",
		"net.ipv4.conf.default.rp_filter":      "0",
		"net.ipv6.conf.all.accept_dad":         "0",
		"net.ipv6.conf.default.accept_dad":     "0",
		"net.ipv6.conf.all.accept_ra":          "0",
		"net.ipv6.conf.default.accept_ra":      "0",
		"net.ipv4.fib_multipath_hash_policy":   "1", // L4 hash: connections spread over ECMP paths
		"net.ipv6.fib_multipath_hash_policy":   "1",
		"net.ipv4.conf.all.send_redirects":     "0",
		"net.ipv4.conf.default.send_redirects": "0",
	}
	for _, r := range l.routers {
		kv := clone(common)
		kv["net.ipv4.ip_forward"] = "1"
		kv["net.ipv6.conf.all.forwarding"] = "1"
		kv["net.ipv6.conf.default.forwarding"] = "1"
		if err := sysctls(r.Netns, kv); err != nil {
			return err
		}
	}
	for _, n := range l.nodes {
		kv := clone(common)
		// Lets a process bind a Service address before it is assigned.
		kv["net.ipv4.ip_nonlocal_bind"] = "1"
		kv["net.ipv6.ip_nonlocal_bind"] = "1"
		if err := sysctls(n.Netns, kv); err != nil {
			return err
		}
	}
	if err := sysctls(l.client.Netns, common); err != nil {
		return err
	}

	// Root namespace: management bridge, and all veth pairs (created with
	// both ends already in their namespaces).
	cmds = []string{
		"link add " + MgmtBridge + " type bridge mcast_snooping 0",
		fmt.Sprintf("addr add %s dev %s", netip.PrefixFrom(HostMgmt4, MgmtNet4.Bits()), MgmtBridge),
		fmt.Sprintf("addr add %s dev %s nodad", netip.PrefixFrom(HostMgmt6, MgmtNet6.Bits()), MgmtBridge),
		"link set " + MgmtBridge + " up",
	}
	for _, n := range l.nodes {
		v := mgmtVethPrefix + n.Name
		cmds = append(cmds,
			fmt.Sprintf("link add %s type veth peer name mgmt0 netns %s", v, n.Netns),
			fmt.Sprintf("link set %s master %s up", v, MgmtBridge))
		for _, r := range l.routers {
			k, _ := n.Link(r.Name)
			cmds = append(cmds, fmt.Sprintf("link add %s netns %s type veth peer name %s netns %s", n.Name, r.Netns, k.Ifname, n.Netns))
		}
	}
	for _, r := range l.routers {
		cmds = append(cmds, fmt.Sprintf("link add c netns %s type veth peer name %s netns %s", r.Netns, r.Name, l.client.Netns))
	}
	if err := ipBatch(ctx, "", cmds); err != nil {
		return err
	}

	// Routers: node LAN bridge, client LAN interface.
	for _, r := range l.routers {
		cmds := []string{
			"link set lo up",
			"link add lan type bridge mcast_snooping 0",
			fmt.Sprintf("addr add %s dev lan", netip.PrefixFrom(r.Addr4, r.LAN4.Bits())),
			fmt.Sprintf("addr add %s dev lan nodad", netip.PrefixFrom(r.Addr6, r.LAN6.Bits())),
			"link set lan up",
		}
		for _, n := range l.nodes {
			cmds = append(cmds, fmt.Sprintf("link set %s master lan up", n.Name))
		}
		cmds = append(cmds,
			fmt.Sprintf("addr add %s dev c", netip.PrefixFrom(r.ClientAddr4, ClientNet4.Bits())),
			fmt.Sprintf("addr add %s dev c nodad", netip.PrefixFrom(r.ClientAddr6, ClientNet6.Bits())),
			"link set c up")
		if err := ipBatch(ctx, r.Netns, cmds); err != nil {
			return err
		}
	}
	// Nodes: one interface per router LAN, mgmt0; the client LAN via every router.
	for _, n := range l.nodes {
		cmds := []string{
			"link set lo up",
			"link set mgmt0 up",
			fmt.Sprintf("addr add %s dev mgmt0", netip.PrefixFrom(n.Mgmt4, MgmtNet4.Bits())),
			fmt.Sprintf("addr add %s dev mgmt0 nodad", netip.PrefixFrom(n.Mgmt6, MgmtNet6.Bits())),
		}
		hops4, hops6 := "", ""
		for _, k := range n.Links {
			r := l.Router(k.Router)
			cmds = append(cmds,
				fmt.Sprintf("link set %s up", k.Ifname),
				fmt.Sprintf("addr add %s dev %s", netip.PrefixFrom(k.Addr4, r.LAN4.Bits()), k.Ifname),
				fmt.Sprintf("addr add %s dev %s nodad", netip.PrefixFrom(k.Addr6, r.LAN6.Bits()), k.Ifname))
			hops4 += fmt.Sprintf(" nexthop via %s dev %s", r.Addr4, k.Ifname)
			hops6 += fmt.Sprintf(" nexthop via %s dev %s", r.Addr6, k.Ifname)
		}
		cmds = append(cmds,
			fmt.Sprintf("route add %s%s", ClientNet4, hops4),
			fmt.Sprintf("route add %s%s", ClientNet6, hops6))
		if err := ipBatch(ctx, n.Netns, cmds); err != nil {
			return err
		}
	}
	// Client: a bridge joining both routers; default routes via both
	// (Service traffic is spread by ECMP), each node LAN via its router.
	c := l.client
	cmds = []string{
		"link set lo up",
		"link add lan type bridge mcast_snooping 0",
		fmt.Sprintf("addr add %s dev lan", netip.PrefixFrom(c.Addr4, ClientNet4.Bits())),
		fmt.Sprintf("addr add %s dev lan nodad", netip.PrefixFrom(c.Addr6, ClientNet6.Bits())),
		"link set lan up",
	}
	hops4, hops6 := "", ""
	for _, r := range l.routers {
		cmds = append(cmds, fmt.Sprintf("link set %s master lan up", r.Name))
		hops4 += fmt.Sprintf(" nexthop via %s dev lan", r.ClientAddr4)
		hops6 += fmt.Sprintf(" nexthop via %s dev lan", r.ClientAddr6)
	}
	cmds = append(cmds,
		"route add default"+hops4,
		"route add ::/0"+hops6)
	for _, r := range l.routers {
		cmds = append(cmds,
			fmt.Sprintf("route add %s via %s dev lan", r.LAN4, r.ClientAddr4),
			fmt.Sprintf("route add %s via %s dev lan", r.LAN6, r.ClientAddr6))
	}
	return ipBatch(ctx, c.Netns, cmds)
}

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+4)
	for k, v := range m {
		out[k] = v
	}
	return out
}
