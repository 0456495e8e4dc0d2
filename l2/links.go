package l2

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
)

// Link is a network interface that can carry traffic: administratively up
// and with its carrier (operational state up, or unknown as on links that
// do not report one), with its addresses' prefixes (link-local excluded).
type Link struct {
	Name     string
	Prefixes []netip.Prefix
}

// String is "name=prefix,prefix" for logs.
func (l Link) String() string {
	ps := make([]string, len(l.Prefixes))
	for i, p := range l.Prefixes {
		ps[i] = p.String()
	}
	return l.Name + "=" + strings.Join(ps, ",")
}

// Links returns the node's links that are up, sorted by name. Loopback is
// left out: nothing on the segment can reach it.
func Links() ([]Link, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing links: %w", err)
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	byIndex := map[int][]netip.Prefix{}
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || ip.Unmap().IsLinkLocalUnicast() {
			continue
		}
		ones, _ := a.Mask.Size()
		byIndex[a.LinkIndex] = append(byIndex[a.LinkIndex], netip.PrefixFrom(ip.Unmap(), ones))
	}
	var out []Link
	for _, l := range links {
		at := l.Attrs()
		if !linkUp(at) {
			continue
		}
		ps := byIndex[at.Index]
		slices.SortFunc(ps, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		out = append(out, Link{Name: at.Name, Prefixes: ps})
	}
	slices.SortFunc(out, func(a, b Link) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func linkUp(at *netlink.LinkAttrs) bool {
	if at.Flags&net.FlagUp == 0 || at.Flags&net.FlagLoopback != 0 {
		return false
	}
	return at.OperState == netlink.OperUp || at.OperState == netlink.OperUnknown
}

// WatchLinks calls changed whenever a link or an address of the node
// changes (a link going down is seen within milliseconds: the kernel
// tells netlink subscribers at once), until ctx ends. It returns when the
// subscriptions are in place. A subscription that breaks (its socket
// overflowed: changes were lost) is reported to onError, counted as a
// change, and renewed.
func WatchLinks(ctx context.Context, changed func(), onError func(error)) error {
	linkCh, addrCh, err := subscribe(ctx, onError)
	if err != nil {
		return err
	}
	go func() {
		for {
			ok := true
			select {
			case <-ctx.Done():
				return
			case _, ok = <-linkCh:
			case _, ok = <-addrCh:
			}
			for !ok && ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
				var err error
				if linkCh, addrCh, err = subscribe(ctx, onError); err != nil {
					onError(err)
					continue
				}
				ok = true
			}
			changed()
		}
	}()
	return nil
}

// subscribe opens the link and address subscriptions; both end when ctx does.
func subscribe(ctx context.Context, onError func(error)) (chan netlink.LinkUpdate, chan netlink.AddrUpdate, error) {
	// Either subscription breaking closes both, so they are renewed together.
	sub, cancel := context.WithCancel(ctx)
	onErr := func(err error) {
		cancel()
		if ctx.Err() == nil {
			onError(err)
		}
	}
	linkCh := make(chan netlink.LinkUpdate, 64)
	addrCh := make(chan netlink.AddrUpdate, 64)
	if err := netlink.LinkSubscribeWithOptions(linkCh, sub.Done(), netlink.LinkSubscribeOptions{ErrorCallback: onErr}); err != nil {
		cancel()
		return nil, nil, fmt.Errorf("subscribing to link changes: %w", err)
	}
	if err := netlink.AddrSubscribeWithOptions(addrCh, sub.Done(), netlink.AddrSubscribeOptions{ErrorCallback: onErr}); err != nil {
		cancel()
		return nil, nil, fmt.Errorf("subscribing to address changes: %w", err)
	}
	return linkCh, addrCh, nil
}
