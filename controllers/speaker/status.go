package speaker

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp"
)

// Condition types and reasons of BGPNodeStatus and BGPPeer.
const (
	// ConditionReady on a BGPNodeStatus: every session of the node is
	// Established. On a BGPPeer: every node that should peer with it has
	// its session Established.
	ConditionReady = "Ready"
	// ConditionDraining on a BGPNodeStatus: the node is excluded from load
	// balancers and withdraws (or has withdrawn) its routes.
	ConditionDraining = "Draining"
	// ConditionValid on a BGPPeer: its configuration can be completed by the
	// cluster (e.g. its password Secret exists).
	ConditionValid = "Valid"

	ReasonEstablished      = "Established"
	ReasonNotEstablished   = "NotEstablished"
	ReasonNoPeers          = "NoPeers"
	ReasonNoNodes          = "NoNodes"
	ReasonInvalid          = "Invalid"
	ReasonValid            = "Valid"
	ReasonNotExcluded      = "NotExcluded"
	ReasonGracefulShutdown = "GracefulShutdown"
	ReasonWithdrawn        = "Withdrawn"
	ReasonSpeakerStopped   = "SpeakerStopped"
)

// nodeView is what the node reconciler last decided, for the status writer.
type nodeView struct {
	Peers      []PeerIntent
	Phase      DrainPhase
	DrainSince time.Time
	DrainTime  time.Duration
	// Announced is the number of distinct prefixes applied.
	Announced int
}

// ComputeNodeStatus builds a node's BGPNodeStatus status from the reconciler's
// last decision and the sessions the bgp package observes. prev is the
// status currently stored: conditions keep their transition times when they
// do not change. Times are kept to whole seconds, as the API stores them, so
// that an unchanged status compares equal to the stored one.
func ComputeNodeStatus(v nodeView, observed []bgp.PeerStatus, prev v1alpha1.BGPNodeStatusStatus, now time.Time) v1alpha1.BGPNodeStatusStatus {
	now = now.Truncate(time.Second)
	byName := make(map[string]bgp.PeerStatus, len(observed))
	for _, o := range observed {
		byName[o.Name] = o
	}
	out := v1alpha1.BGPNodeStatusStatus{
		AnnouncedPrefixes: int32(v.Announced),
		Conditions:        append([]metav1.Condition(nil), prev.Conditions...),
	}
	var down []string
	for _, p := range v.Peers {
		s := v1alpha1.BGPSessionStatus{Peer: p.Name, Address: p.Address, State: v1alpha1.SessionUnknown}
		switch o, ok := byName[p.Name]; {
		case p.Problem != nil:
			s.State = v1alpha1.SessionIdle
			s.LastError = p.Problem.Reason + ": " + p.Problem.Message
		case ok:
			s.State = v1alpha1.SessionState(o.State)
			if !o.Since.IsZero() {
				t := metav1.NewTime(o.Since.Truncate(time.Second))
				s.Since = &t
			}
			s.PrefixesSent = int32(o.PrefixesSent)
			s.BFDState = o.BFDState
			s.LastError = o.LastError
		}
		if s.State == v1alpha1.SessionEstablished {
			out.EstablishedSessions++
		} else {
			down = append(down, fmt.Sprintf("%s (%s)", s.Peer, s.State))
		}
		out.Sessions = append(out.Sessions, s)
	}

	ready := metav1.Condition{Type: ConditionReady, LastTransitionTime: metav1.NewTime(now)}
	switch {
	case len(v.Peers) == 0:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, ReasonNoPeers, "no BGPPeer selects this node"
	case len(down) == 0:
		ready.Status, ready.Reason = metav1.ConditionTrue, ReasonEstablished
		ready.Message = fmt.Sprintf("all %d sessions established", len(v.Peers))
	default:
		ready.Status, ready.Reason = metav1.ConditionFalse, ReasonNotEstablished
		ready.Message = fmt.Sprintf("%d of %d sessions established; not established: %s",
			out.EstablishedSessions, len(v.Peers), strings.Join(down, ", "))
	}
	meta.SetStatusCondition(&out.Conditions, ready)

	drain := metav1.Condition{Type: ConditionDraining, Status: metav1.ConditionTrue, LastTransitionTime: metav1.NewTime(now)}
	since := v.DrainSince.Truncate(time.Second)
	switch v.Phase {
	case DrainGracefulShutdown:
		drain.Reason = ReasonGracefulShutdown
		drain.Message = fmt.Sprintf("node is labelled %s: routes carry GRACEFUL_SHUTDOWN until %s, then are withdrawn",
			labelExclude, since.Add(v.DrainTime).UTC().Format(time.RFC3339))
		drain.LastTransitionTime = metav1.NewTime(since)
	case DrainWithdrawn:
		drain.Reason = ReasonWithdrawn
		drain.Message = fmt.Sprintf("node is labelled %s: routes withdrawn since %s",
			labelExclude, since.Add(v.DrainTime).UTC().Format(time.RFC3339))
		drain.LastTransitionTime = metav1.NewTime(since)
	default:
		drain.Status, drain.Reason, drain.Message = metav1.ConditionFalse, ReasonNotExcluded, "routes are announced normally"
	}
	meta.SetStatusCondition(&out.Conditions, drain)
	return out
}

// PersistedDrainSince returns the drain start recorded in a stored status
// (the transition time of a True Draining condition), or zero.
func PersistedDrainSince(st v1alpha1.BGPNodeStatusStatus) time.Time {
	c := meta.FindStatusCondition(st.Conditions, ConditionDraining)
	if c == nil || c.Status != metav1.ConditionTrue {
		return time.Time{}
	}
	return c.LastTransitionTime.Time
}

// ComputePeerStatus summarises the sessions every node reports with a peer:
// a node counts when its BGPNodeStatus lists a session with the peer (its
// speaker found that the peer selects it). problem is the peer's
// cluster-level configuration problem, if any (see PeerProblem).
func ComputePeerStatus(peer *v1alpha1.BGPPeer, nodes []v1alpha1.BGPNodeStatus, problem *Problem, now time.Time) v1alpha1.BGPPeerStatus {
	now = now.Truncate(time.Second)
	out := v1alpha1.BGPPeerStatus{Conditions: append([]metav1.Condition(nil), peer.Status.Conditions...)}
	for i := range nodes {
		for _, s := range nodes[i].Status.Sessions {
			if s.Peer != peer.Name {
				continue
			}
			out.Nodes++
			if s.State == v1alpha1.SessionEstablished {
				out.EstablishedNodes++
			}
		}
	}
	out.Sessions = fmt.Sprintf("%d/%d", out.EstablishedNodes, out.Nodes)

	valid := metav1.Condition{Type: ConditionValid, Status: metav1.ConditionTrue, Reason: ReasonValid,
		Message: "configuration complete", ObservedGeneration: peer.Generation, LastTransitionTime: metav1.NewTime(now)}
	if problem != nil {
		valid.Status, valid.Reason, valid.Message = metav1.ConditionFalse, problem.Reason, problem.Message
	}
	meta.SetStatusCondition(&out.Conditions, valid)

	ready := metav1.Condition{Type: ConditionReady, ObservedGeneration: peer.Generation, LastTransitionTime: metav1.NewTime(now)}
	switch {
	case problem != nil:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, ReasonInvalid, problem.Message
	case out.Nodes == 0:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, ReasonNoNodes, "no node reports a session with this peer"
	case out.EstablishedNodes == out.Nodes:
		ready.Status, ready.Reason = metav1.ConditionTrue, ReasonEstablished
		ready.Message = fmt.Sprintf("sessions of all %d nodes established", out.Nodes)
	default:
		ready.Status, ready.Reason = metav1.ConditionFalse, ReasonNotEstablished
		ready.Message = fmt.Sprintf("sessions of %d of %d nodes established", out.EstablishedNodes, out.Nodes)
	}
	meta.SetStatusCondition(&out.Conditions, ready)
	return out
}

const labelExclude = corev1.LabelNodeExcludeBalancers
