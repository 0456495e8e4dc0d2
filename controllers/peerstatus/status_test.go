package peerstatus

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/speaker"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestCompute(t *testing.T) {
	nodeStatus := func(name string, sessions ...v1alpha1.BGPSessionStatus) v1alpha1.BGPNodeStatus {
		return v1alpha1.BGPNodeStatus{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: v1alpha1.BGPNodeStatusStatus{Sessions: sessions}}
	}
	sess := func(p string, s v1alpha1.SessionState) v1alpha1.BGPSessionStatus {
		return v1alpha1.BGPSessionStatus{Peer: p, State: s}
	}
	nodes := []v1alpha1.BGPNodeStatus{
		nodeStatus("n1", sess("r1", v1alpha1.SessionEstablished), sess("r2", v1alpha1.SessionEstablished)),
		nodeStatus("n2", sess("r1", v1alpha1.SessionActive)),
		nodeStatus("n3", sess("r1", v1alpha1.SessionEstablished)),
		nodeStatus("n4"),
	}
	cases := []struct {
		peer        string
		problem     *speaker.Problem
		nodes, est  int32
		sessions    string
		readyStatus metav1.ConditionStatus
		readyReason string
		validStatus metav1.ConditionStatus
		validReason string
	}{
		{"r1", nil, 3, 2, "2/3", metav1.ConditionFalse, v1alpha1.ReasonNotEstablished, metav1.ConditionTrue, v1alpha1.ReasonValid},
		{"r2", nil, 1, 1, "1/1", metav1.ConditionTrue, v1alpha1.ReasonEstablished, metav1.ConditionTrue, v1alpha1.ReasonValid},
		{"r3", nil, 0, 0, "0/0", metav1.ConditionFalse, v1alpha1.ReasonNoNodes, metav1.ConditionTrue, v1alpha1.ReasonValid},
		{"r2", &speaker.Problem{Reason: v1alpha1.ReasonPasswordSecretNotFound, Message: "password Secret bgplb-system/x not found"}, 1, 1, "1/1",
			metav1.ConditionFalse, v1alpha1.ReasonInvalid, metav1.ConditionFalse, v1alpha1.ReasonPasswordSecretNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.peer+"/"+tc.sessions, func(t *testing.T) {
			p := &v1alpha1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: tc.peer, Generation: 3}}
			st := Compute(p, nodes, tc.problem, t0)
			if st.Nodes != tc.nodes || st.EstablishedNodes != tc.est || st.Sessions != tc.sessions {
				t.Errorf("status = %d/%d %q", st.EstablishedNodes, st.Nodes, st.Sessions)
			}
			r := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
			if r == nil || r.Status != tc.readyStatus || r.Reason != tc.readyReason || r.ObservedGeneration != 3 {
				t.Errorf("Ready = %+v", r)
			}
			v := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionValid)
			if v == nil || v.Status != tc.validStatus || v.Reason != tc.validReason {
				t.Errorf("Valid = %+v", v)
			}
			// Idempotent: computing again from the stored status changes nothing.
			p.Status = st
			if again := Compute(p, nodes, tc.problem, t0.Add(time.Hour)); !equality.Semantic.DeepEqual(st, again) {
				t.Errorf("not idempotent:\n%+v\n%+v", st, again)
			}
		})
	}
}
