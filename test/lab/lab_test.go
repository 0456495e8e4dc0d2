package lab

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	svc4 = netip.MustParseAddr("203.0.113.10")
	svc6 = netip.MustParseAddr("2001:db8:ffff::10")
)

func TestLab(t *testing.T) {
	RequireLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Leftovers of a "crashed" run that Up must remove.
	_ = exec.Command("ip", "netns", "del", Prefix+"stale").Run()
	_ = exec.Command("ip", "link", "del", mgmtVethPrefix+"stale").Run()
	mustRun(t, "ip", "netns", "add", Prefix+"stale")
	mustRun(t, "ip", "link", "add", mgmtVethPrefix+"stale", "type", "bridge")

	l := ForTest(t, Options{})
	speakers := map[string]*Proc{}
	for _, s := range []string{"/run/netns/" + Prefix + "stale", "/sys/class/net/" + mgmtVethPrefix + "stale"} {
		if _, err := os.Stat(s); err == nil {
			t.Errorf("Up left the stale %s in place", s)
		}
	}

	t.Run("routers answer vtysh", func(t *testing.T) {
		for _, r := range l.Routers() {
			var rib struct {
				RouterID string `json:"routerId"`
				LocalAS  uint32 `json:"localAS"`
			}
			if err := r.VtyshJSON("show bgp ipv4 unicast json", &rib); err != nil {
				t.Fatal(err)
			}
			if rib.LocalAS != r.ASN() || rib.RouterID != r.Addr4.String() {
				t.Errorf("%s: bgpd runs AS %d router-id %s, want %d %s", r.Name, rib.LocalAS, rib.RouterID, r.ASN(), r.Addr4)
			}
			var bfd []any
			if err := r.VtyshJSON("show bfd peers json", &bfd); err != nil {
				t.Fatal(err)
			}
			if out, err := r.Vtysh("show version"); err != nil || !strings.Contains(out, "FRRouting") {
				t.Errorf("%s: zebra show version: %v %q", r.Name, err, out)
			}
		}
	})

	t.Run("routers reach every node", func(t *testing.T) {
		for _, r := range l.Routers() {
			for _, n := range l.Nodes() {
				k, _ := n.Link(r.Name)
				for _, a := range []netip.Addr{k.Addr4, k.Addr6} {
					if err := r.Ping(ctx, a); err != nil {
						t.Errorf("%s -> %s %s: %v", r.Name, n.Name, a, err)
					}
				}
			}
		}
	})

	t.Run("nodes reach the host over management", func(t *testing.T) {
		ln, err := net.Listen("tcp", netip.AddrPortFrom(HostMgmt4, 0).String())
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_, _ = c.Write([]byte("host\n"))
				c.Close()
			}
		}()
		for _, n := range l.Nodes() {
			if err := n.Ping(ctx, HostMgmt6); err != nil {
				t.Errorf("%s -> host v6: %v", n.Name, err)
			}
			c, err := n.Dial(ctx, "tcp", ln.Addr().String())
			if err != nil {
				t.Errorf("%s: %v", n.Name, err)
				continue
			}
			b, _ := io.ReadAll(c)
			c.Close()
			if string(b) != "host\n" {
				t.Errorf("%s read %q from the host", n.Name, b)
			}
		}
	})

	t.Run("client reaches node LANs through the routers", func(t *testing.T) {
		c := l.Client()
		for _, n := range l.Nodes() {
			for _, k := range n.Links {
				for _, a := range []netip.Addr{k.Addr4, k.Addr6} {
					if err := c.Ping(ctx, a); err != nil {
						t.Errorf("client -> %s %s: %v", n.Name, a, err)
					}
				}
			}
		}
		n1 := l.Node("n1")
		for _, k := range n1.Links {
			for _, a := range []netip.Addr{k.Addr4, k.Addr6} {
				s, err := n1.ServeHTTP(a, 8080)
				if err != nil {
					t.Fatal(err)
				}
				body, err := c.HTTPGet(ctx, ServiceURL(a, 8080))
				if err != nil || body != "n1\n" {
					t.Errorf("GET %s: %q %v", a, body, err)
				}
				_ = s.Close()
			}
		}
	})

	t.Run("BGP routes from nodes become ECMP kernel routes", func(t *testing.T) {
		for _, n := range l.Nodes() {
			speakers[n.Name] = startFRRSpeaker(t, l, n, []netip.Addr{svc4, svc6}, "")
		}
		for _, r := range l.Routers() {
			waitRoutes(t, r, svc4, len(l.Nodes()))
			waitRoutes(t, r, svc6, len(l.Nodes()))
			var rt struct {
				Paths []struct {
					Multipath bool `json:"multipath"`
					Bestpath  any  `json:"bestpath"`
				} `json:"paths"`
			}
			if err := r.VtyshJSON("show bgp ipv4 unicast 203.0.113.10/32 json", &rt); err != nil {
				t.Fatal(err)
			}
			if len(rt.Paths) != len(l.Nodes()) {
				t.Errorf("%s: %d paths for %s, want %d", r.Name, len(rt.Paths), svc4, len(l.Nodes()))
			}
			// Speaker restarts rely on the router keeping routes as a GR helper.
			var nbrs map[string]struct {
				GR struct {
					Local string `json:"localGrMode"`
				} `json:"gracefulRestartInfo"`
			}
			if err := r.VtyshJSON("show bgp neighbors json", &nbrs); err != nil {
				t.Fatal(err)
			}
			if len(nbrs) != 2*len(l.Nodes()) {
				t.Errorf("%s: %d neighbors, want %d (v4+v6 per node)", r.Name, len(nbrs), 2*len(l.Nodes()))
			}
			for a, nb := range nbrs {
				if nb.GR.Local != "Helper*" {
					t.Errorf("%s: neighbor %s graceful restart mode %q, want Helper*", r.Name, a, nb.GR.Local)
				}
			}
			var bfd []struct {
				Peer       string `json:"peer"`
				Status     string `json:"status"`
				Multiplier int    `json:"detect-multiplier"`
				RxInterval int    `json:"receive-interval"`
				TxInterval int    `json:"transmit-interval"`
			}
			if err := r.VtyshJSON("show bfd peers json", &bfd); err != nil {
				t.Fatal(err)
			}
			// The FRR stand-in speaker runs no bfdd: sessions exist but stay down.
			if len(bfd) < len(l.Nodes()) {
				t.Errorf("%s: %d BFD sessions, want one per peer: %+v", r.Name, len(bfd), bfd)
			}
			for _, s := range bfd {
				if s.Multiplier != 3 || s.RxInterval != 300 || s.TxInterval != 300 {
					t.Errorf("%s: BFD session %+v does not use the 300 ms x 3 profile", r.Name, s)
				}
			}
		}
		for _, a := range []netip.Addr{svc4, svc6} {
			out, _ := l.Router("r1").Exec(ctx, "ip", "route", "show", a.String())
			t.Logf("r1: ip route show %s:\n%s", a, out)
		}
		for _, n := range l.Nodes() {
			for _, a := range []netip.Addr{svc4, svc6} {
				if _, err := n.ServeHTTP(a, 80); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, a := range []netip.Addr{svc4, svc6} {
			counts, err := l.Client().CountAnswers(ctx, ServiceURL(a, 80), 30)
			if err != nil {
				t.Errorf("%s: %v (%v)", a, err, counts)
			}
			answered := 0
			for _, n := range l.Nodes() {
				if counts[n.Name] > 0 {
					answered++
				}
			}
			// L4 hashing spreads 30 connections over the nodes; all on one would be 3^-29.
			if answered < 2 {
				t.Errorf("%s: answers %v, want several nodes", a, counts)
			}
			t.Logf("%s: answers per node %v", a, counts)
		}
	})

	t.Run("reconfigure: TCP MD5 password", func(t *testing.T) {
		r1 := l.Router("r1")
		good := r1.Config()
		withPW := good
		withPW.PeerGroups = slices.Clone(good.PeerGroups)
		for i := range withPW.PeerGroups {
			withPW.PeerGroups[i].Password = "s3cret"
		}
		if err := r1.Reconfigure(ctx, withPW); err != nil {
			t.Fatal(err)
		}
		// Speakers without the password retry every second and must stay out.
		waitRoutes(t, r1, svc4, 0)
		time.Sleep(2500 * time.Millisecond)
		waitRoutes(t, r1, svc4, 0)
		if hops, err := l.Router("r2").KernelRoutes(netip.PrefixFrom(svc4, 32)); err != nil || len(hops) != len(l.Nodes()) {
			t.Errorf("r2 lost routes while r1 was reconfigured: %v %v", hops, err)
		}
		// n1 with the right password gets in.
		n1 := l.Node("n1")
		restartFRRSpeaker(t, l, n1, speakers, "s3cret")
		waitRoutes(t, r1, svc4, 1)
		start := time.Now()
		if err := r1.Reconfigure(ctx, good); err != nil {
			t.Fatal(err)
		}
		restartFRRSpeaker(t, l, n1, speakers, "")
		waitRoutes(t, r1, svc4, len(l.Nodes()))
		t.Logf("all routes back %v after restoring r1's config", time.Since(start).Round(time.Millisecond))
	})

	t.Run("a router's daemons stopped and started", func(t *testing.T) {
		r1 := l.Router("r1")
		if err := r1.StopDaemons(); err != nil {
			t.Fatal(err)
		}
		// zebra takes its routes with it; r2 is untouched.
		waitRoutes(t, r1, svc4, 0)
		if hops, err := l.Router("r2").KernelRoutes(netip.PrefixFrom(svc4, 32)); err != nil || len(hops) != len(l.Nodes()) {
			t.Errorf("r2 lost routes while r1 was down: %v %v", hops, err)
		}
		start := time.Now()
		if err := r1.StartDaemons(ctx); err != nil {
			t.Fatal(err)
		}
		waitRoutes(t, r1, svc4, len(l.Nodes()))
		waitRoutes(t, r1, svc6, len(l.Nodes()))
		t.Logf("all routes back %v after starting r1's daemons", time.Since(start).Round(time.Millisecond))
	})

	t.Run("reconfigure: r2 as iBGP peer", func(t *testing.T) {
		r2 := l.Router("r2")
		cfg := r2.Config()
		cfg.ASN = l.NodeASN()
		cfg.PeerGroups = slices.Clone(cfg.PeerGroups)
		for i := range cfg.PeerGroups {
			cfg.PeerGroups[i].RemoteASN = l.NodeASN()
		}
		if err := r2.Reconfigure(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		for _, n := range l.Nodes() {
			restartFRRSpeaker(t, l, n, speakers, "")
		}
		waitRoutes(t, r2, svc4, len(l.Nodes()))
		waitRoutes(t, r2, svc6, len(l.Nodes()))
		var rt struct {
			Paths []struct {
				LocPrf int `json:"locPrf"`
				Peer   struct {
					Type string `json:"type"`
				} `json:"peer"`
			} `json:"paths"`
		}
		if err := r2.VtyshJSON("show bgp ipv4 unicast 203.0.113.10/32 json", &rt); err != nil {
			t.Fatal(err)
		}
		if len(rt.Paths) != len(l.Nodes()) || rt.Paths[0].Peer.Type != "internal" || rt.Paths[0].LocPrf != 100 {
			t.Errorf("r2 iBGP paths: %+v", rt.Paths)
		}
	})

	if t.Failed() {
		return // ForTest's cleanup dumps the lab's state before Down
	}
	dir := l.Dir()
	if err := l.Down(); err != nil {
		t.Fatal(err)
	}
	assertNoLeftovers(t, dir)
}

// TestCleanupStale kills a lab without Down (as a crash would) and checks
// that CleanupStale removes its namespaces, links and FRR daemons.
func TestCleanupStale(t *testing.T) {
	RequireLab(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashedLabHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "BGPLB_LAB_CRASH_HELPER=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	dir := ""
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "LAB UP "); ok {
			dir = d
			break
		}
	}
	if dir == "" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("crash helper did not bring its lab up")
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()

	left, err := Leftovers("")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the crashed lab left %d things, e.g. %v", len(left), left[:min(len(left), 4)])
	if len(left) == 0 || len(procsMentioning(dir)) == 0 {
		t.Fatalf("the crashed lab left nothing behind (%v): the test cannot tell cleanup from nothing", left)
	}
	_ = exec.Command("ip", "netns", "del", Prefix+"stale").Run()
	mustRun(t, "ip", "netns", "add", Prefix+"stale")
	// Lose r1's registry records: its daemons must then be found through
	// FRR's pid files in the crashed lab's dir.
	lost, _ := filepath.Glob(filepath.Join(DefaultRunDir, "procs", "r1-*.pid"))
	if len(lost) != 3 {
		t.Fatalf("registry records of r1: %v, want zebra, bgpd, bfdd", lost)
	}
	for _, f := range lost {
		_ = os.Remove(f)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := CleanupStale(ctx, ""); err != nil {
		t.Fatal(err)
	}
	assertNoLeftovers(t, dir)
	_ = os.RemoveAll(dir)
}

// TestCrashedLabHelper is run by TestCleanupStale in a child process: it
// brings a lab up, reports its dir and waits to be killed.
func TestCrashedLabHelper(t *testing.T) {
	if os.Getenv("BGPLB_LAB_CRASH_HELPER") != "1" {
		t.Skip("helper for TestCleanupStale")
	}
	l, err := New(Options{Nodes: 1, KeepDir: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Up(context.Background()); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("LAB UP %s\n", l.Dir())
	select {}
}

func assertNoLeftovers(t *testing.T, dir string) {
	t.Helper()
	left, err := Leftovers("")
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if ps := procsMentioning(dir); len(ps) > 0 {
		t.Errorf("processes of lab %s still running: %v", dir, ps)
	}
}

// procsMentioning lists running processes whose command line contains s
// (every FRR daemon names its lab dir in its flags).
func procsMentioning(s string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), s) {
			continue
		}
		pid, err := strconv.Atoi(e.Name())
		if err == nil && processAlive(pid) {
			out = append(out, e.Name()+" "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

func mustRun(t *testing.T, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v: %s", argv, err, out)
	}
}

// waitRoutes waits until the router's kernel route for addr has want next hops.
func waitRoutes(t *testing.T, r *Router, addr netip.Addr, want int) {
	t.Helper()
	p := netip.PrefixFrom(addr, addr.BitLen())
	var hops []netip.Addr
	err := waitFor(context.Background(), 30*time.Second, func() error {
		var err error
		hops, err = r.KernelRoutes(p)
		if err != nil {
			return err
		}
		if len(hops) != want {
			return fmt.Errorf("%d next hops %v", len(hops), hops)
		}
		return nil
	})
	if err != nil {
		out, _ := r.Exec(context.Background(), "ip", "route", "show", "table", "all", "exact", p.String())
		t.Fatalf("%s: kernel route %s: want %d next hops: %v\n%s", r.Name, p, want, err, out)
	}
}

// restartFRRSpeaker replaces the node's FRR stand-in speaker, picking up
// the routers' current ASNs and the given password.
func restartFRRSpeaker(t *testing.T, l *Lab, n *Node, speakers map[string]*Proc, password string) {
	t.Helper()
	if p := speakers[n.Name]; p != nil {
		if err := p.Stop(2 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	speakers[n.Name] = startFRRSpeaker(t, l, n, []netip.Addr{svc4, svc6}, password)
}

// startFRRSpeaker runs a bgpd without zebra in the node namespace that
// announces addrs to both routers: a stand-in for the bgplb speaker that
// proves the routers' config (dynamic neighbors, families, ECMP, kernel
// install) independently of bgplb.
func startFRRSpeaker(t *testing.T, l *Lab, n *Node, addrs []netip.Addr, password string) *Proc {
	t.Helper()
	dir := filepath.Join(l.Dir(), n.Name+"-bgpd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	k1, _ := n.Link("r1")
	var b strings.Builder
	w := func(f string, a ...any) { fmt.Fprintf(&b, f+"\n", a...) }
	w("frr defaults datacenter")
	w("hostname %s", n.Name)
	w("router bgp %d", l.NodeASN())
	w(" bgp router-id %s", k1.Addr4)
	w(" no bgp ebgp-requires-policy")
	w(" no bgp default ipv4-unicast")
	w(" no bgp network import-check")
	// Advertise at once instead of after the update-group coalesce delay.
	w(" coalesce-time 0")
	var nb4, nb6 []string
	for _, r := range l.Routers() {
		nb4 = append(nb4, r.Addr4.String())
		nb6 = append(nb6, r.Addr6.String())
		for _, a := range []netip.Addr{r.Addr4, r.Addr6} {
			w(" neighbor %s remote-as %d", a, r.ASN())
			w(" neighbor %s timers connect 1", a)
			// Without zebra bgpd cannot see that the router is on a connected subnet.
			w(" neighbor %s disable-connected-check", a)
			if password != "" {
				w(" neighbor %s password %s", a, password)
			}
		}
	}
	for _, fam := range []struct {
		name string
		nbs  []string
		v4   bool
	}{{"ipv4", nb4, true}, {"ipv6", nb6, false}} {
		w(" address-family %s unicast", fam.name)
		for _, a := range addrs {
			if a.Is4() == fam.v4 {
				w("  network %s", netip.PrefixFrom(a, a.BitLen()))
			}
		}
		for _, nb := range fam.nbs {
			w("  neighbor %s activate", nb)
		}
		w(" exit-address-family")
	}
	w("exit")
	conf := filepath.Join(dir, "bgpd.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	uid, gid, err := frrIDs()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, conf} {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	p, err := n.Start("bgpd", filepath.Join(FRRDir, "bgpd"), "-Z", "-p", "0", "-P", "0",
		"-f", conf, "-i", filepath.Join(dir, "bgpd.pid"), "--vty_socket", dir, "--log", "stdout")
	if err != nil {
		t.Fatal(err)
	}
	// Stopped by the lab's Down, so it outlives the subtest that started it.
	return p
}
