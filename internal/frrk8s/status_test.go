package frrk8s

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	frrv1beta1 "github.com/metallb/frr-k8s/api/v1beta1"

	"github.com/bgplb/bgplb/bgp"
)

func sessionState(peer, vrf, bgpState, bfd string) frrv1beta1.BGPSessionState {
	return frrv1beta1.BGPSessionState{Status: frrv1beta1.BGPSessionStateStatus{Node: "node-a", Peer: peer, VRF: vrf, BGPStatus: bgpState, BFDStatus: bfd}}
}

func TestSessions(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	peers := []bgp.Peer{
		{Name: "rtr-a", Address: addr("192.0.2.10"), BFD: bgp.BFD{Enabled: true}},
		{Name: "rtr-6", Address: addr("2001:db8::10")},
		{Name: "not-reported", Address: addr("192.0.2.12")},
		{Name: "not-rendered", Address: addr("192.0.2.13")},
	}
	rendered := map[string]int{"rtr-a": 3, "rtr-6": 2, "not-reported": 1}
	states := []frrv1beta1.BGPSessionState{
		sessionState("192.0.2.10", "", "Established", "up"),
		sessionState("2001-0db8-0000-0000-0000-0000-0000-0010", "", "Active", "N/A"),
		sessionState("192.0.2.13", "", "Established", "N/A"),
		sessionState("192.0.2.12", "red", "Established", "N/A"), // another VRF: not ours
	}
	first := Sessions(peers, rendered, states, nil, t0)
	want := []bgp.PeerStatus{
		{Name: "rtr-a", Address: addr("192.0.2.10"), State: bgp.StateEstablished, Since: t0, PrefixesSent: 3, BFDState: bgp.BFDUp},
		{Name: "rtr-6", Address: addr("2001:db8::10"), State: bgp.StateActive, Since: t0},
	}
	if d := cmp.Diff(want, first, eqAddr); d != "" {
		t.Fatalf("first (-want +got):\n%s", d)
	}
	// A minute later rtr-6 came up: its Since moves, rtr-a's stays.
	states[1].Status.BGPStatus = "Established"
	second := Sessions(peers, rendered, states, first, t1)
	want[1].State, want[1].Since, want[1].PrefixesSent = bgp.StateEstablished, t1, 2
	if d := cmp.Diff(want, second, eqAddr); d != "" {
		t.Fatalf("second (-want +got):\n%s", d)
	}
}

func TestStateNames(t *testing.T) {
	for in, want := range map[string]bgp.SessionState{
		"Established": bgp.StateEstablished, "Idle (Admin)": bgp.StateIdle, "active": bgp.StateActive,
		"OpenSent": bgp.StateOpenSent, "Clearing": bgp.StateIdle, "": bgp.StateIdle,
	} {
		if got := SessionState(in); got != want {
			t.Errorf("SessionState(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"up": bgp.BFDUp, "down": bgp.BFDDown, "init": bgp.BFDInit, "adminDown": bgp.BFDAdminDown, "N/A": bgp.BFDDown} {
		if got := BFDState(in); got != want {
			t.Errorf("BFDState(%q) = %q, want %q", in, got, want)
		}
	}
}

var eqAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
