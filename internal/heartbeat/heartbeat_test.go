package heartbeat

import (
	"context"
	"encoding/json"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

func start(t *testing.T, node string, changes *atomic.Int32) (*Detector, context.CancelFunc) {
	t.Helper()
	d, err := New(Options{Node: node, Listen: "127.0.0.1:0", OnChange: func() { changes.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go d.Run(ctx)
	t.Cleanup(cancel)
	return d, cancel
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// Two speakers on loopback: they hear each other, see each other's
// payload, and one stopping is noticed within Timeout plus an interval.
func TestTwoPeersOverUDP(t *testing.T) {
	var ca, cb atomic.Int32
	a, _ := start(t, "a", &ca)
	b, stopB := start(t, "b", &cb)
	a.SetPeers(map[string][]netip.AddrPort{"a": {a.LocalAddr()}, "b": {b.LocalAddr()}})
	b.SetPeers(map[string][]netip.AddrPort{"a": {a.LocalAddr()}, "b": {b.LocalAddr()}})
	if _, self := a.Peers()["a"]; self {
		t.Fatal("a lists itself as a peer")
	}
	b.SetPayload(json.RawMessage(`{"links":["eth0"]}`))
	waitFor(t, "a hears b's payload", time.Second, func() bool { return string(a.Peers()["b"].Payload) == `{"links":["eth0"]}` })
	// A payload change reaches the peer at once, not on the next tick.
	b.SetPayload(json.RawMessage(`{"links":[]}`))
	took := waitFor(t, "a hears b's new payload", time.Second, func() bool { return string(a.Peers()["b"].Payload) == `{"links":[]}` })
	t.Logf("payload change propagated in %v", took)
	if ca.Load() == 0 {
		t.Fatal("a's OnChange never called")
	}

	stopB()
	stopped := time.Now()
	waitFor(t, "a sees b dead", 2*time.Second, func() bool { return !a.Peers()["b"].Alive })
	took = time.Since(stopped)
	t.Logf("b's death seen after %v", took.Round(time.Millisecond))
	if took < 400*time.Millisecond {
		t.Fatalf("b declared dead after %v, before the 500ms timeout could pass", took)
	}
}

func TestNewPeerPresumedAliveForATimeout(t *testing.T) {
	var c atomic.Int32
	a, _ := start(t, "a", &c)
	// A peer address nobody listens on.
	a.SetPeers(map[string][]netip.AddrPort{"ghost": {netip.MustParseAddrPort("127.0.0.1:9")}})
	if !a.Peers()["ghost"].Alive {
		t.Fatal("a new peer must count as alive until it has been silent for the timeout")
	}
	waitFor(t, "ghost dead", 2*time.Second, func() bool { return !a.Peers()["ghost"].Alive })
}

func TestHeartbeatsFromStrangersIgnored(t *testing.T) {
	d := &Detector{opts: Options{Timeout: time.Second}, peers: map[string]*peerState{}}
	if d.heard(message{Node: "stranger"}, time.Now()) {
		t.Fatal("a heartbeat of a node that is not a peer changed the state")
	}
	if len(d.Peers()) != 0 {
		t.Fatal("a stranger became a peer")
	}
}

// After this process was frozen longer than the timeout, the silence of
// the peers is its own: they get a fresh timeout instead of being
// declared dead (else a thawed speaker would take every address).
func TestFreezeOfThisProcessDoesNotKillPeers(t *testing.T) {
	t0 := time.Now()
	d := &Detector{opts: Options{Timeout: 500 * time.Millisecond, Interval: 100 * time.Millisecond},
		peers: map[string]*peerState{"b": {alive: true, lastSeen: t0}}, lastTick: t0}
	if d.expire(t0.Add(100 * time.Millisecond)) {
		t.Fatal("b expired after 100ms")
	}
	// Frozen for 5 s: the next tick comes late. It is a change (the owner
	// must re-announce: another node may have taken over meanwhile), but b
	// stays alive.
	thaw := t0.Add(5 * time.Second)
	gen := d.Generation()
	if !d.expire(thaw) || !d.Peers()["b"].Alive || d.Generation() != gen+1 {
		t.Fatal("the first tick after a freeze must report a change, bump the generation and keep b alive")
	}
	// b really is silent: dead once a timeout has passed since the thaw,
	// ticking every interval again.
	for ms := 100; ms <= 500; ms += 100 {
		if d.expire(thaw.Add(time.Duration(ms)*time.Millisecond)) || !d.Peers()["b"].Alive {
			t.Fatalf("b dead %dms after the thaw", ms)
		}
	}
	if !d.expire(thaw.Add(600*time.Millisecond)) || d.Peers()["b"].Alive || d.Generation() != gen+2 {
		t.Fatal("b still alive 600ms after the thaw without a heartbeat (or no new generation)")
	}
}

func FuzzMessage(f *testing.F) {
	f.Add([]byte(`{"node":"a","payload":{"links":[]}}`))
	f.Add([]byte(`{"node":""}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := &Detector{opts: Options{Timeout: time.Second}, peers: map[string]*peerState{"a": {}}}
		var m message
		if json.Unmarshal(b, &m) == nil {
			d.heard(m, time.Now())
		}
	})
}
