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

	ready := metav1.Condition{Type: v1alpha1.ConditionReady, LastTransitionTime: metav1.NewTime(now)}
	switch {
	case len(v.Peers) == 0:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, v1alpha1.ReasonNoPeers, "no BGPPeer selects this node"
	case len(down) == 0:
		ready.Status, ready.Reason = metav1.ConditionTrue, v1alpha1.ReasonEstablished
		ready.Message = fmt.Sprintf("all %d sessions established", len(v.Peers))
	default:
		ready.Status, ready.Reason = metav1.ConditionFalse, v1alpha1.ReasonNotEstablished
		ready.Message = fmt.Sprintf("%d of %d sessions established; not established: %s",
			out.EstablishedSessions, len(v.Peers), strings.Join(down, ", "))
	}
	meta.SetStatusCondition(&out.Conditions, ready)

	drain := metav1.Condition{Type: v1alpha1.ConditionDraining, Status: metav1.ConditionTrue, LastTransitionTime: metav1.NewTime(now)}
	since := v.DrainSince.Truncate(time.Second)
	switch v.Phase {
	case DrainGracefulShutdown:
		drain.Reason = v1alpha1.ReasonGracefulShutdown
		drain.Message = fmt.Sprintf("node is labelled %s: routes carry GRACEFUL_SHUTDOWN until %s, then are withdrawn",
			labelExclude, since.Add(v.DrainTime).UTC().Format(time.RFC3339))
		drain.LastTransitionTime = metav1.NewTime(since)
	case DrainWithdrawn:
		drain.Reason = v1alpha1.ReasonWithdrawn
		drain.Message = fmt.Sprintf("node is labelled %s: routes withdrawn since %s",
			labelExclude, since.Add(v.DrainTime).UTC().Format(time.RFC3339))
		drain.LastTransitionTime = metav1.NewTime(since)
	default:
		drain.Status, drain.Reason, drain.Message = metav1.ConditionFalse, v1alpha1.ReasonNotExcluded, "routes are announced normally"
	}
	meta.SetStatusCondition(&out.Conditions, drain)
	return out
}

// PersistedDrainSince returns the drain start recorded in a stored status
// (the transition time of a True Draining condition), or zero.
func PersistedDrainSince(st v1alpha1.BGPNodeStatusStatus) time.Time {
	c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionDraining)
	if c == nil || c.Status != metav1.ConditionTrue {
		return time.Time{}
	}
	return c.LastTransitionTime.Time
}

const labelExclude = corev1.LabelNodeExcludeBalancers
