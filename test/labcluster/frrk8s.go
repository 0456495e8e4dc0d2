package labcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/bgplb/bgplb/test/envtest/framework"
	"github.com/bgplb/bgplb/test/lab"
)

// The speakers' BGP backends (--bgp-backend), Options.Backend.
const (
	// BackendGoBGP: each speaker runs embedded GoBGP (the default).
	BackendGoBGP = "gobgp"
	// BackendFRRK8s: each node runs real FRR daemons and frr-k8s's own
	// controller, reloader and status exporter, which the speaker
	// configures through FRRConfigurations.
	BackendFRRK8s = "frr-k8s"
)

// FRRK8sDrainTime is --drain-time with the frr-k8s backend. The
// GRACEFUL_SHUTDOWN phase must outlast how long frr-k8s takes to bring a
// change to the routers: its 3 s debounce, frr-reload.py (2 to 3 s on the
// lab), and FRR's route-map delay timer (5 s) before bgpd re-sends paths
// under a changed outbound route-map. With 5 s the withdrawal reached FRR
// before the community did (docs/frr-k8s.md).
const FRRK8sDrainTime = 20 * time.Second

// DrainTime is the speakers' --drain-time: DefaultDrainTime, or
// FRRK8sDrainTime with the frr-k8s backend.
func (c *Cluster) DrainTime() time.Duration {
	if c.opts.Backend == BackendFRRK8s {
		return FRRK8sDrainTime
	}
	return DefaultDrainTime
}

// Backend is the speakers' BGP backend (BackendGoBGP or BackendFRRK8s).
func (c *Cluster) Backend() string { return c.opts.Backend }

// FRRK8sNamespace is where the lab runs frr-k8s (its default namespace).
const FRRK8sNamespace = "frr-k8s-system"

// FRRK8sPollInterval is the lab's --poll-interval of frr-k8s's status
// exporter: how often it re-reads FRR's sessions into BGPSessionStates.
// frr-k8s's own default is 2 minutes; the lab's specs watch sessions come
// and go, so it asks every 2 s.
const FRRK8sPollInterval = "2s"

// frrK8sNode is what runs for frr-k8s on one node besides the speaker.
type frrK8sNode struct {
	frr                          *lab.NodeFRR
	reloader, controller, status *lab.Proc
}

// frrK8sBins are frr-k8s's binaries built from the pinned module and its
// reloader script, unchanged, from the module's source.
type frrK8sBins struct {
	controller, status, reloader string
}

// buildFRRK8s builds frr-k8s's controller and status exporter from the
// pinned module (bgplb's go.mod lists both as tools) into dir, side by side.
func buildFRRK8s(dir string) (frrK8sBins, error) {
	var b frrK8sBins
	var wg sync.WaitGroup
	var errC, errS error
	wg.Add(2)
	go func() { defer wg.Done(); b.controller, errC = framework.FRRK8sController(dir) }()
	go func() {
		defer wg.Done()
		b.status = filepath.Join(dir, "frr-k8s-status")
		build := exec.Command("go", "build", "-o", b.status, framework.FRRK8sModule+"/frr-tools/status")
		build.Dir = framework.RepoRoot()
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			errS = fmt.Errorf("building frr-k8s status exporter: %w: %s", err, out)
		}
	}()
	wg.Wait()
	if err := errors.Join(errC, errS); err != nil {
		return b, fmt.Errorf("labcluster: %w", err)
	}
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", framework.FRRK8sModule)
	cmd.Dir = framework.RepoRoot()
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return b, fmt.Errorf("labcluster: locating %s: %w", framework.FRRK8sModule, err)
	}
	b.reloader = filepath.Join(strings.TrimSpace(out.String()), "frr-tools", "reloader", "frr-reloader.sh")
	if _, err := os.Stat(b.reloader); err != nil {
		return b, fmt.Errorf("labcluster: frr-k8s reloader: %w", err)
	}
	return b, nil
}

// startFRRK8s installs what frr-k8s needs in the API (namespace, the
// speaker's RBAC of config/components/frr-k8s) and starts, in every node
// namespace, FRR (zebra, bfdd, bgpd) and frr-k8s's controller, reloader and
// status exporter, as frr-k8s's DaemonSet pod runs them on the node.
func (c *Cluster) startFRRK8s(ctx context.Context) error {
	c.progress("building frr-k8s's controller and status exporter from the pinned module")
	bins, err := buildFRRK8s(c.Lab.Dir())
	if err != nil {
		return err
	}
	if err := c.EnsureNamespace(ctx, FRRK8sNamespace); err != nil {
		return err
	}
	rbac := filepath.Join(framework.RepoRoot(), "config", "components", "frr-k8s", "rbac.yaml")
	text, err := os.ReadFile(rbac)
	if err != nil {
		return fmt.Errorf("labcluster: %w", err)
	}
	if _, err := c.ApplyYAML(ctx, string(text)); err != nil {
		return fmt.Errorf("labcluster: %s: %w", rbac, err)
	}
	c.progress("starting FRR and frr-k8s (controller, reloader, status exporter) in each node namespace")
	var wg sync.WaitGroup
	errs := make([]error, len(c.Lab.Nodes()))
	started := make([]*frrK8sNode, len(c.Lab.Nodes()))
	for i, n := range c.Lab.Nodes() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started[i], errs[i] = c.startFRRK8sNode(ctx, n, bins)
		}()
	}
	wg.Wait()
	c.mu.Lock()
	for i, n := range c.Lab.Nodes() {
		if started[i] != nil {
			c.frrK8s[n.Name] = started[i]
		}
	}
	c.mu.Unlock()
	return errors.Join(errs...)
}

func (c *Cluster) startFRRK8sNode(ctx context.Context, n *lab.Node, bins frrK8sBins) (*frrK8sNode, error) {
	// frr-k8s's identity: an admin of the lab's API server (its own RBAC
	// is frr-k8s's business, not what the lab proves).
	u, err := c.Env.AddUser(envtest.User{Name: "frr-k8s-" + n.Name, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("labcluster: frr-k8s user: %w", err)
	}
	kc, err := u.KubeConfig()
	if err != nil {
		return nil, fmt.Errorf("labcluster: frr-k8s kubeconfig: %w", err)
	}
	kubeconfig := filepath.Join(c.Lab.Dir(), "frr-k8s-"+n.Name+".kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		return nil, fmt.Errorf("labcluster: %w", err)
	}
	// The status exporter owns its BGPSessionStates through frr-k8s's pod
	// (no kubelet runs it: the object is only an owner).
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: FRRK8sNamespace, Name: "frr-k8s-" + n.Name},
		Spec: corev1.PodSpec{NodeName: n.Name, HostNetwork: true,
			Containers: []corev1.Container{{Name: "frr", Image: "lab.invalid/frr-k8s:in-node-namespace"}}},
	}
	if err := c.Client.Create(ctx, pod); err != nil {
		return nil, fmt.Errorf("labcluster: frr-k8s pod object of %s: %w", n.Name, err)
	}
	fk := &frrK8sNode{}
	if fk.frr, err = n.StartFRR(ctx); err != nil {
		return nil, err
	}
	// Unchanged frr-k8s reloader: on SIGHUP it runs frr-reload.py --test
	// and --reload on the frr.conf the controller rendered, and writes
	// .status, last-error and running-config for the controller to read.
	// SIGHUP back to its default first: under nohup (or anything else
	// that ignores it) the lab's processes inherit it ignored, and a shell
	// cannot trap a signal ignored on entry, so no reload would ever run.
	reloaderArgv := []string{"env", "--default-signal=HUP", "bash", bins.reloader}
	if fk.reloader, err = fk.frr.Start(lab.ProcSpec{Name: "frr-reloader", Argv: reloaderArgv}, true); err != nil {
		return nil, err
	}
	if err := waitFile(ctx, filepath.Join(fk.frr.ReloaderDir(), "reloader.pid")); err != nil {
		return nil, fmt.Errorf("labcluster: frr-k8s reloader of %s: %w (log %s)", n.Name, err, fk.reloader.LogPath)
	}
	env := []string{"KUBECONFIG=" + kubeconfig}
	argv := []string{bins.controller, "--node-name", n.Name, "--namespace", FRRK8sNamespace, "--pod-name", pod.Name,
		"--metrics-bind-address", "0"}
	if os.Getenv("BGPLB_LAB_FRR_DEBUG") != "" {
		// frr-k8s then also turns on FRR's BGP, BFD and zebra debugs (in
		// <node>-frr/etc/frr.log).
		argv = append(argv, "--log-level", "debug")
	}
	if fk.controller, err = fk.frr.Start(lab.ProcSpec{Name: "frr-k8s", Env: env, Argv: argv}, false); err != nil {
		return nil, err
	}
	if fk.status, err = fk.frr.Start(lab.ProcSpec{Name: "frr-k8s-status", Env: env, Argv: []string{bins.status,
		"--node-name", n.Name, "--namespace", FRRK8sNamespace, "--pod-name", pod.Name,
		"--poll-interval", FRRK8sPollInterval}}, false); err != nil {
		return nil, err
	}
	return fk, nil
}

// NodeFRR returns the node's FRR instance (nil with the GoBGP backend).
func (c *Cluster) NodeFRR(node string) *lab.NodeFRR {
	c.mu.Lock()
	defer c.mu.Unlock()
	if fk := c.frrK8s[node]; fk != nil {
		return fk.frr
	}
	return nil
}

// BGPProcs returns the processes that speak BGP and BFD for the node: its
// speaker with GoBGP, its bgpd and bfdd with frr-k8s (the speaker only
// writes configuration there). Freezing them is the node's BGP failing.
func (c *Cluster) BGPProcs(node string) []*lab.Proc {
	if f := c.NodeFRR(node); f != nil {
		return []*lab.Proc{f.Daemon("bfdd"), f.Daemon("bgpd")}
	}
	return []*lab.Proc{c.Speaker(node)}
}

// frrK8sProcs lists every frr-k8s process and FRR daemon of the nodes.
func (c *Cluster) frrK8sProcs() []*lab.Proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*lab.Proc
	for _, fk := range c.frrK8s {
		out = append(out, fk.reloader, fk.controller, fk.status)
		out = append(out, fk.frr.Daemons()...)
	}
	return out
}

// frrK8sClients lists the frr-k8s processes that talk to the API server.
func (c *Cluster) frrK8sClients() []*lab.Proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*lab.Proc
	for _, fk := range c.frrK8s {
		out = append(out, fk.controller, fk.status)
	}
	return out
}

// waitFile waits until path exists.
func waitFile(ctx context.Context, path string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		_, err := os.Stat(path)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
