package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Failures the e2e specs inject into a running cluster: the API server
// going away and coming back, and the processes of a node's pods.

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

// SpeakerPID returns the PID (in the root PID namespace) of the bgplb
// speaker container's process on node: the process whose command line is
// "/bgplb speaker ..." and whose network namespace is the node's (the
// speaker runs on the host network). It fails unless there is exactly one.
func (c *Cluster) SpeakerPID(node string) (int, error) {
	var n *Node
	for _, x := range c.Nodes {
		if x.Name == node {
			n = x
		}
	}
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
