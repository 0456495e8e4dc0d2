package frrk8s

import (
	"net/netip"
	"strings"
	"time"

	frrv1beta1 "github.com/metallb/frr-k8s/api/v1beta1"

	"github.com/bgplb/bgplb/bgp"
)

// Labels frr-k8s puts on its BGPSessionState objects (frr-tools/status).
const (
	SessionNodeLabel = "frrk8s.metallb.io/node"
	SessionPeerLabel = "frrk8s.metallb.io/peer"
	SessionVRFLabel  = "frrk8s.metallb.io/vrf"
)

// Sessions reads the sessions of the rendered peers from the node's
// BGPSessionStates (frr-k8s reports one per neighbor of its FRR, whoever
// configured it; the default VRF is ""). A peer frr-k8s does not report
// (yet) is left out, so the node's status shows it as Unknown. prev is what
// the last call returned: a session keeps its Since while its state stays
// the same (frr-k8s reports no times); a new state gets now.
func Sessions(peers []bgp.Peer, rendered map[string]int, states []frrv1beta1.BGPSessionState, prev []bgp.PeerStatus, now time.Time) []bgp.PeerStatus {
	byPeer := make(map[string]*frrv1beta1.BGPSessionStateStatus, len(states))
	for i := range states {
		s := &states[i].Status
		if s.VRF != "" {
			continue
		}
		byPeer[s.Peer] = s
	}
	before := make(map[string]bgp.PeerStatus, len(prev))
	for _, p := range prev {
		before[p.Name] = p
	}
	var out []bgp.PeerStatus
	for _, p := range peers {
		sent, ok := rendered[p.Name]
		if !ok {
			continue // not in the FRRConfiguration: Render reported why
		}
		s := byPeer[PeerLabelValue(p.Address)]
		if s == nil {
			continue
		}
		ps := bgp.PeerStatus{Name: p.Name, Address: p.Address, State: SessionState(s.BGPStatus), Since: now}
		if ps.State == bgp.StateEstablished {
			ps.PrefixesSent = sent
		}
		if p.BFD.Enabled {
			ps.BFDState = BFDState(s.BFDStatus)
		}
		if b, ok := before[p.Name]; ok && b.State == ps.State && !b.Since.IsZero() {
			ps.Since = b.Since
		}
		out = append(out, ps)
	}
	return out
}

// PeerLabelValue is how frr-k8s names a neighbor in BGPSessionState's
// status.peer and its peer label: an IPv4 address as is, an IPv6 address
// fully expanded with "-" for ":".
func PeerLabelValue(addr netip.Addr) string {
	if addr.Is4() {
		return addr.String()
	}
	return strings.ReplaceAll(addr.StringExpanded(), ":", "-")
}

// SessionState maps FRR's BGP state name to the bgp package's. FRR's
// names are RFC 4271's, sometimes with a suffix ("Idle (Admin)"); an
// unrecognised one counts as Idle.
func SessionState(s string) bgp.SessionState {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, " ("); i >= 0 {
		s = s[:i]
	}
	for _, st := range []bgp.SessionState{bgp.StateIdle, bgp.StateConnect, bgp.StateActive, bgp.StateOpenSent, bgp.StateOpenConfirm, bgp.StateEstablished} {
		if strings.EqualFold(s, string(st)) {
			return st
		}
	}
	return bgp.StateIdle
}

// BFDState maps FRR's BFD status ("up", "down", "init", "adminDown";
// frr-k8s writes "N/A" without BFD) to the bgp package's names.
func BFDState(s string) string {
	switch strings.ToLower(strings.ReplaceAll(s, "_", "")) {
	case "up":
		return bgp.BFDUp
	case "init":
		return bgp.BFDInit
	case "admindown":
		return bgp.BFDAdminDown
	default:
		return bgp.BFDDown
	}
}
