package l2

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
)

// Options configure a Responder.
type Options struct {
	Logger logr.Logger
	// Announcements is how many gratuitous ARPs / unsolicited neighbor
	// advertisements are sent when the node takes an address over
	// (default 3): one is easily lost, and some switches and hosts only
	// update on a second.
	Announcements int
	// AnnounceInterval spaces them (default 200ms).
	AnnounceInterval time.Duration
}

// Stats counts what the responder sent, for metrics.
type Stats struct {
	// GratuitousARP and UnsolicitedNA sent on takeovers.
	GratuitousARP, UnsolicitedNA uint64
	// ARPReplies and NAReplies answered to requests and solicitations.
	ARPReplies, NAReplies uint64
}

// Responder answers for a set of addresses on a set of interfaces. Its
// methods are safe for concurrent use.
type Responder struct {
	opts Options

	mu     sync.Mutex
	ifaces map[string]*iface
	closed bool

	// ctx ends the announcement bursts on Close.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	garp, una, arpReplies, naReplies atomic.Uint64
}

// New returns a Responder that answers for nothing yet.
func New(opts Options) *Responder {
	if opts.Announcements <= 0 {
		opts.Announcements = 3
	}
	if opts.AnnounceInterval <= 0 {
		opts.AnnounceInterval = 200 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Responder{opts: opts, ifaces: map[string]*iface{}, ctx: ctx, cancel: cancel}
}

// Stats returns the counters so far.
func (r *Responder) Stats() Stats {
	return Stats{GratuitousARP: r.garp.Load(), UnsolicitedNA: r.una.Load(), ARPReplies: r.arpReplies.Load(), NAReplies: r.naReplies.Load()}
}

// Set makes the responder answer for exactly the given addresses, each on
// the interfaces listed for it: it starts answering for new ones at once,
// announces them (gratuitous ARP or unsolicited NA, in a spaced burst),
// and stops answering for the others. Interfaces are opened on first use
// and closed when no address needs them; an interface that was re-created
// (new index) is reopened. Errors name the interfaces that could not be
// served; the others are served regardless.
func (r *Responder) Set(want map[netip.Addr][]string) error {
	byIface := map[string]map[netip.Addr]bool{}
	for ip, names := range want {
		for _, n := range names {
			if byIface[n] == nil {
				byIface[n] = map[netip.Addr]bool{}
			}
			byIface[n][ip.Unmap()] = true
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("l2 responder is closed")
	}
	var errs []error
	for name, ifc := range r.ifaces {
		if byIface[name] == nil || ifc.stale() {
			ifc.close()
			delete(r.ifaces, name)
		}
	}
	for name, addrs := range byIface {
		ifc := r.ifaces[name]
		if ifc == nil {
			var err error
			if ifc, err = r.open(name); err != nil {
				errs = append(errs, err)
				continue
			}
			r.ifaces[name] = ifc
		}
		added := ifc.set(addrs)
		if err := ifc.joinErr(); err != nil {
			errs = append(errs, err)
		}
		if len(added) > 0 {
			r.announce(ifc, added)
		}
	}
	return errors.Join(errs...)
}

// Announce sends the takeover burst again for the owned addresses among
// addrs: after an event that may have let another node take them over
// meanwhile (this process was frozen; a peer came back), so that the
// segment points at this node again.
func (r *Responder) Announce(addrs []netip.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ifc := range r.ifaces {
		owned := *ifc.owned.Load()
		var mine []netip.Addr
		for _, ip := range addrs {
			if owned[ip.Unmap()] {
				mine = append(mine, ip.Unmap())
			}
		}
		if len(mine) > 0 {
			r.announce(ifc, mine)
		}
	}
}

// Owned returns the addresses answered for on each interface, sorted.
func (r *Responder) Owned() map[string][]netip.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]netip.Addr{}
	for name, ifc := range r.ifaces {
		for ip := range *ifc.owned.Load() {
			out[name] = append(out[name], ip)
		}
		slices.SortFunc(out[name], netip.Addr.Compare)
	}
	return out
}

// Close stops answering for every address and closes every socket.
func (r *Responder) Close() {
	r.mu.Lock()
	r.closed = true
	for name, ifc := range r.ifaces {
		ifc.close()
		delete(r.ifaces, name)
	}
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}

// open starts serving an interface: an ARP listener when it has an IPv4
// address, an NDP listener when it has an IPv6 link-local address.
func (r *Responder) open(name string) (*iface, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", name, err)
	}
	ifc := newIface(ifi, r.opts.Logger.WithValues("interface", name), &r.arpReplies, &r.naReplies)
	if err := ifc.start(); err != nil {
		ifc.close()
		return nil, fmt.Errorf("interface %s: %w", name, err)
	}
	return ifc, nil
}

// announce sends the takeover burst for addresses now answered for on ifc:
// the first at once, the rest spaced by AnnounceInterval, stopping early
// when the address is released.
func (r *Responder) announce(ifc *iface, addrs []netip.Addr) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for i := 0; i < r.opts.Announcements; i++ {
			if i > 0 {
				select {
				case <-r.ctx.Done():
					return
				case <-time.After(r.opts.AnnounceInterval):
				}
			}
			owned := *ifc.owned.Load()
			for _, ip := range addrs {
				if !owned[ip] || ifc.isClosed() {
					continue
				}
				if err := ifc.gratuitous(ip); err != nil {
					ifc.log.V(1).Info("announcing the address failed", "address", ip, "error", err.Error())
					continue
				}
				if ip.Is4() {
					r.garp.Add(1)
				} else {
					r.una.Add(1)
				}
			}
		}
	}()
}
