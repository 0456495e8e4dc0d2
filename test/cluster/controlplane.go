package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/bgplb/bgplb/test/lab"
)

// startControlPlane starts etcd and kube-apiserver in the root namespace
// (the API server on lab.HostMgmt4, reachable from every node), waits until
// it is ready, then starts kube-controller-manager and kube-scheduler.
func (c *Cluster) startControlPlane(ctx context.Context) error {
	cp, err := freePort()
	if err != nil {
		return err
	}
	pp, err := freePort()
	if err != nil {
		return err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", cp)
	peer := fmt.Sprintf("http://127.0.0.1:%d", pp)
	c.etcd, err = c.Lab.Start(lab.ProcSpec{Name: "etcd", Argv: []string{c.bin("etcd"),
		"--name", "default", "--data-dir", filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "default=" + peer, "--unsafe-no-fsync", "--log-level", "warn"}})
	if err != nil {
		return err
	}
	pk := c.pki.path
	svc := ServiceCIDR4.String() + "," + ServiceCIDR6.String()
	c.apiserverSpec = lab.ProcSpec{Name: "kube-apiserver", Argv: []string{c.bin("kube-apiserver"),
		"--etcd-servers", etcdURL,
		"--bind-address", lab.HostMgmt4.String(), "--advertise-address", lab.HostMgmt4.String(),
		"--secure-port", strconv.Itoa(APIServerPort),
		"--tls-cert-file", pk("apiserver.crt"), "--tls-private-key-file", pk("apiserver.key"),
		"--client-ca-file", pk("ca.crt"),
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", pk("sa.pub"), "--service-account-signing-key-file", pk("sa.key"),
		"--service-cluster-ip-range", svc,
		"--authorization-mode", "Node,RBAC",
		"--enable-admission-plugins", "NodeRestriction",
		"--allow-privileged=true",
		"--kubelet-client-certificate", pk("apiserver-kubelet-client.crt"),
		"--kubelet-client-key", pk("apiserver-kubelet-client.key"),
		"--kubelet-preferred-address-types", "InternalIP",
		"--profiling=false", "--v=1"}}
	if c.apiserver, err = c.Lab.Start(c.apiserverSpec); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 200, 400
	c.Config = cfg
	if c.Clientset, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	if err := c.waitAPIServer(ctx); err != nil {
		return err
	}
	kc := func(name string) string { return filepath.Join(c.Dir, name+".kubeconfig") }
	c.kcm, err = c.Lab.Start(lab.ProcSpec{Name: "kube-controller-manager", Argv: []string{c.bin("kube-controller-manager"),
		"--kubeconfig", kc("kube-controller-manager"),
		"--authentication-kubeconfig", kc("kube-controller-manager"),
		"--authorization-kubeconfig", kc("kube-controller-manager"),
		"--bind-address", "127.0.0.1", "--secure-port", "10257",
		"--service-account-private-key-file", pk("sa.key"), "--root-ca-file", pk("ca.crt"),
		"--cluster-signing-cert-file", pk("ca.crt"), "--cluster-signing-key-file", pk("ca.key"),
		"--use-service-account-credentials", "--leader-elect=false",
		"--service-cluster-ip-range", svc, "--v=1"}})
	if err != nil {
		return err
	}
	c.ks, err = c.Lab.Start(lab.ProcSpec{Name: "kube-scheduler", Argv: []string{c.bin("kube-scheduler"),
		"--kubeconfig", kc("kube-scheduler"),
		"--authentication-kubeconfig", kc("kube-scheduler"),
		"--authorization-kubeconfig", kc("kube-scheduler"),
		"--bind-address", "127.0.0.1", "--secure-port", "10259", "--leader-elect=false", "--v=1"}})
	return err
}

// StopAPIServer stops kube-apiserver (SIGTERM, SIGKILL after 10 s). etcd,
// the kube-controller-manager, the scheduler, the kubelets, kube-proxy and
// every pod keep running and find the API unreachable.
func (c *Cluster) StopAPIServer() error {
	c.mu.Lock()
	p := c.apiserver
	c.mu.Unlock()
	if p == nil {
		return fmt.Errorf("cluster: kube-apiserver was never started")
	}
	if err := p.Stop(10 * time.Second); err != nil {
		return fmt.Errorf("cluster: stop kube-apiserver: %w", err)
	}
	return nil
}

// StartAPIServer starts kube-apiserver again with the argv it first ran
// with (same address, certificates and etcd, so every client reconnects by
// itself) and waits until it reports ready.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	c.mu.Lock()
	if c.apiserver != nil && !c.apiserver.Exited() {
		c.mu.Unlock()
		return fmt.Errorf("cluster: kube-apiserver is running (pid %d)", c.apiserver.PID)
	}
	p, err := c.Lab.Start(c.apiserverSpec)
	if err == nil {
		c.apiserver = p
	}
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("cluster: restart kube-apiserver: %w", err)
	}
	return c.waitAPIServer(ctx)
}

// waitAPIServer waits (up to a minute) until kube-apiserver answers /readyz.
func (c *Cluster) waitAPIServer(ctx context.Context) error {
	c.mu.Lock()
	p := c.apiserver
	c.mu.Unlock()
	err := waitUntil(ctx, time.Minute, func() error {
		if p.Exited() {
			return errStop{fmt.Errorf("kube-apiserver exited; see %s", p.LogPath)}
		}
		b, err := c.Clientset.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("%w: %s", err, b)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cluster: kube-apiserver not ready: %w", err)
	}
	return nil
}
