package l2

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// iface answers on one interface. owned is replaced whole (copy on write)
// so the read loops look addresses up without a lock.
type iface struct {
	ifi *net.Interface
	log logr.Logger

	owned atomic.Pointer[map[netip.Addr]bool]

	arp *arp.Client
	ndp *ndp.Conn

	// groups counts the owned IPv6 addresses per solicited-node multicast
	// group joined (several addresses can share one group).
	groups  map[netip.Addr]int
	lastErr error

	closed     atomic.Bool
	wg         sync.WaitGroup
	arpReplies *atomic.Uint64
	naReplies  *atomic.Uint64
}

func newIface(ifi *net.Interface, log logr.Logger, arpReplies, naReplies *atomic.Uint64) *iface {
	ifc := &iface{ifi: ifi, log: log, groups: map[netip.Addr]int{}, arpReplies: arpReplies, naReplies: naReplies}
	empty := map[netip.Addr]bool{}
	ifc.owned.Store(&empty)
	return ifc
}

// start opens the sockets the interface's addresses allow: ARP needs an
// IPv4 address on the interface (the library requires one), NDP an IPv6
// link-local address (the source of its advertisements).
func (f *iface) start() error {
	var errs []error
	if c, err := arp.Dial(f.ifi); err == nil {
		f.arp = c
		f.wg.Add(1)
		go f.serveARP()
	} else {
		errs = append(errs, fmt.Errorf("ARP: %w", err))
	}
	if c, _, err := ndp.Listen(f.ifi, ndp.LinkLocal); err == nil {
		var filter ipv6.ICMPFilter
		filter.SetAll(true)
		filter.Accept(ipv6.ICMPTypeNeighborSolicitation)
		if err := c.SetICMPFilter(&filter); err != nil {
			_ = c.Close()
			errs = append(errs, fmt.Errorf("NDP filter: %w", err))
		} else {
			f.ndp = c
			f.wg.Add(1)
			go f.serveNDP()
		}
	} else {
		errs = append(errs, fmt.Errorf("NDP: %w", err))
	}
	if f.arp == nil && f.ndp == nil {
		return errors.Join(errs...)
	}
	for _, err := range errs {
		// One family missing is normal (an IPv4-only or IPv6-only link);
		// an address of that family then gets an error from set.
		f.log.V(1).Info("serving one family only", "reason", err.Error())
	}
	return nil
}

// set replaces the owned addresses and returns the ones added. It joins and
// leaves solicited-node multicast groups for IPv6 addresses so that
// solicitations for them reach the socket.
func (f *iface) set(addrs map[netip.Addr]bool) []netip.Addr {
	old := *f.owned.Load()
	next := make(map[netip.Addr]bool, len(addrs))
	var added []netip.Addr
	f.lastErr = nil
	for ip := range addrs {
		if ip.Is4() && f.arp == nil || ip.Is6() && f.ndp == nil {
			f.lastErr = errors.Join(f.lastErr, fmt.Errorf("interface %s cannot answer for %s (no %s socket: the interface lacks an address of that family)", f.ifi.Name, ip, family(ip)))
			continue
		}
		next[ip] = true
		if !old[ip] {
			added = append(added, ip)
			if ip.Is6() {
				f.join(ip)
			}
		}
	}
	for ip := range old {
		if !next[ip] && ip.Is6() {
			f.leave(ip)
		}
	}
	f.owned.Store(&next)
	return added
}

func (f *iface) joinErr() error { return f.lastErr }

func (f *iface) join(ip netip.Addr) {
	g, err := ndp.SolicitedNodeMulticast(ip)
	if err != nil {
		return
	}
	if f.groups[g]++; f.groups[g] == 1 {
		if err := f.ndp.JoinGroup(g); err != nil {
			f.lastErr = errors.Join(f.lastErr, fmt.Errorf("joining %s on %s: %w", g, f.ifi.Name, err))
		}
	}
}

func (f *iface) leave(ip netip.Addr) {
	g, err := ndp.SolicitedNodeMulticast(ip)
	if err != nil {
		return
	}
	if f.groups[g]--; f.groups[g] <= 0 {
		delete(f.groups, g)
		_ = f.ndp.LeaveGroup(g)
	}
}

// stale reports whether the interface was deleted or re-created since it
// was opened (its sockets are bound to the old index).
func (f *iface) stale() bool {
	ifi, err := net.InterfaceByName(f.ifi.Name)
	return err != nil || ifi.Index != f.ifi.Index
}

func (f *iface) isClosed() bool { return f.closed.Load() }

// close stops answering at once (the read loops check owned, which is
// emptied first) and closes the sockets.
func (f *iface) close() {
	empty := map[netip.Addr]bool{}
	f.owned.Store(&empty)
	f.closed.Store(true)
	if f.arp != nil {
		_ = f.arp.Close()
	}
	if f.ndp != nil {
		_ = f.ndp.Close()
	}
	f.wg.Wait()
}

// serveARP answers ARP requests for owned addresses until the socket closes.
func (f *iface) serveARP() {
	defer f.wg.Done()
	for {
		pkt, _, err := f.arp.Read()
		if err != nil {
			if f.readFailed(err) {
				return
			}
			continue
		}
		if pkt.Operation != arp.OperationRequest || !(*f.owned.Load())[pkt.TargetIP] {
			continue
		}
		// A request we sent ourselves (gratuitous) needs no answer.
		if pkt.SenderIP == pkt.TargetIP {
			continue
		}
		if err := f.arp.Reply(pkt, f.ifi.HardwareAddr, pkt.TargetIP); err != nil {
			f.log.V(1).Info("ARP reply failed", "address", pkt.TargetIP, "error", err.Error())
			continue
		}
		f.arpReplies.Add(1)
	}
}

// serveNDP answers neighbor solicitations for owned addresses until the
// socket closes.
func (f *iface) serveNDP() {
	defer f.wg.Done()
	for {
		msg, _, src, err := f.ndp.ReadFrom()
		if err != nil {
			if f.readFailed(err) {
				return
			}
			continue
		}
		ns, ok := msg.(*ndp.NeighborSolicitation)
		if !ok || !(*f.owned.Load())[ns.TargetAddress] {
			continue
		}
		na := &ndp.NeighborAdvertisement{
			Solicited: true, Override: true, TargetAddress: ns.TargetAddress,
			Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: f.ifi.HardwareAddr}},
		}
		dst := src
		if src.IsUnspecified() {
			// Duplicate address detection: answer to all nodes, unsolicited
			// (RFC 4861 7.2.4).
			na.Solicited, dst = false, netip.IPv6LinkLocalAllNodes()
		}
		if err := f.ndp.WriteTo(na, nil, dst); err != nil {
			f.log.V(1).Info("neighbor advertisement failed", "address", ns.TargetAddress, "error", err.Error())
			continue
		}
		f.naReplies.Add(1)
	}
}

// readFailed reports whether a read loop must end after err. A packet
// that does not parse is skipped; a socket error (the link went down) is
// retried after a pause, since the socket works again when the link
// comes back.
func (f *iface) readFailed(err error) bool {
	if f.closed.Load() || errors.Is(err, net.ErrClosed) {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// gratuitous tells the segment that ip is now here: a gratuitous ARP
// (a broadcast request for ip from ip, which Linux and most switches use
// to update their tables) or an unsolicited neighbor advertisement with
// the override flag to all nodes (RFC 4861 7.2.6).
func (f *iface) gratuitous(ip netip.Addr) error {
	if ip.Is4() {
		p, err := arp.NewPacket(arp.OperationRequest, f.ifi.HardwareAddr, ip, ethernet.Broadcast, ip)
		if err != nil {
			return fmt.Errorf("building gratuitous ARP: %w", err)
		}
		// No write deadline: it would stay on the socket and fail the
		// replies sent after it.
		return f.arp.WriteTo(p, ethernet.Broadcast)
	}
	na := &ndp.NeighborAdvertisement{
		Override: true, TargetAddress: ip,
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: f.ifi.HardwareAddr}},
	}
	return f.ndp.WriteTo(na, nil, netip.IPv6LinkLocalAllNodes())
}

func family(ip netip.Addr) string {
	if ip.Is4() {
		return "IPv4"
	}
	return "IPv6"
}
