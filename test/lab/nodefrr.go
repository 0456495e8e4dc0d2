package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Where FRR, vtysh, frr-reload.py and frr-k8s look by default. A node's
// FRR processes each run in their own mount namespace (ip netns exec gives
// every process one) with the node's own directories bound at these paths,
// so every tool finds that node's daemons and files without a path flag,
// exactly as in frr-k8s's pod. frr-k8s reads its reloader's status from
// FRRReloaderDir with no way to move it, so binding is the only way to run
// one frr-k8s per node on one host.
const (
	// FRRRunDir holds the daemons' vty sockets, zserv.api and pid files.
	FRRRunDir = "/run/frr"
	// FRRConfDir holds frr.conf (written by frr-reload.py) and vtysh.conf.
	FRRConfDir = "/etc/frr"
	// FRRReloaderDir is frr-k8s's volume shared by its controller and its
	// reloader: the frr.conf it renders, reloader.pid, .status,
	// running-config, last-error.
	FRRReloaderDir = "/etc/frr_reloader"
)

// NodeFRR is an FRR instance (zebra, bfdd, bgpd) inside a node's
// namespace, as frr-k8s's pod runs it on the node's host network.
type NodeFRR struct {
	node *Node
	// Dir holds the instance's run, etc and reloader directories.
	Dir string

	mu      sync.Mutex
	daemons map[string]*Proc
}

// RunDir, ConfDir and ReloaderDir are the node's directories bound at
// FRRRunDir, FRRConfDir and FRRReloaderDir.
func (f *NodeFRR) RunDir() string      { return filepath.Join(f.Dir, "run") }
func (f *NodeFRR) ConfDir() string     { return filepath.Join(f.Dir, "etc") }
func (f *NodeFRR) ReloaderDir() string { return filepath.Join(f.Dir, "reloader") }

// mountScript binds the node's directories at the default paths and, with
// "private-tmp", mounts an empty /tmp (frr-k8s's reloader script writes a
// fixed /tmp/current.conf, which three nodes would share), then runs the
// command with the node's name as hostname in a UTS namespace of its own,
// as a pod on the node's host network sees it (frr-k8s writes it into FRR's
// configuration). Mounts made after ip netns exec's unshare stay in this
// process's mount namespace. Every step execs, so the PID is the command's.
const mountScript = `set -e
mount --bind "$1" ` + FRRRunDir + `
mount --bind "$2" ` + FRRConfDir + `
mount --bind "$3" ` + FRRReloaderDir + `
if [ "$4" = private-tmp ]; then mount -t tmpfs -o mode=1777 bgplb-lab-tmp /tmp; fi
node=$5
shift 5
exec unshare --uts sh -c 'hostname "$0" && exec "$@"' "$node" "$@"`

// StartFRR creates the node's FRR directories and starts zebra, then bfdd
// and bgpd with empty configurations (frr-k8s configures them through
// frr-reload.py), and waits until each answers on its vty socket.
func (n *Node) StartFRR(ctx context.Context) (*NodeFRR, error) {
	f := &NodeFRR{node: n, Dir: filepath.Join(n.lab.dir, n.Name+"-frr"), daemons: map[string]*Proc{}}
	if err := n.lab.ensureMountPoints(); err != nil {
		return nil, err
	}
	uid, gid, err := frrIDs()
	if err != nil {
		return nil, err
	}
	files := map[string]string{
		// frr-reload.py --reload requires the integrated configuration.
		"etc/vtysh.conf": "service integrated-vtysh-config\n",
		"etc/frr.conf":   "",
		"etc/zebra.conf": "", "etc/bfdd.conf": "", "etc/bgpd.conf": "",
	}
	for _, d := range []string{f.Dir, f.RunDir(), f.ConfDir(), f.ReloaderDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("node %s frr: %w", n.Name, err)
		}
		if err := os.Chown(d, uid, gid); err != nil {
			return nil, fmt.Errorf("node %s frr: %w", n.Name, err)
		}
	}
	for name, body := range files {
		p := filepath.Join(f.Dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return nil, fmt.Errorf("node %s frr: %w", n.Name, err)
		}
		if err := os.Chown(p, uid, gid); err != nil {
			return nil, fmt.Errorf("node %s frr: %w", n.Name, err)
		}
	}
	if err := f.startDaemon(ctx, "zebra"); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, 30*time.Second, func() error {
		_, err := os.Stat(filepath.Join(f.RunDir(), "zserv.api"))
		return err
	}); err != nil {
		return nil, fmt.Errorf("node %s: zebra socket: %w", n.Name, err)
	}
	for _, d := range []string{"bfdd", "bgpd"} {
		if err := f.startDaemon(ctx, d); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func (f *NodeFRR) startDaemon(ctx context.Context, daemon string) error {
	argv := frrDaemonArgv(daemon, FRRConfDir, FRRRunDir)
	p, err := f.Start(ProcSpec{Name: daemon, Argv: argv}, false)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.daemons[daemon] = p
	f.mu.Unlock()
	return daemonReady(ctx, p, daemon, f.RunDir(), "node "+f.node.Name+" frr")
}

// Start runs a process in the node's namespace that sees this instance's
// directories at FRRRunDir, FRRConfDir and FRRReloaderDir (and, with
// privateTmp, an empty /tmp of its own). It is named "<node>-<name>".
func (f *NodeFRR) Start(spec ProcSpec, privateTmp bool) (*Proc, error) {
	tmp := "shared-tmp"
	if privateTmp {
		tmp = "private-tmp"
	}
	// The system's tools, as in frr-k8s's image (not a user's python3
	// shim), from / (the lab dir is under a /tmp a process may not see).
	spec.Env = append(spec.Env, "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
	if spec.Dir == "" {
		spec.Dir = "/"
	}
	spec.Argv = append([]string{"sh", "-c", mountScript, "sh", f.RunDir(), f.ConfDir(), f.ReloaderDir(), tmp, f.node.Name}, spec.Argv...)
	return f.node.StartWith(spec)
}

// Daemon returns the running zebra, bfdd or bgpd (nil if none), e.g. to
// freeze it with SIGSTOP.
func (f *NodeFRR) Daemon(name string) *Proc {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.daemons[name]
}

// Daemons returns zebra, bfdd and bgpd.
func (f *NodeFRR) Daemons() []*Proc {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*Proc
	for _, d := range []string{"zebra", "bfdd", "bgpd"} {
		if p := f.daemons[d]; p != nil {
			out = append(out, p)
		}
	}
	return out
}

// Vtysh runs one vtysh command against the node's daemons. The vty
// sockets are reachable from the host through the node's run directory.
func (f *NodeFRR) Vtysh(cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return f.vtysh(ctx, "", cmd)
}

func (f *NodeFRR) vtysh(ctx context.Context, daemon, cmd string) (string, error) {
	return vtysh(ctx, f.RunDir(), daemon, cmd, "node "+f.node.Name+" frr")
}

// ensureMountPoints creates FRRRunDir and FRRReloaderDir on the host when
// they are missing: a bind mount needs an existing directory to cover. The
// lab removes the ones it created when it goes down; nothing is ever
// mounted on them in the root mount namespace.
func (l *Lab) ensureMountPoints() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range []string{FRRRunDir, FRRConfDir, FRRReloaderDir} {
		if _, err := os.Stat(d); err == nil {
			// Only the lab uses FRRReloaderDir on a host: empty, it is what
			// a crashed lab left, and goes with this one.
			if ents, err := os.ReadDir(d); d == FRRReloaderDir && err == nil && len(ents) == 0 && !slices.Contains(l.madeDirs, d) {
				l.madeDirs = append(l.madeDirs, d)
			}
			continue
		}
		if err := os.Mkdir(d, 0o755); err != nil {
			return fmt.Errorf("lab: mount point %s: %w", d, err)
		}
		if !slices.Contains(l.madeDirs, d) {
			l.madeDirs = append(l.madeDirs, d)
		}
	}
	return nil
}

// removeMountPoints removes the mount points ensureMountPoints created
// (empty directories; a non-empty one is left and reported).
func (l *Lab) removeMountPoints() error {
	l.mu.Lock()
	dirs := l.madeDirs
	l.madeDirs = nil
	l.mu.Unlock()
	var errs []error
	for _, d := range dirs {
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("lab: remove mount point %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}
