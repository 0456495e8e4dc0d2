package peerstatus

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/speaker"
)

// Compute summarises the sessions every node reports with a peer: a node
// counts when its BGPNodeStatus lists a session with the peer (its speaker
// found that the peer selects it). problem is the peer's cluster-level
// configuration problem, if any (speaker.PeerProblem). Conditions keep
// their transition times when they do not change; times are whole seconds,
// as the API stores them, so an unchanged status compares equal.
func Compute(peer *v1alpha1.BGPPeer, nodes []v1alpha1.BGPNodeStatus, problem *speaker.Problem, now time.Time) v1alpha1.BGPPeerStatus {
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

	valid := metav1.Condition{Type: v1alpha1.ConditionValid, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonValid,
		Message: "configuration complete", ObservedGeneration: peer.Generation, LastTransitionTime: metav1.NewTime(now)}
	if problem != nil {
		valid.Status, valid.Reason, valid.Message = metav1.ConditionFalse, problem.Reason, problem.Message
	}
	meta.SetStatusCondition(&out.Conditions, valid)

	ready := metav1.Condition{Type: v1alpha1.ConditionReady, ObservedGeneration: peer.Generation, LastTransitionTime: metav1.NewTime(now)}
	switch {
	case problem != nil:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, v1alpha1.ReasonInvalid, problem.Message
	case out.Nodes == 0:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, v1alpha1.ReasonNoNodes, "no node reports a session with this peer"
	case out.EstablishedNodes == out.Nodes:
		ready.Status, ready.Reason = metav1.ConditionTrue, v1alpha1.ReasonEstablished
		ready.Message = fmt.Sprintf("sessions of all %d nodes established", out.Nodes)
	default:
		ready.Status, ready.Reason = metav1.ConditionFalse, v1alpha1.ReasonNotEstablished
		ready.Message = fmt.Sprintf("sessions of %d of %d nodes established", out.EstablishedNodes, out.Nodes)
	}
	meta.SetStatusCondition(&out.Conditions, ready)
	return out
}
