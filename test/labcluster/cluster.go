package labcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/test/envtest/framework"
	"github.com/bgplb/bgplb/test/lab"
)

// Cluster-wide settings of the lab cluster.
const (
	// FieldOwner is the field manager of everything the lab writes.
	FieldOwner = "bgplb-lab"
	// ManagedBy is the endpointslice.kubernetes.io/managed-by value of the
	// EndpointSlices the lab writes in place of the EndpointSlice controller.
	ManagedBy = "lab.bgplb.io"
	// DefaultDrainTime is the speakers' --drain-time in the lab: long enough
	// to watch the GRACEFUL_SHUTDOWN phase, short enough for a test.
	DefaultDrainTime = 5 * time.Second
)

// Identities the processes use: the ServiceAccounts of config/rbac, so the
// shipped RBAC rules are what the lab runs with.
const (
	controllerUser = "system:serviceaccount:" + v1alpha1.InstallNamespace + ":bgplb-controller"
	speakerUser    = "system:serviceaccount:" + v1alpha1.InstallNamespace + ":bgplb-speaker"
)

// Options shape a lab cluster. The zero value is a usable default.
type Options struct {
	// Nodes is the number of node namespaces and Node objects (default 3).
	Nodes int
	// Bin is the bgplb binary the controller and speakers run. Default
	// $BGPLB_BIN; when that is unset too, the binary is built into the lab dir.
	Bin string
	// Dir, KeepDir, RunDir and Router are passed to the lab (see lab.Options).
	Dir     string
	KeepDir bool
	RunDir  string
	Router  func(name string, cfg *lab.RouterConfig)
	// ControllerArgs and SpeakerArgs are added to the processes' flags.
	ControllerArgs []string
	SpeakerArgs    []string
	// Samples is a directory of YAML applied once the API server is up
	// (default config/samples/lab); "none" applies nothing.
	Samples string
	// Backend is the speakers' --bgp-backend: BackendGoBGP (default) or
	// BackendFRRK8s, which also runs FRR and frr-k8s in every node.
	Backend string
	// AdminIdentity runs the controller and speakers as cluster admins
	// instead of their ServiceAccounts with the RBAC of config/rbac.
	AdminIdentity bool
	// Log receives the lab library's progress; Progress gets one human
	// line per step (both default to discard).
	Log      logr.Logger
	Progress io.Writer
}

// Cluster is a running lab with the API server, the controller and the
// speakers.
type Cluster struct {
	// Lab is the network-namespace topology.
	Lab *lab.Lab
	// Env is the envtest API server (serving on lab.HostMgmt4).
	Env *framework.Env
	// Client and Config act as cluster admin.
	Client client.Client
	Config *rest.Config
	// Kubeconfig is an admin kubeconfig file for kubectl; KubectlPath is the
	// kubectl built with the API server.
	Kubeconfig  string
	KubectlPath string
	// Bin is the bgplb binary the processes run.
	Bin string
	// RBAC reports whether the processes run as their ServiceAccounts with
	// the rules of config/rbac (false: as cluster admin).
	RBAC bool

	opts         Options
	assets       string
	controllerKC string
	speakerKC    string
	envtestPIDs  lab.ProcRegistry

	mu         sync.Mutex
	controller *lab.Proc
	speakers   map[string]*lab.Proc
	frrK8s     map[string]*frrK8sNode
	left       []string // what Stop found still there (see Leftovers)
	stopOnce   sync.Once
	stopErr    error
}

// Start brings up the lab, the API server on the management bridge, the
// Node objects, the samples, the controller and one speaker per node. On
// error everything started so far is stopped again.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.Samples == "" {
		opts.Samples = filepath.Join(framework.RepoRoot(), "config", "samples", "lab")
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	if opts.RunDir == "" {
		opts.RunDir = lab.DefaultRunDir
	}
	switch opts.Backend {
	case "":
		opts.Backend = BackendGoBGP
	case BackendGoBGP, BackendFRRK8s:
	default:
		return nil, fmt.Errorf("labcluster: backend %q: want %s or %s", opts.Backend, BackendGoBGP, BackendFRRK8s)
	}
	if err := lab.Check(); err != nil {
		return nil, err
	}
	assets, err := framework.Assets()
	if err != nil {
		return nil, err
	}
	l, err := lab.New(lab.Options{
		Nodes: opts.Nodes, Dir: opts.Dir, KeepDir: opts.KeepDir, RunDir: opts.RunDir,
		Router: opts.Router, Log: opts.Log,
	})
	if err != nil {
		return nil, err
	}
	c = &Cluster{
		Lab: l, opts: opts, assets: assets,
		KubectlPath: filepath.Join(assets, "kubectl"),
		speakers:    map[string]*lab.Proc{},
		frrK8s:      map[string]*frrK8sNode{},
		envtestPIDs: lab.ProcRegistry{Dir: filepath.Join(opts.RunDir, "envtest")},
	}
	c.progress("starting the lab: 2 FRR routers, %d nodes, 1 client (network namespaces %s*)", opts.Nodes, lab.Prefix)
	if err := l.Up(ctx); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = c.Stop()
			c = nil
		}
	}()
	// The lab lock is ours now: an API server a crashed run left is no
	// longer anyone's.
	if err := c.envtestPIDs.KillAll(); err != nil {
		return c, fmt.Errorf("labcluster: stale API server: %w", err)
	}
	if c.Bin, err = resolveBin(ctx, opts.Bin, l.Dir()); err != nil {
		return c, err
	}
	c.progress("starting kube-apiserver and etcd (envtest) on %s", lab.HostMgmt4)
	if err := c.startAPIServer(); err != nil {
		return c, err
	}
	if err := c.writeKubeconfigs(); err != nil {
		return c, err
	}
	if err := c.createBaseObjects(ctx); err != nil {
		return c, err
	}
	if opts.Samples != "none" {
		c.progress("applying %s", opts.Samples)
		if _, err := c.ApplyDir(ctx, opts.Samples); err != nil {
			return c, err
		}
	}
	if opts.Backend == BackendFRRK8s {
		if err := c.startFRRK8s(ctx); err != nil {
			return c, err
		}
	}
	c.progress("starting bgplb controller on the host and bgplb speaker in each node namespace (%s)", c.Bin)
	if err := c.StartController(); err != nil {
		return c, err
	}
	for _, n := range l.Nodes() {
		if err := c.StartSpeaker(n.Name); err != nil {
			return c, err
		}
	}
	return c, nil
}

func (c *Cluster) progress(format string, args ...any) {
	fmt.Fprintf(c.opts.Progress, "lab: "+format+"\n", args...)
}

// resolveBin returns the bgplb binary to run, building it when none is given.
func resolveBin(ctx context.Context, bin, dir string) (string, error) {
	if bin == "" {
		bin = os.Getenv("BGPLB_BIN")
	}
	if bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(abs); err != nil {
			return "", fmt.Errorf("labcluster: bgplb binary: %w (run make build)", err)
		}
		return abs, nil
	}
	out := filepath.Join(dir, "bgplb")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/bgplb")
	cmd.Dir = framework.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("labcluster: building bgplb (set BGPLB_BIN to skip): %w: %s", err, b)
	}
	return out, nil
}

// startAPIServer runs envtest on the management bridge, where the node
// namespaces reach it, and records its processes for crash cleanup.
func (c *Cluster) startAPIServer() error {
	port, err := freePort(lab.HostMgmt4.String())
	if err != nil {
		return err
	}
	// framework's API server is dual-stack, so dual-stack Services work.
	fo := framework.Options{Address: lab.HostMgmt4.String(), Port: port, LogDir: c.Lab.LogDir()}
	if c.opts.Backend == BackendFRRK8s {
		if fo.CRDs, err = framework.FRRK8sCRDs(); err != nil {
			return err
		}
	}
	env, err := framework.Start(fo)
	// envtest's etcd and kube-apiserver are our direct children. Record
	// them even if Start failed: envtest leaves them running when a later
	// step (installing the CRDs) fails, and Stop kills what is recorded.
	var errs []error
	for _, name := range []string{"etcd", "kube-apiserver"} {
		errs = append(errs, recordEnvtestChildren(c.envtestPIDs, filepath.Join(c.assets, name)))
	}
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	c.Env = env
	c.Config = env.Config
	c.Client = env.Client
	return errors.Join(errs...)
}

func freePort(addr string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, fmt.Errorf("labcluster: pick a port on %s: %w", addr, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// writeKubeconfigs writes the admin, controller and speaker kubeconfigs
// into the lab dir. They embed client keys: owner-only.
func (c *Cluster) writeKubeconfigs() error {
	c.RBAC = !c.opts.AdminIdentity && rbacGenerated()
	write := func(file, name string, groups []string) (string, error) {
		u, err := c.Env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
		if err != nil {
			return "", fmt.Errorf("labcluster: user %s: %w", name, err)
		}
		b, err := u.KubeConfig()
		if err != nil {
			return "", fmt.Errorf("labcluster: kubeconfig of %s: %w", name, err)
		}
		p := filepath.Join(c.Lab.Dir(), file)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return "", fmt.Errorf("labcluster: %w", err)
		}
		return p, nil
	}
	var err error
	if c.Kubeconfig, err = write("kubeconfig", "lab-admin", []string{"system:masters"}); err != nil {
		return err
	}
	if !c.RBAC {
		c.controllerKC, c.speakerKC = c.Kubeconfig, c.Kubeconfig
		return nil
	}
	sa := []string{"system:serviceaccounts", "system:serviceaccounts:" + v1alpha1.InstallNamespace}
	if c.controllerKC, err = write("controller.kubeconfig", controllerUser, sa); err != nil {
		return err
	}
	c.speakerKC, err = write("speaker.kubeconfig", speakerUser, sa)
	return err
}

// rbacGenerated reports whether config/rbac holds the generated roles.
func rbacGenerated() bool {
	for _, p := range []string{"controller/role.yaml", "speaker/role.yaml"} {
		if _, err := os.Stat(filepath.Join(framework.RepoRoot(), "config", "rbac", p)); err != nil {
			return false
		}
	}
	return true
}

// createBaseObjects writes what a real cluster would already have: the
// install namespace, the RBAC of config/rbac, and a Node per lab node.
func (c *Cluster) createBaseObjects(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.InstallNamespace}}
	if err := c.Client.Create(ctx, ns); err != nil {
		return fmt.Errorf("labcluster: %w", err)
	}
	if c.RBAC {
		if _, err := c.ApplyDir(ctx, filepath.Join(framework.RepoRoot(), "config", "rbac")); err != nil {
			return err
		}
	} else if !c.opts.AdminIdentity {
		c.progress("config/rbac/{controller,speaker}/role.yaml not generated yet: controller and speakers run as cluster admin")
	}
	for _, n := range c.Lab.Nodes() {
		if err := c.createNode(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// createNode writes the Node object of a lab node with its addresses, as
// a kubelet would: InternalIPs on both router LANs, both families.
func (c *Cluster) createNode(ctx context.Context, n *lab.Node) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: n.Name,
		Labels: map[string]string{
			corev1.LabelHostname: n.Name,
			corev1.LabelOSStable: "linux",
		},
	}}
	if err := c.Client.Create(ctx, node); err != nil {
		return fmt.Errorf("labcluster: node %s: %w", n.Name, err)
	}
	var addrs []corev1.NodeAddress
	for _, k := range n.Links {
		addrs = append(addrs, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: k.Addr4.String()})
	}
	for _, k := range n.Links {
		addrs = append(addrs, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: k.Addr6.String()})
	}
	addrs = append(addrs, corev1.NodeAddress{Type: corev1.NodeHostName, Address: n.Name})
	now := metav1.Now()
	node.Status = corev1.NodeStatus{
		Addresses: addrs,
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "LabNode",
			Message: "network namespace " + n.Netns + " (no kubelet runs in the lab)", LastHeartbeatTime: now, LastTransitionTime: now,
		}},
	}
	if err := c.Client.Status().Update(ctx, node); err != nil {
		return fmt.Errorf("labcluster: node %s status: %w", n.Name, err)
	}
	return nil
}

// StartController starts "bgplb controller" on the host (root namespace),
// leader-elected as it is deployed.
func (c *Cluster) StartController() error {
	argv := append([]string{c.Bin, "controller", "--kubeconfig", c.controllerKC,
		"--leader-elect", "--metrics-bind-address=0", "--health-probe-bind-address=0"}, c.opts.ControllerArgs...)
	p, err := c.Lab.Start(lab.ProcSpec{Name: "controller", Argv: argv})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.controller = p
	c.mu.Unlock()
	return nil
}

// Controller returns the controller process.
func (c *Cluster) Controller() *lab.Proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.controller
}

// SpeakerArgv is the command line of a node's speaker.
func (c *Cluster) SpeakerArgv(node string) []string {
	return append([]string{c.Bin, "speaker", "--node-name", node, "--kubeconfig", c.speakerKC,
		"--metrics-bind-address=0", "--health-probe-bind-address=0",
		"--drain-time", c.DrainTime().String(), "--bgp-backend", c.opts.Backend}, c.opts.SpeakerArgs...)
}

// StartSpeaker starts "bgplb speaker" inside the node's namespace, as its
// DaemonSet pod would run with host networking.
func (c *Cluster) StartSpeaker(node string) error {
	n := c.Lab.Node(node)
	if n == nil {
		return fmt.Errorf("labcluster: no node %q", node)
	}
	p, err := n.StartWith(lab.ProcSpec{Name: "speaker", Argv: c.SpeakerArgv(node)})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.speakers[node] = p
	c.mu.Unlock()
	return nil
}

// Speaker returns the node's running speaker process (nil if none).
func (c *Cluster) Speaker(node string) *lab.Proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.speakers[node]
}

// StopSpeaker sends sig to the node's speaker (SIGTERM: a pod being
// deleted; SIGKILL: a crash) and waits up to wait for it to exit, then
// kills it.
func (c *Cluster) StopSpeaker(node string, sig syscall.Signal, wait time.Duration) error {
	p := c.Speaker(node)
	if p == nil {
		return fmt.Errorf("labcluster: no speaker on %s", node)
	}
	if err := p.Signal(sig); err != nil {
		return err
	}
	select {
	case <-p.Done():
		return nil
	case <-time.After(wait):
	}
	if err := p.Stop(time.Second); err != nil {
		return err
	}
	return fmt.Errorf("labcluster: speaker on %s did not exit within %v of %v", node, wait, sig)
}

// RestartSpeaker stops the node's speaker with sig and starts a new one.
func (c *Cluster) RestartSpeaker(node string, sig syscall.Signal) error {
	stopErr := c.StopSpeaker(node, sig, 20*time.Second)
	return errors.Join(stopErr, c.StartSpeaker(node))
}

// Stop stops the speakers and the controller (SIGTERM), the API server, and
// tears the lab down. Safe to call more than once.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		var errs []error
		c.mu.Lock()
		procs := []*lab.Proc{c.controller}
		for _, p := range c.speakers {
			procs = append(procs, p)
		}
		c.mu.Unlock()
		// frr-k8s's processes hold watches on the API server, which then
		// does not stop within envtest's wait; FRR goes with the lab.
		procs = append(procs, c.frrK8sClients()...)
		var wg sync.WaitGroup
		for _, p := range procs {
			if p == nil {
				continue
			}
			wg.Add(1)
			go func() { defer wg.Done(); _ = p.Stop(5 * time.Second) }()
		}
		wg.Wait()
		if c.Env != nil {
			if err := c.Env.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("labcluster: stop API server: %w", err))
			}
		}
		if err := c.envtestPIDs.KillAll(); err != nil {
			errs = append(errs, err)
		}
		if err := c.Lab.Down(); err != nil {
			errs = append(errs, err)
		}
		left := c.findLeftovers()
		c.mu.Lock()
		c.left = left
		c.mu.Unlock()
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}

// StopOnSignal stops the cluster when the process gets SIGINT or SIGTERM,
// then exits with 128+signal. The returned func uninstalls the handler.
func (c *Cluster) StopOnSignal() (uninstall func()) {
	return lab.OnSignal(c.Stop)
}

// Kubectl runs the lab's kubectl with the admin kubeconfig.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.KubectlPath, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %v: %w: %s", args, err, out)
	}
	return string(out), nil
}

// Dump writes what a failed spec should show: the lab's routers, routes and
// process logs (controller and speakers included), then the bgplb objects
// and Services as the API server has them.
func (c *Cluster) Dump(w io.Writer, tail int) {
	c.Lab.Dump(w, tail)
	if c.Env == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, args := range [][]string{
		{"get", "nodes", "--show-labels"},
		{"get", "ippools,ipallocations,bgppeers,bgpadvertisements,bgpnodestatuses", "-o", "wide"},
		{"get", "services,endpointslices", "-A", "-o", "wide"},
		{"get", "bgpnodestatuses", "-o", "yaml"},
		{"get", "events", "-A", "--sort-by=.lastTimestamp"},
	} {
		out, err := c.Kubectl(ctx, args...)
		fmt.Fprintf(w, "----- kubectl %v\n%s", args, out)
		if err != nil {
			fmt.Fprintf(w, "(%v)\n", err)
		}
	}
}
