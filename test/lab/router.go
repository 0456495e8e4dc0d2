package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// FRRDir is where Debian's frr package installs the daemons.
const FRRDir = "/usr/lib/frr"

// frrRouter is the FRR side of a Router: config and the three daemons.
type frrRouter struct {
	mu  sync.Mutex
	cfg RouterConfig
	// daemons by name: zebra, bgpd, bfdd.
	daemons map[string]*Proc
}

// Dir is the router's state directory: config files, pid files and the vty sockets.
func (r *Router) Dir() string { return filepath.Join(r.lab.dir, r.Name) }

// Config returns the config the router runs with.
func (r *Router) Config() RouterConfig {
	r.frr.mu.Lock()
	defer r.frr.mu.Unlock()
	return r.frr.cfg
}

// ASN is the router's own AS number.
func (r *Router) ASN() uint32 { return r.Config().ASN }

// Daemon returns the running zebra, bgpd or bfdd process (nil if not running),
// e.g. to freeze bgpd with SIGSTOP.
func (r *Router) Daemon(name string) *Proc {
	r.frr.mu.Lock()
	defer r.frr.mu.Unlock()
	return r.frr.daemons[name]
}

// daemonArgv is how every router daemon is launched: frrDaemonArgv with
// everything in the router's state dir.
func (r *Router) daemonArgv(daemon string) []string {
	argv := frrDaemonArgv(daemon, r.Dir(), r.Dir())
	if daemon == "bfdd" {
		argv = append(argv, "--bfdctl", filepath.Join(r.Dir(), "bfdd.sock"))
	}
	return argv
}

// writeConfigs renders cfg into the router's state dir, owned by frr.
func (r *Router) writeConfigs(cfg RouterConfig) error {
	files := map[string]func(RouterConfig) (string, error){
		"zebra.conf": RenderZebra,
		"bgpd.conf":  RenderBGPD,
		"bfdd.conf":  RenderBFDD,
	}
	uid, gid, err := frrIDs()
	if err != nil {
		return err
	}
	d := r.Dir()
	if err := os.MkdirAll(d, 0o755); err != nil {
		return fmt.Errorf("router %s: %w", r.Name, err)
	}
	if err := os.Chown(d, uid, gid); err != nil {
		return fmt.Errorf("router %s: %w", r.Name, err)
	}
	for name, render := range files {
		text, err := render(cfg)
		if err != nil {
			return fmt.Errorf("router %s: %s: %w", r.Name, name, err)
		}
		p := filepath.Join(d, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			return fmt.Errorf("router %s: %w", r.Name, err)
		}
		if err := os.Chown(p, uid, gid); err != nil {
			return fmt.Errorf("router %s: %w", r.Name, err)
		}
	}
	return nil
}

// frrIDs returns the uid and gid the FRR daemons run as.
func frrIDs() (int, int, error) {
	u, err := user.Lookup("frr")
	if err != nil {
		return 0, 0, fmt.Errorf("frr user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid, nil
}

// start writes the configs and starts zebra, then bgpd and bfdd, and waits
// until each answers on its vty socket.
func (r *Router) start(ctx context.Context) error {
	r.frr.mu.Lock()
	defer r.frr.mu.Unlock()
	if len(r.Dir())+len("/zserv.api") >= 108 {
		return fmt.Errorf("router %s: dir %s too long for a unix socket path", r.Name, r.Dir())
	}
	if err := r.writeConfigs(r.frr.cfg); err != nil {
		return err
	}
	r.frr.daemons = map[string]*Proc{}
	if err := r.startDaemon(ctx, "zebra"); err != nil {
		return err
	}
	// bgpd and bfdd connect to zebra's socket at start.
	if err := waitFor(ctx, 30*time.Second, func() error {
		_, err := os.Stat(filepath.Join(r.Dir(), "zserv.api"))
		return err
	}); err != nil {
		return fmt.Errorf("router %s: zebra socket: %w", r.Name, err)
	}
	for _, d := range []string{"bfdd", "bgpd"} {
		if err := r.startDaemon(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// readyCommands are cheap commands that succeed once a daemon is up.
var readyCommands = map[string]string{
	"zebra": "show version",
	"bgpd":  "show bgp summary json",
	"bfdd":  "show bfd peers json",
}

func (r *Router) startDaemon(ctx context.Context, daemon string) error {
	p, err := r.lab.startProc(r.Netns, ProcSpec{Name: r.Name + "-" + daemon, Argv: r.daemonArgv(daemon)})
	if err != nil {
		return fmt.Errorf("router %s: %w", r.Name, err)
	}
	r.frr.daemons[daemon] = p
	return daemonReady(ctx, p, daemon, r.Dir(), "router "+r.Name)
}

// daemonReady waits until the FRR daemon p answers its readyCommands on
// the vty sockets in dir, or fails once it has exited; who names it in
// errors.
func daemonReady(ctx context.Context, p *Proc, daemon, dir, who string) error {
	err := waitFor(ctx, 30*time.Second, func() error {
		if p.Exited() {
			return errStop{fmt.Errorf("%s exited: %v", daemon, p.waitErr)}
		}
		_, err := vtysh(ctx, dir, daemon, readyCommands[daemon], who)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: %s not ready (log %s): %w", who, daemon, p.LogPath, err)
	}
	return nil
}

// Reconfigure restarts bgpd and bfdd with cfg (zebra keeps running): BGP
// sessions drop and come back with the new settings.
func (r *Router) Reconfigure(ctx context.Context, cfg RouterConfig) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("router %s: %w", r.Name, err)
	}
	r.frr.mu.Lock()
	defer r.frr.mu.Unlock()
	for _, d := range []string{"bgpd", "bfdd"} {
		if p := r.frr.daemons[d]; p != nil {
			if err := p.Stop(3 * time.Second); err != nil {
				return fmt.Errorf("router %s: %w", r.Name, err)
			}
			delete(r.frr.daemons, d)
		}
	}
	if err := r.writeConfigs(cfg); err != nil {
		return err
	}
	r.frr.cfg = cfg
	for _, d := range []string{"bfdd", "bgpd"} {
		if err := r.startDaemon(ctx, d); err != nil {
			return err
		}
	}
	r.lab.log.Info("router reconfigured", "router", r.Name)
	return nil
}

// Restart restarts bgpd and bfdd with the current config.
func (r *Router) Restart(ctx context.Context) error { return r.Reconfigure(ctx, r.Config()) }

// StopDaemons stops bgpd, bfdd and then zebra: the whole router's control
// plane goes down as in a router reboot (zebra removes the routes it
// installed as it exits). The namespace and its links stay. StartDaemons
// brings them back.
func (r *Router) StopDaemons() error {
	r.frr.mu.Lock()
	defer r.frr.mu.Unlock()
	for _, d := range []string{"bgpd", "bfdd", "zebra"} {
		if p := r.frr.daemons[d]; p != nil {
			if err := p.Stop(5 * time.Second); err != nil {
				return fmt.Errorf("router %s: %w", r.Name, err)
			}
			delete(r.frr.daemons, d)
		}
	}
	// A socket left behind would make the next zebra's start look done.
	_ = os.Remove(filepath.Join(r.Dir(), "zserv.api"))
	r.lab.log.Info("router daemons stopped", "router", r.Name)
	return nil
}

// StartDaemons starts zebra, bfdd and bgpd with the current config after
// StopDaemons, and waits until each answers.
func (r *Router) StartDaemons(ctx context.Context) error {
	r.frr.mu.Lock()
	running := len(r.frr.daemons) > 0
	r.frr.mu.Unlock()
	if running {
		return fmt.Errorf("router %s: daemons still running", r.Name)
	}
	return r.start(ctx)
}

// Vtysh runs one vtysh command against the router's daemons and returns its output.
func (r *Router) Vtysh(cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return r.vtyshDaemon(ctx, "", cmd)
}

func (r *Router) vtyshDaemon(ctx context.Context, daemon, cmd string) (string, error) {
	return vtysh(ctx, r.Dir(), daemon, cmd, "router "+r.Name)
}

// frrDaemonArgv starts an FRR daemon with its configuration in confDir,
// its pid file, zserv socket and vty socket in runDir, logs on stdout (the
// lab's log file) and no TCP vty.
func frrDaemonArgv(daemon, confDir, runDir string) []string {
	return []string{
		filepath.Join(FRRDir, daemon),
		"-f", filepath.Join(confDir, daemon+".conf"),
		"-i", filepath.Join(runDir, daemon+".pid"),
		"-z", filepath.Join(runDir, "zserv.api"),
		"--vty_socket", runDir,
		"-P", "0",
		"--log", "stdout",
		"--log-level", "info",
	}
}

// vtysh runs one vtysh command against the FRR daemons whose vty sockets
// are in dir (one daemon's, if named); who names them in errors.
func vtysh(ctx context.Context, dir, daemon, cmd, who string) (string, error) {
	argv := []string{"vtysh", "--vty_socket", dir}
	if daemon != "" {
		argv = append(argv, "-d", daemon)
	}
	argv = append(argv, "-c", cmd)
	out, err := run(ctx, "", argv...)
	if err != nil {
		return out, fmt.Errorf("%s: %w: %s", who, err, out)
	}
	return out, nil
}

// VtyshJSON runs a vtysh command that prints JSON (e.g. "show bgp ipv4
// unicast json") and decodes its output into v.
func (r *Router) VtyshJSON(cmd string, v any) error {
	out, err := r.Vtysh(cmd)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("router %s: decode %q: %w", r.Name, cmd, err)
	}
	return nil
}

// KernelRoutes returns the next hops of the kernel route for exactly prefix
// in the router's main table (what zebra installed); none if there is no route.
func (r *Router) KernelRoutes(prefix netip.Prefix) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return kernelRoutes(ctx, r.Netns, prefix)
}

func kernelRoutes(ctx context.Context, ns string, prefix netip.Prefix) ([]netip.Addr, error) {
	fam := "-4"
	if prefix.Addr().Is6() {
		fam = "-6"
	}
	out, err := run(ctx, "", "ip", "-n", ns, "-j", fam, "route", "show", "exact", prefix.Masked().String())
	if err != nil {
		return nil, err
	}
	hops, nhids, err := ParseRoutes([]byte(out))
	if err != nil {
		return nil, fmt.Errorf("routes of %s in %s: %w", prefix, ns, err)
	}
	// Routes that point at a kernel nexthop object (zebra's default) carry
	// only its id: resolve groups and members.
	for len(nhids) > 0 {
		id := nhids[0]
		nhids = nhids[1:]
		out, err := run(ctx, "", "ip", "-n", ns, "-j", "nexthop", "show", "id", strconv.Itoa(id))
		if err != nil {
			return nil, err
		}
		h, more, err := ParseNexthops([]byte(out))
		if err != nil {
			return nil, fmt.Errorf("nexthop %d in %s: %w", id, ns, err)
		}
		hops = append(hops, h...)
		nhids = append(nhids, more...)
	}
	return hops, nil
}

// ParseRoutes reads "ip -j route show" output and returns the gateways of
// every route and, for routes that use nexthop objects, their ids.
func ParseRoutes(b []byte) (gateways []netip.Addr, nhids []int, err error) {
	var routes []struct {
		Gateway  string `json:"gateway"`
		NHID     int    `json:"nhid"`
		Nexthops []struct {
			Gateway string `json:"gateway"`
		} `json:"nexthops"`
	}
	if err := json.Unmarshal(b, &routes); err != nil {
		return nil, nil, fmt.Errorf("parse routes: %w", err)
	}
	add := func(s string) error {
		if s == "" {
			return nil
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("parse routes: %w", err)
		}
		gateways = append(gateways, a)
		return nil
	}
	for _, rt := range routes {
		if err := add(rt.Gateway); err != nil {
			return nil, nil, err
		}
		for _, h := range rt.Nexthops {
			if err := add(h.Gateway); err != nil {
				return nil, nil, err
			}
		}
		if rt.Gateway == "" && len(rt.Nexthops) == 0 && rt.NHID > 0 {
			nhids = append(nhids, rt.NHID)
		}
	}
	return gateways, nhids, nil
}

// ParseNexthops reads "ip -j nexthop show id N" output: the gateway of a
// plain nexthop, or the member ids of a group.
func ParseNexthops(b []byte) (gateways []netip.Addr, members []int, err error) {
	var nhs []struct {
		Gateway string `json:"gateway"`
		Group   []struct {
			ID int `json:"id"`
		} `json:"group"`
	}
	if err := json.Unmarshal(b, &nhs); err != nil {
		return nil, nil, fmt.Errorf("parse nexthops: %w", err)
	}
	for _, nh := range nhs {
		if nh.Gateway != "" {
			a, err := netip.ParseAddr(nh.Gateway)
			if err != nil {
				return nil, nil, fmt.Errorf("parse nexthops: %w", err)
			}
			gateways = append(gateways, a)
		}
		for _, m := range nh.Group {
			members = append(members, m.ID)
		}
	}
	return gateways, members, nil
}

// Exec runs a command inside the router's namespace and returns its combined output.
func (r *Router) Exec(ctx context.Context, argv ...string) (string, error) {
	return execIn(ctx, r.Netns, argv...)
}

// errStop ends waitFor early.
type errStop struct{ error }

// waitFor polls check until it succeeds, returns errStop, or timeout/ctx ends.
func waitFor(ctx context.Context, timeout time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := 20 * time.Millisecond
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
		case <-time.After(delay):
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}
