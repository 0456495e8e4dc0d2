package speaker

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp"
)

// defaultPasswordKey is the Secret key used when passwordSecretRef names none.
const defaultPasswordKey = "password"

// maxPasswordLen is the longest TCP-MD5 key Linux accepts (TCP_MD5SIG_MAXKEYLEN).
const maxPasswordLen = 80

// peerConfig turns a BGPPeer into the bgp package's peer, resolving its
// password from the Secrets of the install namespace. A peer whose
// configuration cannot be completed is returned as a Problem: opening the
// session without its password would only fail at the router, or worse,
// succeed against a router that should have required one.
func peerConfig(p *v1alpha1.BGPPeer, secrets map[string]*corev1.Secret) (bgp.Peer, *Problem) {
	bad := func(reason, format string, args ...any) (bgp.Peer, *Problem) {
		return bgp.Peer{}, &Problem{Kind: "BGPPeer", Name: p.Name, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	s := &p.Spec
	addr, err := netip.ParseAddr(s.Address)
	if err != nil {
		return bad(v1alpha1.ReasonInvalidPeer, "address: %v", err)
	}
	if s.ASN < 1 || s.ASN > 0xFFFFFFFE || s.LocalASN < 1 || s.LocalASN > 0xFFFFFFFE {
		return bad(v1alpha1.ReasonInvalidPeer, "asn %d / localASN %d out of range", s.ASN, s.LocalASN)
	}
	out := bgp.Peer{
		Name:     p.Name,
		Address:  addr.Unmap(),
		ASN:      uint32(s.ASN),
		LocalASN: uint32(s.LocalASN),
	}
	if s.Port != 0 {
		if s.Port < 1 || s.Port > 65535 {
			return bad(v1alpha1.ReasonInvalidPeer, "port %d out of range", s.Port)
		}
		out.Port = uint16(s.Port)
	}
	if s.SourceAddress != "" {
		src, err := netip.ParseAddr(s.SourceAddress)
		if err != nil {
			return bad(v1alpha1.ReasonInvalidPeer, "sourceAddress: %v", err)
		}
		out.SourceAddress = src.Unmap()
	}
	out.HoldTime, out.KeepaliveTime = s.EffectiveTimers()
	if s.ConnectRetryTime != nil {
		out.ConnectRetryTime = s.ConnectRetryTime.Duration
	}
	if s.EBGPMultihop != nil {
		if ttl := *s.EBGPMultihop; ttl < 1 || ttl > 255 {
			return bad(v1alpha1.ReasonInvalidPeer, "ebgpMultihop %d out of range", ttl)
		}
		out.EBGPMultihopTTL = uint8(*s.EBGPMultihop)
	}
	if gr := s.GracefulRestart; gr != nil && gr.Enabled {
		out.GracefulRestart.Enabled = true
		if gr.RestartTime != nil {
			out.GracefulRestart.RestartTime = gr.RestartTime.Duration
		}
	}
	if b := s.BFD; b != nil && b.Enabled {
		out.BFD.Enabled = true
		if b.MinReceiveInterval != nil {
			out.BFD.MinRx = b.MinReceiveInterval.Duration
		}
		if b.MinTransmitInterval != nil {
			out.BFD.MinTx = b.MinTransmitInterval.Duration
		}
		if b.DetectMultiplier != nil && *b.DetectMultiplier > 0 {
			out.BFD.Multiplier = uint32(*b.DetectMultiplier)
		}
	}
	if ref := s.PasswordSecretRef; ref != nil {
		key := ref.Key
		if key == "" {
			key = defaultPasswordKey
		}
		sec := secrets[ref.Name]
		if sec == nil {
			return bad(v1alpha1.ReasonPasswordSecretNotFound, "password Secret %s/%s not found", v1alpha1.InstallNamespace, ref.Name)
		}
		pw := sec.Data[key]
		if len(pw) == 0 {
			return bad(v1alpha1.ReasonPasswordKeyNotFound, "password Secret %s/%s has no (non-empty) key %q", v1alpha1.InstallNamespace, ref.Name, key)
		}
		if len(pw) > maxPasswordLen {
			return bad(v1alpha1.ReasonInvalidPassword, "the password in Secret %s/%s is %d bytes long; TCP-MD5 allows at most %d",
				v1alpha1.InstallNamespace, ref.Name, len(pw), maxPasswordLen)
		}
		out.Password = string(pw)
	}
	return out, nil
}

// PeerProblem reports whether the cluster-level configuration of a peer can
// be completed (its password Secret); nil when it can. It is the part of
// peerConfig that does not depend on a node, for the BGPPeer's conditions.
func PeerProblem(p *v1alpha1.BGPPeer, secrets map[string]*corev1.Secret) *Problem {
	_, prob := peerConfig(p, secrets)
	return prob
}

// activePeers are the BGPPeers that select the node and could be
// configured: the sessions the node runs.
type activePeers struct {
	byName map[string]*bgp.Peer
	order  []string // names, sorted
}

// selectPeers picks the BGPPeers whose nodeSelector selects the node. A
// peer whose configuration cannot be completed (password Secret or key
// missing, address taken by another peer) becomes a Problem: it is
// reported in intents but left out of the active peers. Invalid node
// selectors are reported even without a node.
func selectPeers(in Inputs) (active activePeers, intents []PeerIntent, problems []Problem) {
	var nodeLabels map[string]string
	if in.Node != nil {
		nodeLabels = in.Node.Labels
	}
	peers := slices.Clone(in.Peers)
	slices.SortFunc(peers, func(a, b v1alpha1.BGPPeer) int { return cmp.Compare(a.Name, b.Name) })
	active.byName = make(map[string]*bgp.Peer)
	addrOwner := make(map[netip.Addr]string)
	for i := range peers {
		p := &peers[i]
		ok, err := selects(p.Spec.NodeSelector, nodeLabels)
		if err != nil {
			problems = append(problems, Problem{Kind: "BGPPeer", Name: p.Name, Reason: v1alpha1.ReasonInvalidNodeSelector, Message: err.Error()})
			continue
		}
		if !ok || in.Node == nil {
			continue
		}
		intent := PeerIntent{Name: p.Name, Address: p.Spec.Address}
		bp, prob := peerConfig(p, in.Secrets)
		if prob == nil {
			if owner, taken := addrOwner[bp.Address]; taken {
				prob = &Problem{Kind: "BGPPeer", Name: p.Name, Reason: v1alpha1.ReasonDuplicateAddress,
					Message: fmt.Sprintf("address %s is already used by BGPPeer %s; only one session per router address is possible", bp.Address, owner)}
			}
		}
		if prob != nil {
			intent.Problem = prob
			problems = append(problems, *prob)
		} else {
			addrOwner[bp.Address] = p.Name
			active.byName[p.Name] = &bp
			active.order = append(active.order, p.Name)
		}
		intents = append(intents, intent)
	}
	return active, intents, problems
}

// selects reports whether a (possibly nil) label selector selects the
// labels. nil selects everything; an invalid selector selects nothing.
func selects(sel *metav1.LabelSelector, lbls map[string]string) (bool, error) {
	if sel == nil {
		return true, nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false, err
	}
	return s.Matches(labels.Set(lbls)), nil
}
