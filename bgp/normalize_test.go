package bgp

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNormalizePeerDefaults(t *testing.T) {
	p, err := normalizePeer(Peer{
		Name: "tor", Address: netip.MustParseAddr("::ffff:192.0.2.1"), ASN: 65000,
		GracefulRestart: GracefulRestart{Enabled: true},
		BFD:             BFD{Enabled: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.Address != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("address not unmapped: %v", p.Address)
	}
	if p.HoldTime != 90*time.Second || p.KeepaliveTime != 30*time.Second || p.ConnectRetryTime != 5*time.Second {
		t.Errorf("timers %v/%v/%v, want 90s/30s/5s", p.HoldTime, p.KeepaliveTime, p.ConnectRetryTime)
	}
	if p.GracefulRestart.RestartTime != 120*time.Second {
		t.Errorf("restart time %v", p.GracefulRestart.RestartTime)
	}
	if p.BFD != (BFD{Enabled: true, MinRx: 300 * time.Millisecond, MinTx: 300 * time.Millisecond, Multiplier: 3}) {
		t.Errorf("BFD %+v", p.BFD)
	}

	p, err = normalizePeer(Peer{Name: "x", Address: netip.MustParseAddr("192.0.2.1"), ASN: 1, HoldTime: 9 * time.Second,
		ConnectRetryTime: 1500 * time.Millisecond, BFD: BFD{MinRx: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if p.KeepaliveTime != 3*time.Second {
		t.Errorf("keepalive for hold 9s = %v, want 3s", p.KeepaliveTime)
	}
	if p.ConnectRetryTime != 2*time.Second {
		t.Errorf("connect retry 1.5s rounded to %v, want 2s", p.ConnectRetryTime)
	}
	for hold, want := range map[time.Duration]time.Duration{3 * time.Second: time.Second, 5 * time.Second: time.Second, 6 * time.Second: 2 * time.Second} {
		p, err := normalizePeer(Peer{Name: "x", Address: netip.MustParseAddr("192.0.2.1"), ASN: 1, HoldTime: hold})
		if err != nil {
			t.Fatal(err)
		}
		if p.KeepaliveTime != want {
			t.Errorf("keepalive for hold %v = %v, want %v (a third, rounded down, at least 1s)", hold, p.KeepaliveTime, want)
		}
	}
	if p.BFD != (BFD{}) {
		t.Errorf("disabled BFD kept settings %+v (would make equal configs differ)", p.BFD)
	}
}

func TestNormalizePeerErrors(t *testing.T) {
	ok := Peer{Name: "p", Address: netip.MustParseAddr("192.0.2.1"), ASN: 65000}
	for name, mutate := range map[string]func(*Peer){
		"no name":             func(p *Peer) { p.Name = "" },
		"no address":          func(p *Peer) { p.Address = netip.Addr{} },
		"unspecified address": func(p *Peer) { p.Address = netip.IPv4Unspecified() },
		"zone":                func(p *Peer) { p.Address = netip.MustParseAddr("fe80::1%eth0") },
		"asn 0":               func(p *Peer) { p.ASN = 0 },
		"source family":       func(p *Peer) { p.SourceAddress = netip.MustParseAddr("2001:db8::1") },
		"hold too short":      func(p *Peer) { p.HoldTime = 2 * time.Second },
		"keepalive >= hold":   func(p *Peer) { p.HoldTime, p.KeepaliveTime = 9*time.Second, 9*time.Second },
		"negative":            func(p *Peer) { p.ConnectRetryTime = -time.Second },
		"long password":       func(p *Peer) { p.Password = strings.Repeat("x", 81) },
		"restart time":        func(p *Peer) { p.GracefulRestart = GracefulRestart{Enabled: true, RestartTime: 4096 * time.Second} },
		"bfd multiplier":      func(p *Peer) { p.BFD = BFD{Enabled: true, Multiplier: 256} },
		"bfd interval":        func(p *Peer) { p.BFD = BFD{Enabled: true, MinTx: time.Nanosecond} },
		"profile local pref":  func(p *Peer) { p.Profiles = []Attributes{{LocalPref: u32(0)}} },
	} {
		p := ok
		mutate(&p)
		if _, err := normalizePeer(p); err == nil {
			t.Errorf("%s: accepted %+v", name, p)
		}
	}
	if _, err := normalizePeer(ok); err != nil {
		t.Errorf("valid peer rejected: %v", err)
	}
}

func TestSessionEqualIgnoresBFDAndProfiles(t *testing.T) {
	a, _ := normalizePeer(Peer{Name: "p", Address: netip.MustParseAddr("192.0.2.1"), ASN: 65000})
	b := a
	b.BFD = BFD{Enabled: true}
	b.Profiles = []Attributes{{Communities: []uint32{1}}}
	if !sessionEqual(a, b) {
		t.Error("BFD or Profiles change treated as a session change")
	}
	b.Password = "x"
	if sessionEqual(a, b) {
		t.Error("password change not treated as a session change")
	}
}

func TestNormalizeAttributes(t *testing.T) {
	a, ka, err := normalizeAttributes(Attributes{
		Communities:      []uint32{3, 1, 3, 2},
		LargeCommunities: []LargeCommunity{{2, 0, 0}, {1, 9, 9}, {2, 0, 0}},
		LocalPref:        u32(50),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Communities, []uint32{1, 2, 3}) || !slices.Equal(a.LargeCommunities, []LargeCommunity{{1, 9, 9}, {2, 0, 0}}) {
		t.Errorf("not sorted/deduplicated: %+v", a)
	}
	_, kb, _ := normalizeAttributes(Attributes{Communities: []uint32{2, 1, 3}, LargeCommunities: []LargeCommunity{{1, 9, 9}, {2, 0, 0}}, LocalPref: u32(50)})
	if ka != kb {
		t.Error("same attributes in another order got another profile key")
	}
	distinct := map[string]Attributes{}
	for _, x := range []Attributes{
		{},
		{Communities: []uint32{1}},
		{LargeCommunities: []LargeCommunity{{0, 0, 1}}},
		{LocalPref: u32(1)},
		{LocalPref: u32(2)},
		{Communities: []uint32{1}, LocalPref: u32(1)},
	} {
		_, k, err := normalizeAttributes(x)
		if err != nil {
			t.Fatal(err)
		}
		if prev, dup := distinct[k]; dup {
			t.Errorf("%+v and %+v share a key", prev, x)
		}
		distinct[k] = x
	}
	if _, _, err := normalizeAttributes(Attributes{LocalPref: u32(0)}); err == nil {
		t.Error("local preference 0 accepted")
	}
}

func TestCheckPrefix(t *testing.T) {
	for p, ok := range map[string]bool{
		"192.0.2.1/32":       true,
		"192.0.2.0/24":       true,
		"2001:db8::1/128":    true,
		"192.0.2.1/24":       false,
		"::ffff:1.2.3.4/128": false,
	} {
		if err := checkPrefix(netip.MustParsePrefix(p)); (err == nil) != ok {
			t.Errorf("checkPrefix(%s) = %v", p, err)
		}
	}
	if checkPrefix(netip.Prefix{}) == nil {
		t.Error("zero prefix accepted")
	}
}
