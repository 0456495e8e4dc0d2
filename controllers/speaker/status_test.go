package speaker

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp"
)

func TestComputeNodeStatus(t *testing.T) {
	since := t0.Add(-time.Hour).Add(123 * time.Millisecond)
	view := nodeView{
		Peers: []PeerIntent{
			{Name: "r1", Address: "198.51.100.1"},
			{Name: "r2", Address: "198.51.100.2"},
			{Name: "r3", Address: "198.51.100.3", Problem: &Problem{Kind: "BGPPeer", Name: "r3", Reason: v1alpha1.ReasonPasswordSecretNotFound, Message: "password Secret bgplb-system/x not found"}},
			{Name: "r4", Address: "2001:db8::4"},
		},
		Announced: 7,
		DrainTime: 30 * time.Second,
	}
	observed := []bgp.PeerStatus{
		{Name: "r1", Address: netip.MustParseAddr("198.51.100.1"), State: bgp.StateEstablished, Since: since, PrefixesSent: 5, BFDState: bgp.BFDUp},
		{Name: "r2", Address: netip.MustParseAddr("198.51.100.2"), State: bgp.StateActive, LastError: "connection refused"},
	}
	st := ComputeNodeStatus(view, observed, v1alpha1.BGPNodeStatusStatus{}, t0)

	if len(st.Sessions) != 4 {
		t.Fatalf("sessions = %+v", st.Sessions)
	}
	r1, r2, r3, r4 := st.Sessions[0], st.Sessions[1], st.Sessions[2], st.Sessions[3]
	if r1.State != v1alpha1.SessionEstablished || r1.PrefixesSent != 5 || r1.BFDState != "Up" || r1.Address != "198.51.100.1" ||
		r1.Since == nil || !r1.Since.Time.Equal(since.Truncate(time.Second)) {
		t.Errorf("r1 = %+v", r1)
	}
	if r2.State != v1alpha1.SessionActive || r2.LastError != "connection refused" || r2.Since != nil {
		t.Errorf("r2 = %+v", r2)
	}
	if r3.State != v1alpha1.SessionIdle || !strings.Contains(r3.LastError, "PasswordSecretNotFound") {
		t.Errorf("r3 = %+v", r3)
	}
	if r4.State != v1alpha1.SessionUnknown {
		t.Errorf("r4 (not applied yet) = %+v", r4)
	}
	if st.EstablishedSessions != 1 || st.AnnouncedPrefixes != 7 {
		t.Errorf("counts = %d established, %d prefixes", st.EstablishedSessions, st.AnnouncedPrefixes)
	}
	ready := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != v1alpha1.ReasonNotEstablished ||
		!strings.Contains(ready.Message, "1 of 4") || !strings.Contains(ready.Message, "r2 (Active)") {
		t.Errorf("Ready = %+v", ready)
	}
	drain := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionDraining)
	if drain == nil || drain.Status != metav1.ConditionFalse || drain.Reason != v1alpha1.ReasonNotExcluded {
		t.Errorf("Draining = %+v", drain)
	}

	// Nothing changed an hour later: the status is equal, transition times kept.
	again := ComputeNodeStatus(view, observed, st, t0.Add(time.Hour))
	if !equality.Semantic.DeepEqual(st, again) {
		t.Errorf("unchanged input gives a different status:\n%+v\n%+v", st, again)
	}

	// All established: Ready flips, with a new transition time.
	view.Peers = view.Peers[:1]
	later := t0.Add(2 * time.Hour).Add(400 * time.Millisecond)
	st2 := ComputeNodeStatus(view, observed[:1], st, later)
	ready = meta.FindStatusCondition(st2.Conditions, v1alpha1.ConditionReady)
	if ready.Status != metav1.ConditionTrue || ready.Reason != v1alpha1.ReasonEstablished || !ready.LastTransitionTime.Time.Equal(later.Truncate(time.Second)) {
		t.Errorf("Ready = %+v", ready)
	}

	// No peers: not ready.
	st3 := ComputeNodeStatus(nodeView{}, nil, st2, later)
	if c := meta.FindStatusCondition(st3.Conditions, v1alpha1.ConditionReady); c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonNoPeers {
		t.Errorf("Ready without peers = %+v", c)
	}
}

func TestComputeNodeStatusDraining(t *testing.T) {
	drainAt := t0.Add(500 * time.Millisecond)
	v := nodeView{Phase: DrainGracefulShutdown, DrainSince: drainAt, DrainTime: 30 * time.Second}
	st := ComputeNodeStatus(v, nil, v1alpha1.BGPNodeStatusStatus{}, t0.Add(5*time.Second))
	c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionDraining)
	if c == nil || c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonGracefulShutdown || !c.LastTransitionTime.Time.Equal(t0) {
		t.Fatalf("Draining = %+v", c)
	}
	if !strings.Contains(c.Message, t0.Add(30*time.Second).Format(time.RFC3339)) {
		t.Errorf("message does not say when the routes go: %q", c.Message)
	}
	// The persisted start is what a restarted speaker resumes from.
	if got := PersistedDrainSince(st); !got.Equal(t0) {
		t.Errorf("PersistedDrainSince = %v", got)
	}
	v.Phase = DrainWithdrawn
	st = ComputeNodeStatus(v, nil, st, t0.Add(time.Minute))
	c = meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionDraining)
	if c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonWithdrawn || !c.LastTransitionTime.Time.Equal(t0) {
		t.Errorf("Draining = %+v", c)
	}
	v.Phase = DrainNone
	st = ComputeNodeStatus(v, nil, st, t0.Add(2*time.Minute))
	c = meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionDraining)
	if c.Status != metav1.ConditionFalse || !c.LastTransitionTime.Time.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("Draining = %+v", c)
	}
	if got := PersistedDrainSince(st); !got.IsZero() {
		t.Errorf("PersistedDrainSince after the label went = %v", got)
	}
}

func TestEndpointUsable(t *testing.T) {
	cases := []struct {
		ready, serving, terminating string
		want                        bool
	}{
		{"y", "y", "n", true},
		{"-", "-", "-", true},
		{"n", "n", "n", false},
		{"n", "y", "n", false}, // serving but not terminating means not ready for another reason
		{"n", "y", "y", true},
		{"n", "-", "y", true},
		{"n", "n", "y", false},
		{"n", "y", "-", false},
	}
	for _, tc := range cases {
		e := ep{ready: tc.ready, serving: tc.serving, terminating: tc.terminating}
		got := endpointUsable(slice(e).Endpoints[0].Conditions)
		if got != tc.want {
			t.Errorf("ready=%s serving=%s terminating=%s: usable=%v, want %v", tc.ready, tc.serving, tc.terminating, got, tc.want)
		}
	}
}

func TestSamePeers(t *testing.T) {
	lp := func(v uint32) *uint32 { return &v }
	a := bgp.Attributes{Communities: []uint32{1, 2}, LargeCommunities: []bgp.LargeCommunity{{GlobalAdmin: 1, LocalData1: 2, LocalData2: 3}}, LocalPref: lp(100)}
	for _, tc := range []struct {
		name string
		x, y map[string]bgp.Attributes
		want bool
	}{
		{"both empty", nil, map[string]bgp.Attributes{}, true},
		{"equal", map[string]bgp.Attributes{"r1": a}, map[string]bgp.Attributes{"r1": a}, true},
		{"nil and empty lists alike", map[string]bgp.Attributes{"r1": {}}, map[string]bgp.Attributes{"r1": {Communities: []uint32{}}}, true},
		{"other peer", map[string]bgp.Attributes{"r1": a}, map[string]bgp.Attributes{"r2": a}, false},
		{"one more peer", map[string]bgp.Attributes{"r1": a}, map[string]bgp.Attributes{"r1": a, "r2": a}, false},
		{"community", map[string]bgp.Attributes{"r1": a}, map[string]bgp.Attributes{"r1": {Communities: []uint32{1}, LargeCommunities: a.LargeCommunities, LocalPref: lp(100)}}, false},
		{"large community", map[string]bgp.Attributes{"r1": a}, map[string]bgp.Attributes{"r1": {Communities: a.Communities, LocalPref: lp(100)}}, false},
		{"local pref value", map[string]bgp.Attributes{"r1": a}, map[string]bgp.Attributes{"r1": {Communities: a.Communities, LargeCommunities: a.LargeCommunities, LocalPref: lp(200)}}, false},
		{"local pref unset", map[string]bgp.Attributes{"r1": a}, map[string]bgp.Attributes{"r1": {Communities: a.Communities, LargeCommunities: a.LargeCommunities}}, false},
	} {
		if got := samePeers(tc.x, tc.y); got != tc.want {
			t.Errorf("%s: samePeers = %v, want %v", tc.name, got, tc.want)
		}
		if got := samePeers(tc.y, tc.x); got != tc.want {
			t.Errorf("%s (swapped): samePeers = %v, want %v", tc.name, got, tc.want)
		}
	}
}
