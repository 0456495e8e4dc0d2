// Package benchutil holds what the benchmark commands under test/bench
// share: interruption, parallel loops, polling, the benchmarks' Service,
// bgplb child processes with their kubeconfigs, and loopback HTTP.
package benchutil

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
)

// Interruptible returns a context that Ctrl-C or SIGTERM cancels, so that a
// benchmark's deferred stops remove its API server, etcd and children
// instead of leaving them behind.
func Interruptible() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// LoadBalancerService is the benchmarks' Service: of the given class, one
// port, no node ports (more than ~2,700 would exhaust the node-port range).
func LoadBalancerService(ns, name, class string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			LoadBalancerClass:             ptr.To(class),
			AllocateLoadBalancerNodePorts: ptr.To(false),
			Selector:                      map[string]string{"app": name},
			Ports:                         []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
}

// Child is a bgplb binary running as a child process of the benchmark.
type Child struct {
	PID        int
	cmd        *exec.Cmd
	log        *os.File
	kubeconfig string
}

// StartChild runs bin with args followed by --kubeconfig for cfg (written
// to a temporary file), its output going to logFile.
func StartChild(cfg *rest.Config, bin string, args []string, logFile string) (*Child, error) {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	kc, err := os.CreateTemp("", "bgplb-bench-*.kubeconfig")
	if err != nil {
		return nil, fmt.Errorf("creating kubeconfig: %w", err)
	}
	_ = kc.Close()
	if err := WriteKubeconfig(cfg, kc.Name()); err != nil {
		_ = os.Remove(kc.Name())
		return nil, err
	}
	log, err := os.Create(logFile)
	if err != nil {
		_ = os.Remove(kc.Name())
		return nil, fmt.Errorf("creating the log of %s: %w", abs, err)
	}
	cmd := exec.Command(abs, append(args, "--kubeconfig", kc.Name())...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		_ = os.Remove(kc.Name())
		return nil, fmt.Errorf("starting %s: %w", abs, err)
	}
	return &Child{PID: cmd.Process.Pid, cmd: cmd, log: log, kubeconfig: kc.Name()}, nil
}

// Stop sends SIGTERM, kills the child if it has not exited within grace,
// and removes its kubeconfig.
func (c *Child) Stop(grace time.Duration) {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-done
	}
	_ = c.log.Close()
	_ = os.Remove(c.kubeconfig)
}

// Get fetches http://addr/path (a child's pprof or metrics endpoint on
// loopback). It asks for no gzip: these endpoints are polled, and
// compressing would count against the measured process's CPU.
func Get(ctx context.Context, addr, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return resp.Body, nil
}

// ForEach runs fn(0..n-1) on workers goroutines and returns the first
// error; a worker stops at its first error, the others go on.
func ForEach(n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// WaitFor polls cond every 50 ms until it holds, ctx ends or timeout
// passes.
func WaitFor(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("timed out after %s (last error: %v)", timeout, last)
}

// WriteKubeconfig writes a kubeconfig for cfg (an envtest admin config),
// for a bgplb binary started as a child process.
func WriteKubeconfig(cfg *rest.Config, path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "envtest"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	return nil
}

// FreeLoopbackAddr returns a 127.0.0.1 address with a port free right now.
func FreeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}
