// Package heartbeat is the L2 mode's failure detector: every speaker sends
// a small UDP datagram to every other L2 speaker each Interval, directly
// over the node network, and counts a peer dead when it has not heard from
// it for Timeout. The API server is not in the path, so a frozen node, a
// dead speaker or a cut link is noticed within Timeout (500 ms by
// default) whatever the API server does, and a node cut off from the API
// server only is still heard.
//
// A heartbeat carries a payload the caller chooses (the speaker sends its
// links that are up, so that every speaker sees every node's link state
// and computes the same owners); a changed payload is sent at once instead
// of waiting for the next tick.
//
// Heartbeats are not authenticated: anyone who can send UDP to the port on
// the node network can keep a dead node "alive" or fake link states. The
// port should be reachable from the nodes only.
package heartbeat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// Options configure a Detector.
type Options struct {
	// Node is this node's name, sent in every heartbeat.
	Node string
	// Listen is the UDP address to receive heartbeats on (e.g. [::]:7947).
	Listen string
	// Interval between heartbeats (default 100ms).
	Interval time.Duration
	// Timeout after which a silent peer is dead (default 500ms).
	Timeout time.Duration
	// OnChange is called (from the detector's goroutine) when a peer
	// becomes alive or dead or its payload changes. It must not block.
	OnChange func()
	Logger   logr.Logger
}

// Peer is what the detector knows of another node.
type Peer struct {
	Alive bool
	// Payload is the last payload heard from the peer.
	Payload json.RawMessage
}

// message is the datagram.
type message struct {
	Node    string          `json:"node"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

type peerState struct {
	addrs    []netip.AddrPort
	lastSeen time.Time
	alive    bool
	payload  json.RawMessage
}

// Detector sends and receives heartbeats. Its methods are safe for
// concurrent use.
type Detector struct {
	opts Options
	conn *net.UDPConn

	mu      sync.Mutex
	peers   map[string]*peerState
	payload json.RawMessage
	kick    chan struct{}
	// lastTick is when the send loop last ran; a much later tick means
	// this process was frozen (SIGSTOP, a stalled VM) and its view of the
	// peers is stale.
	lastTick time.Time
	// generation counts membership events: a peer found alive or dead, a
	// freeze of this process.
	generation uint64
}

// Generation increases whenever a peer becomes alive or dead and when this
// process wakes from a freeze: the moments at which another node may have
// taken over an address this node owns, so the owner re-announces.
func (d *Detector) Generation() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.generation
}

// New binds the UDP socket.
func New(opts Options) (*Detector, error) {
	if opts.Interval <= 0 {
		opts.Interval = 100 * time.Millisecond
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 500 * time.Millisecond
	}
	if opts.OnChange == nil {
		opts.OnChange = func() {}
	}
	addr, err := net.ResolveUDPAddr("udp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("heartbeat listen address %q: %w", opts.Listen, err)
	}
	conn, err := net.ListenUDP("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for heartbeats on %s: %w", opts.Listen, err)
	}
	return &Detector{opts: opts, conn: conn, peers: map[string]*peerState{}, kick: make(chan struct{}, 1)}, nil
}

// LocalAddr is the address heartbeats are received on.
func (d *Detector) LocalAddr() netip.AddrPort {
	return d.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// SetPeers sets the nodes to exchange heartbeats with and their
// addresses. A new peer counts as alive until it has been silent for
// Timeout: a speaker that just started must not take every address from
// peers it has not heard yet.
func (d *Detector) SetPeers(peers map[string][]netip.AddrPort) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	for name := range d.peers {
		if _, ok := peers[name]; !ok {
			delete(d.peers, name)
		}
	}
	for name, addrs := range peers {
		if name == d.opts.Node {
			continue
		}
		p := d.peers[name]
		if p == nil {
			p = &peerState{lastSeen: now, alive: true}
			d.peers[name] = p
		}
		p.addrs = addrs
	}
}

// SetPayload sets what the heartbeats carry and sends it at once.
func (d *Detector) SetPayload(payload json.RawMessage) {
	d.mu.Lock()
	d.payload = payload
	d.mu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Peers returns the state of every peer.
func (d *Detector) Peers() map[string]Peer {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]Peer, len(d.peers))
	for name, p := range d.peers {
		out[name] = Peer{Alive: p.alive, Payload: p.payload}
	}
	return out
}

// Run sends, receives and times out until ctx ends, then closes the socket.
func (d *Detector) Run(ctx context.Context) {
	go func() {
		<-ctx.Done()
		_ = d.conn.Close()
	}()
	go d.receive()
	t := time.NewTicker(d.opts.Interval)
	defer t.Stop()
	d.mu.Lock()
	d.lastTick = time.Now()
	d.mu.Unlock()
	for {
		d.send()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.kick:
		}
		if d.expire(time.Now()) {
			d.opts.OnChange()
		}
	}
}

// send sends one heartbeat to every address of every peer.
func (d *Detector) send() {
	d.mu.Lock()
	b, err := json.Marshal(message{Node: d.opts.Node, Payload: d.payload})
	var dst []netip.AddrPort
	for _, p := range d.peers {
		dst = append(dst, p.addrs...)
	}
	d.mu.Unlock()
	if err != nil {
		d.opts.Logger.Error(err, "encoding a heartbeat")
		return
	}
	for _, a := range dst {
		if _, err := d.conn.WriteToUDPAddrPort(b, a); err != nil && !errors.Is(err, net.ErrClosed) {
			d.opts.Logger.V(2).Info("sending a heartbeat failed", "to", a, "error", err.Error())
		}
	}
}

// expire marks peers silent for Timeout dead and reports whether any
// changed. After a freeze of this process (a tick much later than the
// interval) every peer gets a fresh Timeout instead: the silence was ours.
func (d *Detector) expire(now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	frozen := now.Sub(d.lastTick) > d.opts.Timeout/2
	d.lastTick = now
	changed := frozen
	if frozen {
		d.generation++
	}
	for _, p := range d.peers {
		if frozen {
			p.lastSeen = now
			continue
		}
		if p.alive && now.Sub(p.lastSeen) > d.opts.Timeout {
			p.alive, changed = false, true
			d.generation++
		}
	}
	return changed
}

// receive reads heartbeats until the socket closes.
func (d *Detector) receive() {
	buf := make([]byte, 64<<10)
	for {
		n, _, err := d.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		var m message
		if err := json.Unmarshal(buf[:n], &m); err != nil {
			continue
		}
		if d.heard(m, time.Now()) {
			d.opts.OnChange()
		}
	}
}

// heard records a heartbeat and reports whether the peer's state changed.
// Heartbeats from nodes that are not peers are ignored.
func (d *Detector) heard(m message, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.peers[m.Node]
	if p == nil {
		return false
	}
	p.lastSeen = now
	changed := !p.alive || string(p.payload) != string(m.Payload)
	if !p.alive {
		d.generation++
	}
	p.alive = true
	p.payload = append(p.payload[:0:0], m.Payload...)
	return changed
}
