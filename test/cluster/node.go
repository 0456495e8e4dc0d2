package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/test/lab"
)

// setupNetwork routes every node's pod ranges: from the other nodes and
// from the host (the API server answers pods) over the management bridge,
// and the Service ranges from the nodes.
func (c *Cluster) setupNetwork(ctx context.Context) error {
	var host []string
	for _, n := range c.Nodes {
		host = append(host,
			fmt.Sprintf("route replace %s via %s dev %s", n.PodCIDR4, n.Mgmt4, lab.MgmtBridge),
			fmt.Sprintf("route replace %s via %s dev %s", n.PodCIDR6, n.Mgmt6, lab.MgmtBridge))
		// Service cluster IPs need a route before kube-proxy's DNAT (in
		// OUTPUT, after routing) can send hostNetwork traffic on: real
		// nodes have a default route; ours get one for the Service ranges.
		cmds := []string{
			fmt.Sprintf("route replace %s via %s dev mgmt0", ServiceCIDR4, lab.HostMgmt4),
			fmt.Sprintf("route replace %s via %s dev mgmt0", ServiceCIDR6, lab.HostMgmt6),
		}
		for _, m := range c.Nodes {
			if m != n {
				cmds = append(cmds,
					fmt.Sprintf("route replace %s via %s dev mgmt0", m.PodCIDR4, m.Mgmt4),
					fmt.Sprintf("route replace %s via %s dev mgmt0", m.PodCIDR6, m.Mgmt6))
			}
		}
		if err := ipBatch(ctx, n.Lab.Netns, cmds); err != nil {
			return err
		}
		if err := nsSysctls(ctx, n.Lab.Netns, map[string]string{
			"net.ipv4.ip_forward":                 "1",
			"net.ipv6.conf.all.forwarding":        "1",
			"net.bridge.bridge-nf-call-iptables":  "1",
			"net.bridge.bridge-nf-call-ip6tables": "1",
		}); err != nil {
			return err
		}
	}
	return ipBatch(ctx, "", host)
}

func ipBatch(ctx context.Context, ns string, cmds []string) error {
	if len(cmds) == 0 {
		return nil
	}
	argv := []string{"-batch", "-"}
	if ns != "" {
		argv = append([]string{"-n", ns}, argv...)
	}
	cmd := exec.CommandContext(ctx, "ip", argv...)
	cmd.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// nsSysctls sets network sysctls inside ns (through nsenter --net, so
// /proc/sys/net is the namespace's). Missing keys (no br_netfilter) are skipped.
func nsSysctls(ctx context.Context, ns string, kv map[string]string) error {
	for k, v := range kv {
		path := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		out, err := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+ns, "sh", "-c",
			fmt.Sprintf("[ ! -e %s ] || echo %s > %s", path, v, path)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("sysctl %s=%s in %s: %w: %s", k, v, ns, err, out)
		}
	}
	return nil
}

// freePort returns a TCP port free on 127.0.0.1 right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startNode starts containerd, imports the images, then kubelet and kube-proxy.
func (c *Cluster) startNode(ctx context.Context, n *Node) error {
	for _, d := range []string{"cni", "ipam", "containerd", "kubelet", "pod-logs", "volume-plugins"} {
		if err := os.MkdirAll(filepath.Join(n.Dir, d), 0o755); err != nil {
			return err
		}
	}
	files := map[string]string{
		"containerd.toml":       n.containerdConfig(PauseImage),
		"cni/10-bgplb.conflist": n.cniConfig(),
		"kubelet.yaml":          n.kubeletConfig(c.pki.path("ca.crt"), filepath.Join(c.Dir, "resolv.conf")),
		"kube-proxy.yaml":       n.proxyConfig(filepath.Join(c.Dir, "kube-proxy.kubeconfig")),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(n.Dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	if err := createCgroups(cgroupRootName(n.Name)); err != nil {
		return err
	}
	nsenter := []string{"nsenter", "--net=/run/netns/" + n.Lab.Netns}
	var err error
	n.containerd, err = c.Lab.Start(lab.ProcSpec{Name: n.Name + "-containerd", Dir: n.Dir,
		Argv: append(append([]string{}, nsenter...), "containerd", "--config", filepath.Join(n.Dir, "containerd.toml"))})
	if err != nil {
		return err
	}
	if err := waitUntil(ctx, 30*time.Second, func() error {
		if n.containerd.Exited() {
			return errStop{fmt.Errorf("containerd exited; see %s", n.containerd.LogPath)}
		}
		_, err := c.ctr(ctx, n, "version")
		return err
	}); err != nil {
		return fmt.Errorf("node %s: containerd: %w", n.Name, err)
	}
	for _, img := range c.opts.Images {
		if out, err := c.ctr(ctx, n, "-n", "k8s.io", "images", "import", "--all-platforms", img); err != nil {
			return fmt.Errorf("node %s: import %s: %w: %s", n.Name, img, err, out)
		}
	}
	n.kubeletSpec = lab.ProcSpec{Name: n.Name + "-kubelet", Dir: n.Dir,
		Argv: append(append([]string{}, nsenter...), c.bin("kubelet"),
			"--config", filepath.Join(n.Dir, "kubelet.yaml"),
			"--kubeconfig", filepath.Join(c.Dir, "node-"+n.Name+".kubeconfig"),
			"--root-dir", filepath.Join(n.Dir, "kubelet"),
			"--cert-dir", filepath.Join(n.Dir, "kubelet", "pki"),
			"--hostname-override", n.Name,
			"--node-ip", n.Mgmt4.String()+","+n.Mgmt6.String(),
			"--v=1")}
	if n.kubelet, err = c.Lab.Start(n.kubeletSpec); err != nil {
		return err
	}
	n.proxySpec = lab.ProcSpec{Name: n.Name + "-kube-proxy", Dir: n.Dir,
		Argv: append(append([]string{}, nsenter...), c.bin("kube-proxy"),
			"--config", filepath.Join(n.Dir, "kube-proxy.yaml"), "--v=1")}
	n.proxy, err = c.Lab.Start(n.proxySpec)
	return err
}

// ctr runs ctr against node's containerd.
func (c *Cluster) ctr(ctx context.Context, n *Node, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "ctr", append([]string{"-a", n.ContainerdSock()}, args...)...).CombinedOutput()
	return string(out), err
}

// RejoinNode brings back a node whose Node object was deleted, as a real
// host's service manager would: a kubelet registers its Node only when it
// starts, and kube-proxy exits when its Node is deleted. It restarts the
// kubelet (SIGTERM; the pods' containers keep running), waits until the
// Node is Ready, then starts kube-proxy again (restarting it if it is
// still running).
func (c *Cluster) RejoinNode(ctx context.Context, node string) error {
	n := c.node(node)
	if n == nil {
		return fmt.Errorf("cluster: no node %q", node)
	}
	var err error
	if n.kubelet, err = c.restart(n.kubelet, n.kubeletSpec); err != nil {
		return err
	}
	if err := c.waitNodesReady(ctx, 2*time.Minute); err != nil {
		return fmt.Errorf("cluster: rejoin %s: %w", node, err)
	}
	n.proxy, err = c.restart(n.proxy, n.proxySpec)
	return err
}

// restart stops p (if still running) and starts spec again.
func (c *Cluster) restart(p *lab.Proc, spec lab.ProcSpec) (*lab.Proc, error) {
	if err := p.Stop(10 * time.Second); err != nil {
		return p, fmt.Errorf("cluster: restart %s: %w", spec.Name, err)
	}
	np, err := c.Lab.Start(spec)
	if err != nil {
		return p, fmt.Errorf("cluster: restart %s: %w", spec.Name, err)
	}
	return np, nil
}

// node returns the node named name, nil if none.
func (c *Cluster) node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// AgentsRunning fails unless node's containerd, kubelet and kube-proxy
// are all running.
func (c *Cluster) AgentsRunning(node string) error {
	n := c.node(node)
	if n == nil {
		return fmt.Errorf("cluster: no node %q", node)
	}
	for _, p := range []*lab.Proc{n.containerd, n.kubelet, n.proxy} {
		if p == nil || p.Exited() {
			return fmt.Errorf("cluster: a node agent of %s is not running (logs in %s)", node, c.Lab.LogDir())
		}
	}
	return nil
}

func (c *Cluster) waitNodesReady(ctx context.Context, timeout time.Duration) error {
	return waitUntil(ctx, timeout, func() error {
		for _, n := range c.Nodes {
			if n.kubelet.Exited() {
				return errStop{fmt.Errorf("kubelet on %s exited; see %s", n.Name, n.kubelet.LogPath)}
			}
		}
		nodes, err := c.Clientset.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		ready := 0
		for _, nd := range nodes.Items {
			for _, cond := range nd.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		if ready < len(c.Nodes) {
			return fmt.Errorf("%d of %d nodes Ready", ready, len(c.Nodes))
		}
		return nil
	})
}

// SpeakerPID returns the PID (in the root PID namespace) of the bgplb
// speaker container's process on node: the process whose command line is
// "/bgplb speaker ..." and whose network namespace is the node's (the
// speaker runs on the host network). It fails unless there is exactly one.
func (c *Cluster) SpeakerPID(node string) (int, error) {
	n := c.node(node)
	if n == nil {
		return 0, fmt.Errorf("cluster: no node %q", node)
	}
	want, err := nsInode(filepath.Join("/run/netns", n.Lab.Netns))
	if err != nil {
		return 0, err
	}
	var found []int
	for _, pid := range Processes(func(args []string) bool {
		return len(args) > 1 && args[0] == "/bgplb" && args[1] == "speaker"
	}) {
		if ino, err := nsInode(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil && ino == want {
			found = append(found, pid)
		}
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("cluster: %d speaker processes in %s's network namespace (%v)", len(found), node, found)
	}
	return found[0], nil
}

// nsInode returns the inode of a namespace file (/run/netns/X or
// /proc/PID/ns/net): equal inodes mean the same namespace.
func nsInode(path string) (uint64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("cluster: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("cluster: stat %s: no inode", path)
	}
	return st.Ino, nil
}
