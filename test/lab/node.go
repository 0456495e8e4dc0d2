package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// execIn runs argv inside namespace ns ("" = root) and returns combined output.
func execIn(ctx context.Context, ns string, argv ...string) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("exec: empty argv")
	}
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// ping sends one echo request from namespace ns to addr and waits up to 2 s.
func ping(ctx context.Context, ns string, addr netip.Addr) error {
	_, err := execIn(ctx, ns, "ping", "-n", "-q", "-c", "1", "-W", "2", addr.String())
	return err
}

// Exec runs a command inside the node's namespace and returns its combined output.
func (n *Node) Exec(ctx context.Context, argv ...string) (string, error) {
	return execIn(ctx, n.Netns, argv...)
}

// Start runs a long-running process inside the node's namespace (e.g. the
// speaker). The process is named "<node>-<name>" and logs to
// LogDir()/<node>-<name>.log; the returned Proc has its PID for signals.
func (n *Node) Start(name string, argv ...string) (*Proc, error) {
	return n.StartWith(ProcSpec{Name: name, Argv: argv})
}

// StartWith is Start with environment, working directory or stdin.
func (n *Node) StartWith(spec ProcSpec) (*Proc, error) {
	spec.Name = n.Name + "-" + spec.Name
	return n.lab.startProc(n.Netns, spec)
}

// Do runs fn on a thread inside the node's namespace (see InNetns).
func (n *Node) Do(fn func() error) error { return InNetns(n.Netns, fn) }

// Ping checks that addr answers one ICMP echo from the node.
func (n *Node) Ping(ctx context.Context, addr netip.Addr) error { return ping(ctx, n.Netns, addr) }

// Ping checks that addr answers one ICMP echo from the router.
func (r *Router) Ping(ctx context.Context, addr netip.Addr) error { return ping(ctx, r.Netns, addr) }

// AddServiceAddress puts addr (/32 or /128) on the node's loopback so the
// node accepts traffic the routers forward to it; no-op if already there.
func (n *Node) AddServiceAddress(ctx context.Context, addr netip.Addr) error {
	p := netip.PrefixFrom(addr, addr.BitLen())
	cmd := fmt.Sprintf("addr replace %s dev lo", p)
	if addr.Is6() {
		cmd += " nodad"
	}
	return ipBatch(ctx, n.Netns, []string{cmd})
}

// DelServiceAddress removes addr from the node's loopback.
func (n *Node) DelServiceAddress(ctx context.Context, addr netip.Addr) error {
	return ipBatch(ctx, n.Netns, []string{fmt.Sprintf("addr del %s dev lo", netip.PrefixFrom(addr, addr.BitLen()))})
}

// HTTPServer answers every request with the name of the node it runs on.
// Its socket lives in the node's namespace; it is served from the test process.
type HTTPServer struct {
	Node string
	Addr netip.AddrPort

	srv      *http.Server
	lab      *Lab
	ns       string
	ownsAddr bool
	once     sync.Once
	err      error
}

// ServeHTTP starts an HTTP server on addr:port inside the node's namespace
// that replies "<node name>\n". A Service address (not on any interface yet)
// is added to the node's loopback first and removed on Close, standing in
// for kube-proxy: the node answers for the address itself.
func (n *Node) ServeHTTP(addr netip.Addr, port uint16) (*HTTPServer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	local, err := n.hasAddress(ctx, addr)
	if err != nil {
		return nil, err
	}
	if !local {
		if err := n.AddServiceAddress(ctx, addr); err != nil {
			return nil, err
		}
	}
	ap := netip.AddrPortFrom(addr, port)
	var ln net.Listener
	err = n.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", ap.String())
		return err
	})
	if err != nil {
		if !local {
			_ = n.DelServiceAddress(ctx, addr)
		}
		return nil, fmt.Errorf("node %s: listen %s: %w", n.Name, ap, err)
	}
	body := n.Name + "\n"
	s := &HTTPServer{
		Node: n.Name, Addr: ap, lab: n.lab, ns: n.Netns, ownsAddr: !local,
		srv: &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				_, _ = w.Write([]byte(body))
			}),
			ReadHeaderTimeout: 5 * time.Second,
		},
	}
	go func() { _ = s.srv.Serve(ln) }()
	n.lab.mu.Lock()
	n.lab.servers = append(n.lab.servers, s)
	n.lab.mu.Unlock()
	return s, nil
}

// Close stops the server and removes the Service address it added.
func (s *HTTPServer) Close() error {
	s.once.Do(func() {
		s.err = s.srv.Close()
		if s.ownsAddr {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			// The namespace may be gone already during teardown.
			_ = ipBatch(ctx, s.ns, []string{fmt.Sprintf("addr del %s dev lo", netip.PrefixFrom(s.Addr.Addr(), s.Addr.Addr().BitLen()))})
		}
	})
	return s.err
}

// hasAddress reports whether addr is assigned to an interface of the node.
func (n *Node) hasAddress(ctx context.Context, addr netip.Addr) (bool, error) {
	out, err := run(ctx, "", "ip", "-n", n.Netns, "-o", "addr", "show", "to", netip.PrefixFrom(addr, addr.BitLen()).String())
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(out) != "", nil
}

// hostPort formats addr:port with brackets for IPv6.
func hostPort(addr netip.Addr, port uint16) string {
	return net.JoinHostPort(addr.String(), strconv.Itoa(int(port)))
}

// Dial opens a connection from inside the node's namespace, e.g. to check
// that the API server on HostMgmt4 is reachable.
func (n *Node) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return dialIn(ctx, n.Netns, network, addr)
}
