package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
	body, err := get(ctx, c.HTTPClient(5*time.Second), url)
	if err != nil {
		return body, fmt.Errorf("client: %w", err)
	}
	return body, nil
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

// Probe is a client that keeps connecting to URLs in the background, one
// new connection per request, and counts what it got: the traffic the specs
// watch while they break something.
type Probe struct {
	mu      sync.Mutex
	ok      int
	failed  int
	failAt  []time.Time
	resets  []time.Time
	errs    []string
	answers map[string]int
	cancel  context.CancelFunc
	done    chan struct{}
}

// ProbeResult is what a Probe counted.
type ProbeResult struct {
	OK, Failed int
	// FailedAt are the times of all failures.
	FailedAt []time.Time
	// Resets are the times of the failures that were connections reset
	// by the other end after they had been established (counted in
	// Failed too): what an ECMP next-hop change does to a connection in
	// flight, as opposed to one that cannot be made.
	Resets []time.Time
	// Errors are the first failures, with their time.
	Errors []string
	// Answers counts the answers by key (see StartProbe).
	Answers map[string]int
}

// StartProbe sends a GET to each of urls every interval from the client
// namespace until Stop, each on a new connection that times out after 3 s.
// Requests do not wait for each other (at most 256 in flight), so a path
// that swallows packets does not slow the sampling of the others. key maps
// an answer's body to what Answers counts (nil: the whole body, trimmed).
func (c *Client) StartProbe(urls []string, interval time.Duration, key func(body string) string) *Probe {
	if key == nil {
		key = strings.TrimSpace
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Probe{answers: map[string]int{}, cancel: cancel, done: make(chan struct{})}
	hc := c.HTTPClient(3 * time.Second)
	inflight := make(chan struct{}, 256)
	var wg sync.WaitGroup
	one := func(u string) {
		defer wg.Done()
		defer func() { <-inflight }()
		var connected atomic.Bool
		traced := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { connected.Store(true) }})
		body, err := get(traced, hc, u)
		if ctx.Err() != nil {
			return // stopped, not failed
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if err != nil {
			p.failed++
			p.failAt = append(p.failAt, time.Now())
			if connected.Load() && errors.Is(err, syscall.ECONNRESET) {
				p.resets = append(p.resets, time.Now())
			}
			if len(p.errs) < 10 {
				p.errs = append(p.errs, time.Now().Format("15:04:05.000")+" "+err.Error())
			}
			return
		}
		p.ok++
		p.answers[key(body)]++
	}
	go func() {
		defer close(p.done)
		defer wg.Wait()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			for _, u := range urls {
				select {
				case inflight <- struct{}{}:
				case <-ctx.Done():
					return
				}
				wg.Add(1)
				go one(u)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// get fetches url and returns the body; any status but 200 is an error.
func get(ctx context.Context, hc *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err // a *url.Error names the method and URL
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}

// Result returns the counts so far.
func (p *Probe) Result() ProbeResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ProbeResult{OK: p.ok, Failed: p.failed, FailedAt: slices.Clone(p.failAt), Resets: slices.Clone(p.resets), Errors: slices.Clone(p.errs), Answers: maps.Clone(p.answers)}
}

// Stop ends the probe, waits for its last request, and returns the counts.
func (p *Probe) Stop() ProbeResult {
	p.cancel()
	<-p.done
	return p.Result()
}
