package l2_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"

	"github.com/bgplb/bgplb/l2"
	"github.com/bgplb/bgplb/test/lab"
)

// A real segment in network namespaces: a client namespace with a bridge,
// and two "node" namespaces r1 and r2 on it, each with eth0. The Service
// addresses are on the nodes' loopback (so a ping that reaches a node is
// answered) with arp_ignore=1, so the kernel itself never answers ARP or
// NDP for them: only the responder can make the client reach them.
// Needs root; run under flock /tmp/bgplb-lab.lock with the lab suites.

var (
	vip4 = netip.MustParseAddr("198.51.100.200")
	vip6 = netip.MustParseAddr("2001:db8:100::200")
)

type segment struct {
	t      *testing.T
	client string
	nodes  []string
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newSegment(t *testing.T) *segment {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, raw sockets)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
	p := fmt.Sprintf("bgplb-l2t%d-", os.Getpid())
	s := &segment{t: t, client: p + "c", nodes: []string{p + "r1", p + "r2"}}
	t.Cleanup(func() {
		for _, ns := range append([]string{s.client}, s.nodes...) {
			_ = exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	noDAD := func(ns string) {
		for _, k := range []string{"all", "default"} {
			sh(t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf."+k+".accept_dad=0")
		}
	}
	sh(t, "ip", "netns", "add", s.client)
	noDAD(s.client)
	sh(t, "ip", "-n", s.client, "link", "add", "br0", "type", "bridge")
	sh(t, "ip", "-n", s.client, "addr", "add", "198.51.100.1/24", "dev", "br0")
	sh(t, "ip", "-n", s.client, "addr", "add", "2001:db8:100::1/64", "dev", "br0", "nodad")
	sh(t, "ip", "-n", s.client, "link", "set", "br0", "up")
	for i, ns := range s.nodes {
		sh(t, "ip", "netns", "add", ns)
		noDAD(ns)
		sh(t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1")
		port := fmt.Sprintf("p%d", i+1)
		sh(t, "ip", "-n", s.client, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
		sh(t, "ip", "-n", s.client, "link", "set", port, "master", "br0", "up")
		sh(t, "ip", "-n", ns, "addr", "add", fmt.Sprintf("198.51.100.%d/24", 11+i), "dev", "eth0")
		sh(t, "ip", "-n", ns, "addr", "add", fmt.Sprintf("2001:db8:100::%d/64", 11+i), "dev", "eth0", "nodad")
		sh(t, "ip", "-n", ns, "link", "set", "eth0", "up")
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
		sh(t, "ip", "-n", ns, "addr", "add", vip4.String()+"/32", "dev", "lo")
		sh(t, "ip", "-n", ns, "addr", "add", vip6.String()+"/128", "dev", "lo")
	}
	// The link-local address the NDP socket binds to must be in place.
	time.Sleep(200 * time.Millisecond)
	return s
}

func (s *segment) mac(node string) string {
	var mac string
	if err := lab.InNetns(node, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr.String()
		return nil
	}); err != nil {
		s.t.Fatal(err)
	}
	return mac
}

// helperEnv marks the test binary re-executed as a node's responder
// process inside the node's namespace (Go resolves an IPv6 zone like
// "eth0" in the namespace of whatever thread runs, so sockets of another
// namespace must be driven from a process living in it, as the speaker
// does).
const helperEnv = "BGPLB_L2_RESPONDER_HELPER"

// intervalEnv sets the helper's AnnounceInterval (default 100ms).
const intervalEnv = "BGPLB_L2_TEST_ANNOUNCE_INTERVAL"

// proc is a responder process in a node namespace, driven line by line.
type proc struct {
	t   *testing.T
	in  io.WriteCloser
	out *bufio.Scanner
}

// responder starts a responder process in the node's namespace.
func (s *segment) responder(node string) *proc {
	cmd := exec.Command("ip", "netns", "exec", node, os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = in.Close(); _ = cmd.Wait() })
	return &proc{t: s.t, in: in, out: bufio.NewScanner(out)}
}

// do sends one command and returns the answer line.
func (p *proc) do(cmd string) string {
	p.t.Helper()
	if _, err := fmt.Fprintln(p.in, cmd); err != nil {
		p.t.Fatalf("%s: %v", cmd, err)
	}
	if !p.out.Scan() {
		p.t.Fatalf("%s: responder process gone: %v", cmd, p.out.Err())
	}
	ans := p.out.Text()
	if strings.HasPrefix(ans, "error ") {
		p.t.Fatalf("%s: %s", cmd, ans)
	}
	return ans
}

func (p *proc) set(addrs ...netip.Addr) {
	p.t.Helper()
	var ss []string
	for _, a := range addrs {
		ss = append(ss, a.String())
	}
	p.do("set " + strings.Join(ss, ","))
}

func (p *proc) stats() l2.Stats {
	p.t.Helper()
	var st l2.Stats
	if err := json.Unmarshal([]byte(p.do("stats")), &st); err != nil {
		p.t.Fatal(err)
	}
	return st
}

// TestHelperProcess is the responder process (see helperEnv); it answers
// on eth0 of its namespace.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("only run as a helper process")
	}
	interval := 100 * time.Millisecond
	if v, err := time.ParseDuration(os.Getenv(intervalEnv)); err == nil {
		interval = v
	}
	r := l2.New(l2.Options{AnnounceInterval: interval,
		Logger: funcr.New(func(p, a string) { fmt.Fprintln(os.Stderr, p, a) }, funcr.Options{Verbosity: 1})})
	defer r.Close()
	var changes atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		var ans string
		var err error
		switch f[0] {
		case "set":
			want := map[netip.Addr][]string{}
			if len(f) > 1 {
				for _, a := range strings.Split(f[1], ",") {
					want[netip.MustParseAddr(a)] = []string{"eth0"}
				}
			}
			err, ans = r.Set(want), "ok"
		case "stats":
			b, _ := json.Marshal(r.Stats())
			ans = string(b)
		case "links":
			var ls []l2.Link
			ls, err = l2.Links()
			ans = fmt.Sprint(ls)
		case "watch":
			err, ans = l2.WatchLinks(ctx, func() { changes.Add(1) }, func(error) {}), "ok"
		case "changes":
			ans = fmt.Sprint(changes.Load())
		}
		if err != nil {
			ans = "error " + strings.ReplaceAll(err.Error(), "\n", "; ")
		}
		fmt.Println(ans)
	}
}

// ping sends one echo request from the client; it succeeds only if the
// address resolved to a node's MAC and that node answered.
func (s *segment) ping(ip netip.Addr) error {
	return exec.Command("ip", "netns", "exec", s.client, "ping", "-c1", "-W1", ip.String()).Run()
}

// neighMAC is the client's neighbor table entry for ip ("" when none is
// resolved), as `ip neigh` shows it to a user.
func (s *segment) neighMAC(ip netip.Addr) string {
	out := sh(s.t, "ip", "-n", s.client, "neigh", "show", ip.String())
	f := strings.Fields(out)
	for i := range f {
		if f[i] == "lladdr" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

func (s *segment) flushNeigh() {
	sh(s.t, "ip", "-n", s.client, "neigh", "flush", "dev", "br0")
}

func TestResponderAnswersOnlyWhileOwning(t *testing.T) {
	s := newSegment(t)
	r1 := s.responder(s.nodes[0])
	mac1 := s.mac(s.nodes[0])

	// Control: nobody answers for the addresses, not even the kernel of
	// the nodes that have them on their loopback.
	for _, ip := range []netip.Addr{vip4, vip6} {
		if err := s.ping(ip); err == nil {
			t.Fatalf("%s reachable before any node owns it: the kernel answers for it and the test proves nothing", ip)
		}
	}

	r1.set(vip4, vip6)
	for _, ip := range []netip.Addr{vip4, vip6} {
		s.flushNeigh()
		if err := s.ping(ip); err != nil {
			t.Fatalf("%s not reachable while r1 owns it: %v", ip, err)
		}
		if got := s.neighMAC(ip); got != mac1 {
			t.Fatalf("client resolves %s to %q, want r1's %s", ip, got, mac1)
		}
	}
	if st := r1.stats(); st.ARPReplies == 0 || st.NAReplies == 0 {
		t.Fatalf("stats %+v: want ARP and NA replies counted", st)
	}
	// Still answering long after the takeover burst (a deadline left on
	// the socket by the burst once failed every later reply).
	time.Sleep(1500 * time.Millisecond)
	for _, ip := range []netip.Addr{vip4, vip6} {
		s.flushNeigh()
		if err := s.ping(ip); err != nil {
			t.Fatalf("%s not reachable 1.5s after the takeover: %v", ip, err)
		}
	}

	// Release: r1 stops answering at once.
	r1.set()
	for _, ip := range []netip.Addr{vip4, vip6} {
		s.flushNeigh()
		if err := s.ping(ip); err == nil {
			t.Fatalf("%s still reachable after release", ip)
		}
		if got := s.neighMAC(ip); got != "" {
			t.Fatalf("client resolved %s to %s after release", ip, got)
		}
	}
}

func TestTakeoverUpdatesClientsWithoutAsking(t *testing.T) {
	s := newSegment(t)
	r1, r2 := s.responder(s.nodes[0]), s.responder(s.nodes[1])
	mac1, mac2 := s.mac(s.nodes[0]), s.mac(s.nodes[1])

	r1.set(vip4, vip6)
	for _, ip := range []netip.Addr{vip4, vip6} {
		if err := s.ping(ip); err != nil {
			t.Fatalf("%s via r1: %v", ip, err)
		}
		if got := s.neighMAC(ip); got != mac1 {
			t.Fatalf("%s resolves to %q, want r1 %s", ip, got, mac1)
		}
	}
	// Failover: r1 lets go, r2 takes over. The client must learn r2's MAC
	// from the gratuitous ARP / unsolicited NA alone, before it would
	// re-resolve by itself (its entries are fresh: reachable for ~30 s).
	start := time.Now()
	r1.set()
	r2.set(vip4, vip6)
	for _, ip := range []netip.Addr{vip4, vip6} {
		deadline := time.Now().Add(2 * time.Second)
		for s.neighMAC(ip) != mac2 {
			if time.Now().After(deadline) {
				t.Fatalf("client still has %s at %q 2s after the takeover, want r2 %s (r2 stats %+v)", ip, s.neighMAC(ip), mac2, r2.stats())
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("client's neighbor entry for %s moved to r2 after %v", ip, time.Since(start).Round(time.Millisecond))
		if err := s.ping(ip); err != nil {
			t.Fatalf("%s via r2: %v", ip, err)
		}
	}
	time.Sleep(300 * time.Millisecond) // the rest of the burst
	if st := r2.stats(); st.GratuitousARP != 3 || st.UnsolicitedNA != 3 {
		t.Fatalf("r2 stats %+v: want 3 gratuitous ARPs and 3 unsolicited NAs", st)
	}
	if st := r1.stats(); st.GratuitousARP < 1 || st.GratuitousARP > 3 {
		t.Fatalf("r1 stats %+v: want 1 to 3 gratuitous ARPs", st)
	}
}

// A release ends the takeover burst: what was not sent yet is not sent.
func TestReleaseCutsTheBurstShort(t *testing.T) {
	s := newSegment(t)
	t.Setenv(intervalEnv, "500ms")
	r1 := s.responder(s.nodes[0])
	r1.set(vip4, vip6)
	// The IPv6 address goes; the IPv4 one keeps the interface open.
	r1.set(vip4)
	// Past the whole burst (3 at 0, 500ms, 1s): without the cut the IPv6
	// address would have had 3 unsolicited NAs.
	time.Sleep(1300 * time.Millisecond)
	if st := r1.stats(); st.UnsolicitedNA > 1 || st.GratuitousARP != 3 {
		t.Fatalf("stats %+v: want at most the first unsolicited NA, and the kept IPv4 address's 3 gratuitous ARPs", st)
	}
}

func TestLinksAndWatch(t *testing.T) {
	s := newSegment(t)
	p := s.responder(s.nodes[0])
	if got, want := p.do("links"), "[eth0=198.51.100.11/24,2001:db8:100::11/64]"; got != want {
		t.Fatalf("links %s, want %s", got, want)
	}
	p.do("watch")
	// The switch side of the cable goes down: the node's eth0 loses its
	// carrier, which it must notice within milliseconds.
	start := time.Now()
	sh(t, "ip", "-n", s.client, "link", "set", "p1", "down")
	for p.do("changes") == "0" {
		if time.Since(start) > time.Second {
			t.Fatal("no link change seen 1s after the carrier went away")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("carrier loss seen after %v", time.Since(start).Round(time.Millisecond))
	if got := p.do("links"); got != "[]" {
		t.Fatalf("links after carrier loss: %s, want none", got)
	}
	sh(t, "ip", "-n", s.client, "link", "set", "p1", "up")
	deadline := time.Now().Add(2 * time.Second)
	for p.do("links") == "[]" {
		if time.Now().After(deadline) {
			t.Fatal("eth0 not back up")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
