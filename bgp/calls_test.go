package bgp

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"testing"
	"time"
)

// benchState returns a state with n /32 (or /128 every 4th) Service paths
// to one IPv4 and one IPv6 peer, using two declared attribute profiles.
// The peers never establish (nothing listens on their port), so only the
// speaker's own work is measured.
func benchState(n int) State {
	p4 := Peer{Name: "tor4", Address: netip.MustParseAddr("127.0.0.200"), ASN: 65099, Port: 9, ConnectRetryTime: time.Minute}
	p6 := Peer{Name: "tor6", Address: netip.MustParseAddr("::1"), ASN: 65099, Port: 9, ConnectRetryTime: time.Minute}
	profA := Attributes{Communities: []uint32{65000<<16 | 1}}
	profB := Attributes{Communities: []uint32{65000<<16 | 2}, LargeCommunities: []LargeCommunity{{65000, 1, 1}}}
	p4.Profiles = []Attributes{profA, profB}
	p6.Profiles = []Attributes{profA, profB}
	st := State{ASN: 64512, RouterID: netip.MustParseAddr("192.0.2.1"), Peers: []Peer{p4, p6}}
	st.Paths = make([]Path, 0, n)
	for i := range n {
		prof := profA
		if i%3 == 0 {
			prof = profB
		}
		if i%4 == 3 {
			a := netip.MustParseAddr("2001:db8::").As16()
			a[12], a[13], a[14], a[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
			st.Paths = append(st.Paths, Path{Prefix: netip.PrefixFrom(netip.AddrFrom16(a), 128), Peers: map[string]Attributes{"tor6": prof}})
			continue
		}
		// 198.18.0.0/15 holds 131072 addresses: enough for 100k.
		a := netip.AddrFrom4([4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)})
		st.Paths = append(st.Paths, Path{Prefix: netip.PrefixFrom(a, 32), Peers: map[string]Attributes{"tor4": prof}})
	}
	return st
}

// extraPath is one more Service address, outside benchState's range.
func extraPath() Path {
	return Path{Prefix: netip.MustParsePrefix("203.0.113.99/32"), Peers: map[string]Attributes{"tor4": {Communities: []uint32{65000<<16 | 1}}}}
}

// One Service change costs the same GoBGP calls on top of 10 or 5000 paths:
// one AddPath or one DeletePath, no policy, peer or defined-set call.
func TestOneChangeCostsConstantGoBGPCalls(t *testing.T) {
	ctx := context.Background()
	results := map[int]map[string]map[string]int{}
	for _, n := range []int{10, 5000} {
		s := newSpeaker(t, Options{})
		st := benchState(n)
		mustApply(t, s, st)
		res := map[string]map[string]int{}
		measure := func(name string, f func() error) {
			before := s.g.callCounts()
			if err := f(); err != nil {
				t.Fatalf("%s with %d paths: %v", name, n, err)
			}
			res[name] = diffCounts(before, s.g.callCounts())
		}
		plus := st
		plus.Paths = append(append([]Path(nil), st.Paths...), extraPath())
		measure("Apply add", func() error { return s.Apply(ctx, plus) })
		measure("Apply same", func() error { return s.Apply(ctx, plus) })
		measure("Apply remove", func() error { return s.Apply(ctx, st) })
		measure("UpdatePaths add", func() error { return s.UpdatePaths(ctx, []Path{extraPath()}, nil) })
		measure("UpdatePaths remove", func() error { return s.UpdatePaths(ctx, nil, []netip.Prefix{extraPath().Prefix}) })
		changed := st
		changed.Paths = append([]Path(nil), st.Paths...)
		changed.Paths[1] = Path{Prefix: st.Paths[1].Prefix, Peers: map[string]Attributes{"tor4": st.Peers[0].Profiles[1]}}
		measure("Apply attribute change", func() error { return s.Apply(ctx, changed) })
		results[n] = res
	}
	want := map[string]map[string]int{
		"Apply add":              {"AddPath": 1},
		"Apply same":             {},
		"Apply remove":           {"DeletePath": 1},
		"UpdatePaths add":        {"AddPath": 1},
		"UpdatePaths remove":     {"DeletePath": 1},
		"Apply attribute change": {"AddPath": 1},
	}
	for n, res := range results {
		for name, w := range want {
			if !maps.Equal(res[name], w) {
				t.Errorf("%s on %d paths: GoBGP calls %v, want %v", name, n, res[name], w)
			}
		}
	}
	t.Logf("GoBGP calls per change: %v", fmt.Sprint(results))
}
