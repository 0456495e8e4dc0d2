package lab

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

// The probe tells a connection reset in flight (what an ECMP next-hop
// change does) from one that could not be made or was answered badly.
// Loopback only: a Client with no namespace dials from this one.
func TestProbeClassifiesResets(t *testing.T) {
	serve := func(t *testing.T, handle func(net.Conn)) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go handle(c)
			}
		}()
		return "http://" + ln.Addr().String() + "/"
	}
	answer := func(c net.Conn) {
		defer c.Close()
		if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
		}
	}
	reset := func(c net.Conn) {
		_, _ = http.ReadRequest(bufio.NewReader(c))
		_ = c.(*net.TCPConn).SetLinger(0) // close with RST
		c.Close()
	}
	unavailable := func(c net.Conn) {
		defer c.Close()
		if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			fmt.Fprint(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		}
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + closed.Addr().String() + "/"
	closed.Close()

	c := &Client{}
	for _, tc := range []struct {
		name               string
		url                string
		ok, failed, resets bool
	}{
		{"answered", serve(t, answer), true, false, false},
		{"reset after the request", serve(t, reset), false, true, true},
		{"refused", refused, false, true, false},
		{"503", serve(t, unavailable), false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := c.StartProbe([]string{tc.url}, 20*time.Millisecond, nil)
			deadline := time.Now().Add(5 * time.Second)
			for r := p.Result(); r.OK+r.Failed < 5 && time.Now().Before(deadline); r = p.Result() {
				time.Sleep(10 * time.Millisecond)
			}
			r := p.Stop()
			if (r.OK > 0) != tc.ok || (r.Failed > 0) != tc.failed || (len(r.Resets) > 0) != tc.resets {
				t.Fatalf("ok=%d failed=%d resets=%d, want ok %v failed %v resets %v; errors %v",
					r.OK, r.Failed, len(r.Resets), tc.ok, tc.failed, tc.resets, r.Errors)
			}
			if tc.resets && len(r.Resets) != r.Failed {
				t.Errorf("%d of %d failures counted as resets: %v", len(r.Resets), r.Failed, r.Errors)
			}
		})
	}
}
