package bgp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/osrg/gobgp/v4/pkg/packet/bfd"
)

// GoBGP's BFD server binds the wildcard UDP port 3784 with SO_REUSEADDR. Two
// GoBGP BFD instances in one network namespace therefore cannot both
// receive: the kernel hands every packet to the most recently bound socket
// (verified with two BgpServers on 127.0.0.1/127.0.0.2: the newer one
// received everything, including its own packets, the older nothing). So
// the router side of the BFD test is not GoBGP but the small RFC 5880 peer
// below, bound to the router's own address: a specific address wins over
// the speaker's wildcard socket, while its replies to 127.0.0.1:3784 reach
// the speaker. The lab tests BFD against FRR's bfdd.

// bfdResponder is a minimal RFC 5880 asynchronous-mode BFD system.
type bfdResponder struct {
	t      testing.TB
	conn   *net.UDPConn
	peer   *net.UDPAddr
	myDisc uint32

	mu       sync.Mutex
	state    bfd.StateType
	yourDisc uint32
	last     bfd.BFDHeader // last packet received from the speaker
	received int

	done chan struct{}
	wg   sync.WaitGroup
}

func startBFDResponder(t testing.TB, local, speaker netip.Addr) *bfdResponder {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			// The speaker's wildcard socket on 3784 also uses SO_REUSEADDR.
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp", netip.AddrPortFrom(local, 3784).String())
	if err != nil {
		t.Fatalf("BFD responder: %v", err)
	}
	r := &bfdResponder{
		t: t, conn: pc.(*net.UDPConn), myDisc: 0x5eed,
		peer:  net.UDPAddrFromAddrPort(netip.AddrPortFrom(speaker, 3784)),
		state: bfd.StateDown, done: make(chan struct{}),
	}
	r.wg.Add(2)
	go r.rx()
	go r.tx()
	t.Cleanup(r.stop)
	return r
}

// stop makes the responder vanish silently, like a dead router.
func (r *bfdResponder) stop() {
	select {
	case <-r.done:
		return
	default:
	}
	close(r.done)
	r.conn.Close()
	r.wg.Wait()
}

func (r *bfdResponder) rx() {
	defer r.wg.Done()
	buf := make([]byte, 512)
	for {
		n, _, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		var h bfd.BFDHeader
		if h.UnmarshalBinary(buf[:n]) != nil {
			continue
		}
		r.mu.Lock()
		r.last, r.received = h, r.received+1
		r.yourDisc = h.MyDiscriminator
		switch h.State { // RFC 5880 section 6.8.6, without AdminDown handling
		case bfd.StateDown, bfd.StateAdminDown:
			if r.state == bfd.StateDown {
				r.state = bfd.StateInit
			} else if r.state == bfd.StateUp {
				r.state = bfd.StateDown
			}
		case bfd.StateInit:
			if r.state != bfd.StateUp {
				r.state = bfd.StateUp
			}
		case bfd.StateUp:
			if r.state == bfd.StateInit {
				r.state = bfd.StateUp
			}
		}
		final := h.Poll
		r.mu.Unlock()
		if final {
			r.send(true)
		}
	}
}

func (r *bfdResponder) tx() {
	defer r.wg.Done()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-tick.C:
			r.send(false)
		}
	}
}

func (r *bfdResponder) send(final bool) {
	r.mu.Lock()
	h := bfd.BFDHeader{
		Version: 1, State: r.state, Final: final, DetectTimeMultiplier: 3,
		MyDiscriminator: r.myDisc, YourDiscriminator: r.yourDisc,
		DesiredMinTxInterval: 100000, RequiredMinRxInterval: 100000,
	}
	r.mu.Unlock()
	b, err := h.MarshalBinary()
	if err == nil {
		_, _ = r.conn.WriteToUDP(b, r.peer)
	}
}

func (r *bfdResponder) snapshot() (bfd.StateType, bfd.BFDHeader, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state, r.last, r.received
}

// BFD comes up with the configured intervals, an interval change does not
// reset the BGP session, and a silent router is detected: BFD goes down and
// the BGP session is reset.
func TestBFD(t *testing.T) {
	const routerAddr = "127.0.0.15"
	r := startRouter(t, routerAddr, 65090, "198.51.100.15")
	r.addNeighbor(speakerV4, speakerASN, neighborOpts{})
	resp := startBFDResponder(t, netip.MustParseAddr(routerAddr), speakerV4)
	s := newSpeaker(t, Options{})

	p := r.peerFor("tor")
	p.BFD = BFD{Enabled: true, MinRx: 150 * time.Millisecond, MinTx: 120 * time.Millisecond, Multiplier: 4}
	st := State{
		ASN: speakerASN, RouterID: netip.MustParseAddr(speakerRouterID), Peers: []Peer{p},
		Paths: []Path{path("192.0.2.90/32", to("tor"))},
	}
	mustApply(t, s, st)
	waitEstablished(t, s, "tor")
	eventually(t, waitLong, "BFD up with the configured intervals", func() error {
		state, last, _ := resp.snapshot()
		if state != bfd.StateUp || last.State != bfd.StateUp {
			return fmt.Errorf("responder %v, speaker says %v", state, last.State)
		}
		if last.RequiredMinRxInterval != 150000 || last.DesiredMinTxInterval != 120000 || last.DetectTimeMultiplier != 4 {
			return fmt.Errorf("speaker advertises rx=%dus tx=%dus mult=%d", last.RequiredMinRxInterval, last.DesiredMinTxInterval, last.DetectTimeMultiplier)
		}
		if ps := peerStatus(t, s, "tor"); ps.BFDState != BFDUp {
			return fmt.Errorf("Status BFD state %q", ps.BFDState)
		}
		return nil
	})

	// New intervals: BFD renegotiates, BGP stays up.
	opens := r.receivedOpens(speakerV4)
	st.Peers[0].BFD.MinTx = 200 * time.Millisecond
	mustApply(t, s, st)
	eventually(t, waitLong, "BFD up with the new transmit interval", func() error {
		state, last, _ := resp.snapshot()
		if last.DesiredMinTxInterval != 200000 || state != bfd.StateUp || last.State != bfd.StateUp {
			return fmt.Errorf("responder %v, speaker %v tx=%dus", state, last.State, last.DesiredMinTxInterval)
		}
		if ps := peerStatus(t, s, "tor"); ps.BFDState != BFDUp {
			return fmt.Errorf("Status BFD state %q", ps.BFDState)
		}
		return nil
	})
	if err := r.established(speakerV4); err != nil || r.receivedOpens(speakerV4) != opens {
		t.Errorf("a BFD change reset the BGP session (%v)", err)
	}

	// The router's BFD dies: the speaker detects it and resets BGP.
	resp.stop()
	eventually(t, waitLong, "BFD down and BGP session reset", func() error {
		if ps := peerStatus(t, s, "tor"); ps.BFDState != BFDDown {
			return fmt.Errorf("Status BFD state %q", ps.BFDState)
		}
		if r.receivedOpens(speakerV4) == opens && r.established(speakerV4) == nil {
			return errors.New("BGP session not reset")
		}
		return nil
	})
	if ps := peerStatus(t, s, "tor"); ps.LastError == "" {
		t.Errorf("no LastError after BFD reset the session: %+v", ps)
	} else {
		t.Logf("status after BFD failure: %+v", ps)
	}
}
