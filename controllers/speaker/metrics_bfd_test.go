package speaker

import (
	"net/netip"
	"testing"

	"github.com/bgplb/bgplb/bgp"
)

// The BFD gauge follows the session's BFD state: 1 when Up, 0 in any other
// state, no series for a peer without BFD or a peer that is gone.
func TestBFDMetric(t *testing.T) {
	w := &nodeStatusWriter{}
	peer := func(bfd string) bgp.PeerStatus {
		return bgp.PeerStatus{Name: "bfd-peer", Address: netip.MustParseAddr("198.51.100.7"), State: bgp.StateEstablished, BFDState: bfd}
	}

	steps := []struct {
		bfd  string
		want float64 // -1: no series
	}{
		{bgp.BFDDown, 0},
		{bgp.BFDInit, 0},
		{bgp.BFDUp, 1},
		{bgp.BFDAdminDown, 0},
		{"", -1},
		{bgp.BFDUp, 1},
	}
	for _, s := range steps {
		w.observe(nodeView{}, []bgp.PeerStatus{peer(s.bfd)})
		if s.want < 0 {
			if n := seriesCount(bfdUp); n != 0 {
				t.Errorf("BFD %q: %d bfd_up series, want none", s.bfd, n)
			}
			continue
		}
		if n := seriesCount(bfdUp); n != 1 {
			t.Errorf("BFD %q: %d bfd_up series, want 1", s.bfd, n)
		}
		if v := gaugeValue(bfdUp.WithLabelValues("bfd-peer")); v != s.want {
			t.Errorf("BFD %q: bfd_up = %v, want %v", s.bfd, v, s.want)
		}
	}
	// The peer goes away: its series goes too.
	w.observe(nodeView{}, nil)
	if n := seriesCount(bfdUp); n != 0 {
		t.Errorf("%d bfd_up series after the peer went", n)
	}
}
