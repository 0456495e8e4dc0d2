package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/bgplb/bgplb/test/envtest/framework"
	"github.com/bgplb/bgplb/test/lab"
)

// Images the cluster expects in Options.Images (built by `make cluster-images`).
const (
	// PauseImage is every pod's sandbox container (containerd's sandbox_image).
	PauseImage = "localhost/bgplb/pause:1"
	// BackendImage answers HTTP with its pod and node name (test/cluster/images/backend).
	BackendImage = "localhost/bgplb/backend:1"
	// BgplbImage is bgplb's own image as the test overlay names it.
	BgplbImage = "ghcr.io/bgplb/bgplb:e2e"
)

// APIServerPort is the API server's port on lab.HostMgmt4.
const APIServerPort = 6443

// Options shape a cluster. The zero value is a usable default.
type Options struct {
	// Nodes is the number of nodes (default 3).
	Nodes int
	// Assets holds kube-apiserver, etcd, kube-controller-manager,
	// kube-scheduler, kubelet, kube-proxy and kubectl. Default
	// $BGPLB_CLUSTER_ASSETS, else what hack/cluster-assets.sh prints (it
	// builds them from source the first time).
	Assets string
	// Images are OCI image tarballs imported into every node's containerd;
	// default bin/cluster/{bgplb,pause,backend}-image.tar of the repository.
	Images []string
	// Dir holds configs, state and logs (default a new dir under /tmp);
	// KeepDir keeps it after Stop. RunDir and Router go to the lab.
	Dir     string
	KeepDir bool
	RunDir  string
	Router  func(name string, cfg *lab.RouterConfig)
	// Log receives the lab library's progress; Progress one line per step.
	Log      logr.Logger
	Progress io.Writer
}

// Node is one Kubernetes node: a lab node namespace running containerd,
// kubelet and kube-proxy.
type Node struct {
	Name  string
	Index int
	Lab   *lab.Node
	// Dir holds the node's configs and state (containerd root, kubelet root dir, pod logs).
	Dir                string
	Mgmt4, Mgmt6       netip.Addr
	PodCIDR4, PodCIDR6 netip.Prefix

	containerd, kubelet, proxy *lab.Proc
	// How the kubelet and kube-proxy were started (RejoinNode reuses them).
	kubeletSpec, proxySpec lab.ProcSpec
}

// ContainerdSock is the node's containerd socket (for ctr -a).
func (n *Node) ContainerdSock() string { return filepath.Join(n.Dir, "containerd.sock") }

// Cluster is a running real-node cluster on the lab's network.
type Cluster struct {
	Lab *lab.Lab
	// Server is the API server's URL; Kubeconfig an admin kubeconfig;
	// KubectlPath the kubectl built with the cluster.
	Server      string
	Kubeconfig  string
	KubectlPath string
	Assets      string
	Dir         string
	Config      *rest.Config
	Clientset   kubernetes.Interface
	Nodes       []*Node

	opts Options
	pki  *pki
	st   *state

	mu                       sync.Mutex
	etcd, apiserver, kcm, ks *lab.Proc
	// apiserverSpec is how kube-apiserver was started (StartAPIServer reuses it).
	apiserverSpec lab.ProcSpec
	stopOnce      sync.Once
	stopErr       error
}

// Start brings up the lab, the control plane and the nodes, and waits for
// every node to be Ready. On error everything started so far is removed.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	t0 := time.Now()
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	if opts.RunDir == "" {
		opts.RunDir = lab.DefaultRunDir
	}
	if len(opts.Images) == 0 {
		bin := filepath.Join(framework.RepoRoot(), "bin", "cluster")
		opts.Images = []string{filepath.Join(bin, "bgplb-image.tar"), filepath.Join(bin, "pause-image.tar"), filepath.Join(bin, "backend-image.tar")}
	}
	if err := Check(); err != nil {
		return nil, err
	}
	closeInheritedOnExec()
	for _, img := range opts.Images {
		if _, err := os.Stat(img); err != nil {
			return nil, fmt.Errorf("cluster: image %s: %w (make cluster-images builds them)", img, err)
		}
	}
	assets, err := Assets(opts.Assets)
	if err != nil {
		return nil, err
	}
	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "bgplb-cluster-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	l, err := lab.New(lab.Options{Nodes: opts.Nodes, Dir: dir, KeepDir: true, RunDir: opts.RunDir, Router: opts.Router, Log: opts.Log})
	if err != nil {
		return nil, err
	}
	c = &Cluster{
		Lab: l, opts: opts, Assets: assets, Dir: dir,
		Server:      "https://" + net.JoinHostPort(lab.HostMgmt4.String(), strconv.Itoa(APIServerPort)),
		Kubeconfig:  filepath.Join(dir, "admin.kubeconfig"),
		KubectlPath: filepath.Join(assets, "kubectl"),
	}
	c.progress("starting the lab network: 2 FRR routers, %d node namespaces, 1 client (%s*)", opts.Nodes, lab.Prefix)
	if err := l.Up(ctx); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.progress("start failed (%v); tearing down (logs in %s)", err, l.LogDir())
			c.opts.KeepDir = true
			_ = c.Stop()
			c = nil
		}
	}()
	// The lab lock is ours: what a crashed cluster left is no one's now.
	if old, err := readState(opts.RunDir); err != nil {
		return c, err
	} else if old != nil {
		c.progress("removing leftovers of an earlier cluster in %s", old.Dir)
		if err := cleanupState(old, old.Dir != dir); err != nil {
			return c, fmt.Errorf("cluster: leftovers: %w", err)
		}
	}
	for i, ln := range l.Nodes() {
		p4, p6 := NodePodCIDRs(i + 1)
		c.Nodes = append(c.Nodes, &Node{
			Name: ln.Name, Index: i + 1, Lab: ln, Dir: filepath.Join(dir, ln.Name),
			Mgmt4: ln.Mgmt4, Mgmt6: ln.Mgmt6, PodCIDR4: p4, PodCIDR6: p6,
		})
	}
	c.st = &state{Dir: dir, HostPaths: missingHostPaths()}
	for _, n := range c.Nodes {
		c.st.Nodes = append(c.st.Nodes, n.Name)
	}
	if err := writeState(opts.RunDir, c.st); err != nil {
		return c, err
	}
	if err := c.writePKI(); err != nil {
		return c, fmt.Errorf("cluster: pki: %w", err)
	}
	if err := c.setupNetwork(ctx); err != nil {
		return c, fmt.Errorf("cluster: pod network: %w", err)
	}
	c.progress("starting etcd and kube-apiserver on %s", c.Server)
	if err := c.startControlPlane(ctx); err != nil {
		return c, err
	}
	c.progress("control plane up after %s; starting containerd, kubelet and kube-proxy on %d nodes", since(t0), len(c.Nodes))
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.startNode(ctx, n)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	if err := c.waitNodesReady(ctx, 2*time.Minute); err != nil {
		return c, err
	}
	c.progress("%d nodes Ready %s after start", len(c.Nodes), since(t0))
	return c, nil
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }

func (c *Cluster) progress(format string, args ...any) {
	fmt.Fprintf(c.opts.Progress, "cluster: "+format+"\n", args...)
}

// Check lists what the cluster needs beyond the lab and this machine lacks.
func Check() error {
	if err := lab.Check(); err != nil {
		return err
	}
	var missing []string
	for _, bin := range []string{"containerd", "ctr", "runc", "nsenter", "iptables", "ip6tables"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	for _, p := range []string{"bridge", "host-local", "loopback", "portmap"} {
		if _, err := os.Stat(filepath.Join("/usr/lib/cni", p)); err != nil {
			missing = append(missing, "/usr/lib/cni/"+p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("cluster prerequisites missing: %s (run hack/lab-deps.sh --cluster as root)", strings.Join(missing, ", "))
	}
	return nil
}

// Assets returns dir when set, else $BGPLB_CLUSTER_ASSETS, else what
// hack/cluster-assets.sh prints (building the binaries the first time).
func Assets(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv("BGPLB_CLUSTER_ASSETS")
	}
	if dir != "" {
		return dir, nil
	}
	cmd := exec.Command(filepath.Join(framework.RepoRoot(), "hack", "cluster-assets.sh"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("hack/cluster-assets.sh: %w", err)
	}
	return strings.TrimSpace(out.String()), nil
}

func (c *Cluster) bin(name string) string { return filepath.Join(c.Assets, name) }

// errStop ends waitUntil at once.
type errStop struct{ error }

// waitUntil polls check every 250 ms until it returns nil, an errStop, or time runs out.
func waitUntil(ctx context.Context, timeout time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := check()
		if err == nil {
			return nil
		}
		var stop errStop
		if errors.As(err, &stop) {
			return stop.error
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Kubectl runs the cluster's kubectl as admin and returns its combined output.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.KubectlPath, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Stop removes everything: pods through the API first (so CNI releases
// their addresses and namespaces), then kube-proxy, kubelets, containers,
// containerd, the control plane, mounts, cgroups, the lab's namespaces,
// the host paths the cluster created and its dir (unless KeepDir). It is
// safe to call more than once and from a signal handler.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() { c.stopErr = c.stop() })
	return c.stopErr
}

func (c *Cluster) stop() error {
	t0 := time.Now()
	var errs []error
	stopProc := func(p *lab.Proc, grace time.Duration) {
		if p != nil {
			if err := p.Stop(grace); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// No controller recreates what we delete; no scheduler places it.
	stopProc(c.kcm, 5*time.Second)
	stopProc(c.ks, 5*time.Second)
	if c.Clientset != nil && c.apiserver != nil && !c.apiserver.Exited() && c.kubeletsUp() {
		c.deletePods(45 * time.Second)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var nerrs []error
			for _, p := range []*lab.Proc{n.proxy, n.kubelet} {
				if p != nil {
					if err := p.Stop(10 * time.Second); err != nil {
						nerrs = append(nerrs, err)
					}
				}
			}
			killContainers(c.Dir+"/"+n.Name, []string{n.Name})
			if n.containerd != nil {
				if err := n.containerd.Stop(10 * time.Second); err != nil {
					nerrs = append(nerrs, err)
				}
			}
			mu.Lock()
			errs = append(errs, nerrs...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	stopProc(c.apiserver, 10*time.Second)
	stopProc(c.etcd, 10*time.Second)
	if c.st != nil {
		if err := cleanupState(c.st, false); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.Lab.Down(); err != nil {
		errs = append(errs, err)
	}
	if c.st != nil {
		if !c.opts.KeepDir && c.opts.Dir == "" {
			if m := mountsUnder(c.Dir); len(m) > 0 {
				errs = append(errs, fmt.Errorf("not removing %s: still mounted: %v", c.Dir, m))
			} else if err := os.RemoveAll(c.Dir); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) == 0 {
			_ = os.Remove(statePath(c.opts.RunDir))
		}
	}
	err := errors.Join(errs...)
	c.progress("stopped in %s (err: %v)", since(t0), err)
	return err
}

func (c *Cluster) kubeletsUp() bool {
	for _, n := range c.Nodes {
		if n.kubelet != nil && !n.kubelet.Exited() {
			return true
		}
	}
	return false
}

// deletePods deletes every pod and waits until the kubelets have removed them.
func (c *Cluster) deletePods(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cs := c.Clientset.CoreV1()
	nss, err := cs.Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	grace := int64(2)
	for _, ns := range nss.Items {
		_ = cs.Pods(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &grace}, metav1.ListOptions{})
	}
	_ = waitUntil(ctx, timeout, func() error {
		pods, err := cs.Pods("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(pods.Items) > 0 {
			return fmt.Errorf("%d pods left", len(pods.Items))
		}
		return nil
	})
}

// StopOnSignal stops the cluster on SIGINT/SIGTERM, then exits.
func (c *Cluster) StopOnSignal() (stop func()) { return lab.OnSignal(c.Stop) }

// closeInheritedOnExec marks every file descriptor this process inherited
// (beyond stdin, stdout, stderr) close-on-exec, so the daemons the cluster
// starts do not hold them. Run under `flock LOCK cmd`, the lock's fd would
// otherwise outlive a crashed run in every orphaned daemon, and the next
// run (which would remove them) waits for the lock forever.
func closeInheritedOnExec() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}
