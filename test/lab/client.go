package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// Dial opens a connection from inside the client namespace (network "tcp",
// "tcp4", "udp", ...; addr "host:port" with an IP literal).
func (c *Client) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return dialIn(ctx, c.Netns, network, addr)
}

// dialIn creates the socket on a thread inside ns; the connection then
// works from any goroutine.
func dialIn(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := InNetns(ns, func() error {
		var err error
		// An IP literal keeps resolution (and its goroutines) out of the namespace switch.
		conn, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s %s from %s: %w", network, addr, ns, err)
	}
	return conn, nil
}

// HTTPClient returns an HTTP client whose connections start in the client
// namespace. Keep-alives are off: every request is a new connection (new
// source port), so ECMP hashing picks a path per request.
func (c *Client) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return dialIn(ctx, c.Netns, network, addr)
			},
			DisableKeepAlives: true,
			Proxy:             nil,
		},
	}
}

// HTTPGet fetches url from the client namespace and returns the body.
func (c *Client) HTTPGet(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.HTTPClient(5 * time.Second).Do(req)
	if err != nil {
		return "", fmt.Errorf("client GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("client GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("client GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}

// ServiceURL is the URL of a node HTTP server on addr:port.
func ServiceURL(addr netip.Addr, port uint16) string {
	return "http://" + hostPort(addr, port) + "/"
}

// CountAnswers sends n requests to url, each on a new connection, and
// counts which node answered (the body of a Node.ServeHTTP server).
// Failed requests are counted under "" and the first error is returned
// along with the counts.
func (c *Client) CountAnswers(ctx context.Context, url string, n int) (map[string]int, error) {
	counts := map[string]int{}
	hc := c.HTTPClient(2 * time.Second)
	var firstErr error
	for range n {
		body, err := func() (string, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return "", err
			}
			resp, err := hc.Do(req)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			return string(b), err
		}()
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("client GET %s: %w", url, err)
		}
		counts[strings.TrimSpace(body)]++
		if ctx.Err() != nil {
			break
		}
	}
	return counts, firstErr
}

// Exec runs a command inside the client namespace and returns its combined output.
func (c *Client) Exec(ctx context.Context, argv ...string) (string, error) {
	return execIn(ctx, c.Netns, argv...)
}

// Ping checks that addr answers one ICMP echo from the client.
func (c *Client) Ping(ctx context.Context, addr netip.Addr) error { return ping(ctx, c.Netns, addr) }

// Do runs fn on a thread inside the client namespace (see InNetns).
func (c *Client) Do(fn func() error) error { return InNetns(c.Netns, fn) }
