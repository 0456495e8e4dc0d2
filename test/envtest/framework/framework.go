// Package framework starts a real kube-apiserver and etcd (envtest) with
// bgplb's CRDs installed, for the Ginkgo suites under test/envtest and for
// benchmarks and the lab.
package framework

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"

	eventsv1 "k8s.io/api/events/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/bgplb/bgplb/api/v1alpha1"
	frrv1beta1 "github.com/metallb/frr-k8s/api/v1beta1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

// Scheme knows the built-in kinds and bgplb's.
var Scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	utilruntime.Must(frrv1beta1.AddToScheme(s)) // for suites with frr-k8s's CRDs (FRRK8sCRDs)
	return s
}()

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// Assets returns the directory holding kube-apiserver, etcd and kubectl:
// $KUBEBUILDER_ASSETS when set, else whatever hack/envtest-assets.sh prints
// (it builds them from source the first time).
func Assets() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	cmd := exec.Command(filepath.Join(RepoRoot(), "hack", "envtest-assets.sh"))
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building envtest binaries with hack/envtest-assets.sh: %w", err)
	}
	return strings.TrimSpace(out.String()), nil
}

// Options tune the API server.
type Options struct {
	// Address and Port, when set, make the API server serve on that address
	// (e.g. a lab address reachable from network namespaces) instead of
	// loopback.
	Address string
	Port    int
	// ExtraFlags are added to kube-apiserver's command line.
	ExtraFlags map[string]string
	// LogDir, when set, receives kube-apiserver.log and etcd.log, so a
	// failed run can show them with the other processes' logs.
	LogDir string
	// CRDs are installed beside bgplb's own (e.g. frr-k8s's: FRRK8sCRDs).
	CRDs []*apiextensionsv1.CustomResourceDefinition
}

// Env is a running API server with bgplb's CRDs.
type Env struct {
	*envtest.Environment
	Config *rest.Config
	Client client.Client
	logs   []*os.File
}

// Stop stops kube-apiserver and etcd and closes their log files.
func (e *Env) Stop() error {
	err := e.Environment.Stop()
	for _, f := range e.logs {
		_ = f.Close()
	}
	return err
}

// Start runs etcd and kube-apiserver and installs the CRDs.
func Start(opts Options) (*Env, error) {
	assets, err := Assets()
	if err != nil {
		return nil, err
	}
	te := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		CRDs:                  opts.CRDs,
		ErrorIfCRDPathMissing: true,
		Scheme:                Scheme,
	}
	var logs []*os.File
	if opts.LogDir != "" {
		open := func(name string) (*os.File, error) {
			f, err := os.OpenFile(filepath.Join(opts.LogDir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return nil, fmt.Errorf("framework: opening %s: %w", name, err)
			}
			logs = append(logs, f)
			return f, nil
		}
		apiLog, err := open("kube-apiserver.log")
		if err != nil {
			return nil, err
		}
		etcdLog, err := open("etcd.log")
		if err != nil {
			apiLog.Close()
			return nil, err
		}
		te.ControlPlane.APIServer = &envtest.APIServer{Out: apiLog, Err: apiLog}
		te.ControlPlane.Etcd = &envtest.Etcd{Out: etcdLog, Err: etcdLog}
	}
	closeLogs := func() {
		for _, f := range logs {
			_ = f.Close()
		}
	}
	api := te.ControlPlane.GetAPIServer()
	args := api.Configure()
	// Dual-stack, and wide enough for benchmarks with many thousands of
	// Services. Cluster IPs carry no traffic here; 198.18.0.0/15 is the
	// benchmarking range of docs/architecture.md#test-addresses.
	args.Set("service-cluster-ip-range", "198.18.0.0/16,2001:db8:96::/108")
	args.Set("service-node-port-range", "30000-32767")
	for k, v := range opts.ExtraFlags {
		args.Set(k, v)
	}
	if opts.Address != "" {
		if opts.Port == 0 {
			closeLogs()
			return nil, fmt.Errorf("framework: Address %s needs a Port too (envtest falls back to loopback otherwise)", opts.Address)
		}
		api.SecureServing.Address = opts.Address
		api.SecureServing.Port = fmt.Sprint(opts.Port)
	}
	cfg, err := te.Start()
	if err != nil {
		// Start leaves etcd and kube-apiserver running when a later step
		// (installing the CRDs) fails; stop them so nothing outlives the test.
		_ = te.Stop()
		closeLogs()
		return nil, fmt.Errorf("starting envtest API server (assets %s): %w", assets, err)
	}
	cfg.QPS = 1000
	cfg.Burst = 2000
	c, err := client.New(cfg, client.Options{Scheme: Scheme})
	if err != nil {
		_ = te.Stop()
		closeLogs()
		return nil, fmt.Errorf("creating client: %w", err)
	}
	return &Env{Environment: te, Config: cfg, Client: c, logs: logs}, nil
}

// Binary returns the bgplb binary the suites run as a process:
// $BGPLB_BIN when set (make sets it), else one built from this checkout into
// dir.
func Binary(dir string) (string, error) {
	if b := os.Getenv("BGPLB_BIN"); b != "" {
		return b, nil
	}
	out := filepath.Join(dir, "bgplb")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/bgplb")
	cmd.Dir = RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/bgplb: %w: %s", err, b)
	}
	return out, nil
}

// AllocationsOf lists the addresses whose IPAllocation records the Service
// ns/name: what the controller holds for it, whatever its status says.
func AllocationsOf(ctx context.Context, c client.Reader, ns, name string) ([]string, error) {
	var list v1alpha1.IPAllocationList
	if err := c.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("listing IPAllocations: %w", err)
	}
	out := []string{}
	for _, a := range list.Items {
		for _, s := range a.Spec.Services {
			if s.Namespace == ns && s.Name == name {
				out = append(out, a.Spec.Address)
			}
		}
	}
	return out, nil
}

// Update reads the object named key into obj, applies change and writes it
// back, again from a fresh read when the write conflicts with another
// writer (the controllers under test write the same objects).
func Update[T client.Object](ctx context.Context, c client.Client, key client.ObjectKey, obj T, change func(T)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, key, obj); err != nil {
			return err
		}
		change(obj)
		return c.Update(ctx, obj)
	})
}

// EventsAbout lists the events (events.k8s.io/v1) in namespace ns ("" for
// every namespace) about the object with that kind ("" for any) and name.
func EventsAbout(ctx context.Context, c client.Reader, ns, kind, name string) ([]eventsv1.Event, error) {
	var list eventsv1.EventList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing events: %w", err)
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Name == name && (kind == "" || e.Regarding.Kind == kind) {
			out = append(out, e)
		}
	}
	return out, nil
}
