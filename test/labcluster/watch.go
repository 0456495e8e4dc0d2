package labcluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bgplb/bgplb/test/lab"
)

// RouteWatcher timestamps route changes in a namespace's main routing table
// as the kernel announces them over rtnetlink, so latencies are measured
// to the moment a route is installed instead of to the next poll.
type RouteWatcher struct {
	fd     int
	notify chan struct{}
	done   chan struct{}
	stop   chan struct{}

	mu       sync.Mutex
	first    map[netip.Prefix]time.Time // first RTM_NEWROUTE
	deleted  map[netip.Prefix]time.Time // last RTM_DELROUTE
	events   []time.Time                // when each batch of messages arrived
	overflow bool
	err      error
}

// maxEvents bounds the remembered event times.
const maxEvents = 1 << 16

// WatchRoutes starts watching IPv4 and IPv6 route and nexthop changes in
// the named namespace.
func WatchRoutes(netns string) (*RouteWatcher, error) {
	w := &RouteWatcher{
		fd: -1, notify: make(chan struct{}, 1), done: make(chan struct{}), stop: make(chan struct{}),
		first: map[netip.Prefix]time.Time{}, deleted: map[netip.Prefix]time.Time{},
	}
	// The socket belongs to the namespace it was created in.
	err := lab.InNetns(netns, func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		w.fd = fd
		// A burst of a thousand routes must not overflow the queue.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20)
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE}); err != nil {
			return err
		}
		// Groups above 31 are joined by number: zebra changes ECMP routes
		// through nexthop objects, which only this group reports.
		if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, unix.RTNLGRP_NEXTHOP); err != nil {
			return err
		}
		// Lets the reader notice Close.
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200000})
	})
	if err != nil {
		if w.fd >= 0 {
			unix.Close(w.fd)
		}
		return nil, fmt.Errorf("labcluster: watch routes in %s: %w", netns, err)
	}
	go w.read()
	return w, nil
}

func (w *RouteWatcher) read() {
	defer close(w.done)
	buf := make([]byte, 1<<20)
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		n, _, err := unix.Recvfrom(w.fd, buf, 0)
		now := time.Now()
		if err != nil {
			switch {
			case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
				continue
			case errors.Is(err, unix.ENOBUFS):
				w.mu.Lock()
				w.overflow = true
				w.mu.Unlock()
				continue
			}
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
			return
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			continue
		}
		w.mu.Lock()
		for i := range msgs {
			m := &msgs[i]
			switch m.Header.Type {
			case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
				p, ok := routeDst(m)
				if !ok {
					continue
				}
				if m.Header.Type == unix.RTM_NEWROUTE {
					if _, seen := w.first[p]; !seen {
						w.first[p] = now
					}
				} else {
					w.deleted[p] = now
				}
			}
		}
		if len(w.events) >= maxEvents {
			w.events = append(w.events[:0], w.events[maxEvents/2:]...)
		}
		w.events = append(w.events, now)
		w.mu.Unlock()
		select {
		case w.notify <- struct{}{}:
		default:
		}
	}
}

// routeDst returns the destination of a route message of the main table.
func routeDst(m *syscall.NetlinkMessage) (netip.Prefix, bool) {
	if len(m.Data) < unix.SizeofRtMsg {
		return netip.Prefix{}, false
	}
	family, dstLen, table := m.Data[0], int(m.Data[1]), uint32(m.Data[4])
	attrs, err := syscall.ParseNetlinkRouteAttr(m)
	if err != nil {
		return netip.Prefix{}, false
	}
	var dst []byte
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.RTA_DST:
			dst = a.Value
		case unix.RTA_TABLE:
			if len(a.Value) == 4 {
				table = binary.NativeEndian.Uint32(a.Value)
			}
		}
	}
	if table != unix.RT_TABLE_MAIN || dst == nil {
		return netip.Prefix{}, false
	}
	var addr netip.Addr
	switch {
	case family == unix.AF_INET && len(dst) == 4:
		addr = netip.AddrFrom4([4]byte(dst))
	case family == unix.AF_INET6 && len(dst) == 16:
		addr = netip.AddrFrom16([16]byte(dst))
	default:
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(addr, dstLen).Masked(), true
}

// FirstSeen returns when the kernel first announced a route to exactly p
// since the watcher started (or since Forget).
func (w *RouteWatcher) FirstSeen(p netip.Prefix) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.first[p.Masked()]
	return t, ok
}

// Deleted returns when the kernel last announced the deletion of p.
func (w *RouteWatcher) Deleted(p netip.Prefix) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.deleted[p.Masked()]
	return t, ok
}

// SeenIn returns the first-seen time of every route inside pool.
func (w *RouteWatcher) SeenIn(pool netip.Prefix) map[netip.Prefix]time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[netip.Prefix]time.Time{}
	for p, t := range w.first {
		if pool.Overlaps(p) && p.Bits() >= pool.Bits() {
			out[p] = t
		}
	}
	return out
}

// Changed receives after each batch of routing events (one pending at
// most): wake-ups for a single waiter.
func (w *RouteWatcher) Changed() <-chan struct{} { return w.notify }

// Forget drops what the watcher recorded about p.
func (w *RouteWatcher) Forget(p netip.Prefix) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.first, p.Masked())
	delete(w.deleted, p.Masked())
}

// Overflowed reports whether the kernel dropped notifications (the
// socket's queue was full): timestamps may then be missing.
func (w *RouteWatcher) Overflowed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.overflow
}

// Err is the error that stopped the watcher, if any.
func (w *RouteWatcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// WaitUntil waits until check (which reads the current state, e.g. the
// kernel routes) succeeds, re-checking on every routing event and at least
// every poll. It returns the time of the first routing event after the
// last failed check began, i.e. when the change happened (to within the
// spacing of unrelated events) rather than when it was noticed. If check
// succeeds at once, it returns the time of that check.
func (w *RouteWatcher) WaitUntil(ctx context.Context, poll time.Duration, check func() (bool, error)) (time.Time, error) {
	var lastFailed time.Time
	for {
		began := time.Now()
		ok, err := check()
		if err != nil {
			return time.Time{}, err
		}
		if ok {
			if lastFailed.IsZero() {
				return began, nil
			}
			if t, found := w.firstEventAfter(lastFailed); found && !t.After(began) {
				return t, nil
			}
			return began, nil
		}
		lastFailed = began
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%w (condition never held)", ctx.Err())
		case <-w.notify:
		case <-time.After(poll):
		}
	}
}

func (w *RouteWatcher) firstEventAfter(t time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.events {
		if e.After(t) {
			return e, true
		}
	}
	return time.Time{}, false
}

// Close stops the watcher.
func (w *RouteWatcher) Close() {
	select {
	case <-w.stop:
		return
	default:
	}
	close(w.stop)
	<-w.done
	unix.Close(w.fd)
}
