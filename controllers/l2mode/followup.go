package l2mode

import (
	"net/netip"
	"slices"
	"time"
)

// followUpDelay is when an address this node took over is announced once
// more. Views converge within about a second: a node whose election lagged
// behind may have answered for the address meanwhile and sent its own
// gratuitous ARP / unsolicited NA after this node's burst, leaving the
// segment's neighbor tables on it. Traffic then keeps those entries
// confirmed, so they would not move back by themselves.
const followUpDelay = time.Second

// followUps are the addresses due for that second announcement, and when.
type followUps map[netip.Addr]time.Time

// due removes and returns the addresses whose follow-up is due at now and
// that this node still owns (others are dropped), and says how long until
// the next one (0: none left).
func (f followUps) due(now time.Time, owned func(netip.Addr) bool) ([]netip.Addr, time.Duration) {
	var out []netip.Addr
	var next time.Duration
	for ip, at := range f {
		switch {
		case !owned(ip):
			delete(f, ip)
		case !now.Before(at):
			out = append(out, ip)
			delete(f, ip)
		case next == 0 || at.Sub(now) < next:
			next = at.Sub(now)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, next
}
