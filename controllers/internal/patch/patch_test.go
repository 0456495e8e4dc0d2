package patch

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// controlChars is a string that encoding/json must escape: quotes,
// backslash, newline, tab, NUL, ESC, DEL, a line separator, HTML.
const controlChars = "say \"hi\"\\\n\t\x00\x1b\x7f\u2028<&>"

func pool(rv string, fins ...string) *v1alpha1.IPPool {
	return &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "p", ResourceVersion: rv, Finalizers: fins}}
}

func nodeStatus(rv, lastError string, established int32) *v1alpha1.BGPNodeStatus {
	return &v1alpha1.BGPNodeStatus{
		ObjectMeta: metav1.ObjectMeta{Name: "node-a", ResourceVersion: rv},
		Status: v1alpha1.BGPNodeStatusStatus{
			EstablishedSessions: established,
			Sessions:            []v1alpha1.BGPSessionStatus{{Peer: "r1", State: v1alpha1.SessionIdle, LastError: lastError}},
		},
	}
}

func TestMergeFrom(t *testing.T) {
	for _, tc := range []struct {
		name          string
		before, after client.Object
		lock          Lock
		want          string
	}{
		{"finalizer added, locked", pool("7"), pool("7", "bgplb.io/pool-protection"), Optimistic,
			`{"metadata":{"finalizers":["bgplb.io/pool-protection"],"resourceVersion":"7"}}`},
		{"finalizer added, unlocked", pool("7"), pool("7", "bgplb.io/pool-protection"), LastWriteWins,
			`{"metadata":{"finalizers":["bgplb.io/pool-protection"]}}`},
		{"last finalizer removed: null deletes the list", pool("7", "bgplb.io/pool-protection"), pool("7"), Optimistic,
			`{"metadata":{"finalizers":null,"resourceVersion":"7"}}`},
		{"one of two finalizers removed: lists are replaced whole", pool("7", "a.example/x", "bgplb.io/pool-protection"), pool("7", "a.example/x"), Optimistic,
			`{"metadata":{"finalizers":["a.example/x"],"resourceVersion":"7"}}`},
		{"nothing changed, locked: only the guard", pool("7", "f"), pool("7", "f"), Optimistic,
			`{"metadata":{"resourceVersion":"7"}}`},
		{"nothing changed, unlocked: empty", pool("7", "f"), pool("7", "f"), LastWriteWins, `{}`},
		{"status field changed", nodeStatus("3", "", 0), nodeStatus("3", "", 1), LastWriteWins,
			`{"status":{"establishedSessions":1}}`},
		{"status list changed: sent whole", nodeStatus("3", "", 0), nodeStatus("3", "refused", 0), Optimistic,
			`{"metadata":{"resourceVersion":"3"},"status":{"sessions":[{"address":"","lastError":"refused","peer":"r1","state":"Idle"}]}}`},
		{"control characters escaped", nodeStatus("3", "", 0), nodeStatus("3", "a\n\x00", 0), LastWriteWins,
			`{"status":{"sessions":[{"address":"","lastError":"a\n\u0000","peer":"r1","state":"Idle"}]}}`},
	} {
		p := MergeFrom(tc.before, tc.lock)
		if p.Type() != types.MergePatchType {
			t.Errorf("%s: type %s", tc.name, p.Type())
		}
		b, err := p.Data(tc.after)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if string(b) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, b, tc.want)
		}
	}
}

// TestMergeFromRoundTrip applies the patch to before, as the API server
// would, and gets after back, control characters included.
func TestMergeFromRoundTrip(t *testing.T) {
	before, after := nodeStatus("3", "", 0), nodeStatus("3", controlChars, 2)
	b, err := MergeFrom(before, Optimistic).Data(after)
	if err != nil {
		t.Fatal(err)
	}
	var got v1alpha1.BGPNodeStatus
	decode(t, applyMerge(t, encode(t, before), b), &got)
	if !equality.Semantic.DeepEqual(&got, after) {
		t.Fatalf("patched\n%+v\nwant\n%+v", got, after)
	}
}

func TestStatusBody(t *testing.T) {
	cond := metav1.Condition{Type: "T", Status: metav1.ConditionTrue, Reason: "R", Message: "m", LastTransitionTime: metav1.Unix(0, 0).Rfc3339Copy()}
	for _, tc := range []struct {
		name   string
		rv     string
		status any
		want   string
	}{
		{"typed status, guarded", "42", v1alpha1.IPPoolStatus{Allocated: 2, Available: "14", Conditions: []metav1.Condition{cond}},
			`{"metadata":{"resourceVersion":"42"},"status":{"allocated":2,"available":"14","conditions":[{"type":"T","status":"True","lastTransitionTime":"1970-01-01T00:00:00Z","reason":"R","message":"m"}]}}`},
		{"typed status, unguarded; omitempty fields are left out (they stay as they are)", "", v1alpha1.IPPoolStatus{Available: "0"},
			`{"status":{"available":"0"}}`},
		{"pointer to a typed status", "", &v1alpha1.IPPoolStatus{ObservedGeneration: 3},
			`{"status":{"observedGeneration":3}}`},
		{"partial status with a strategic merge directive", "9", map[string]any{
			"conditions":   []any{map[string]any{"type": "T", "$patch": "delete"}},
			"loadBalancer": map[string]any{"ingress": []corev1.LoadBalancerIngress(nil)},
		}, `{"metadata":{"resourceVersion":"9"},"status":{"conditions":[{"$patch":"delete","type":"T"}],"loadBalancer":{"ingress":null}}}`},
		{"control characters escaped", "", v1alpha1.IPPoolStatus{Available: "\"\\\n\x00<"},
			`{"status":{"available":"\"\\\n\u0000\u003c"}}`},
	} {
		b, err := StatusBody(tc.rv, tc.status)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if string(b) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, b, tc.want)
		}
		p, err := Status(types.MergePatchType, tc.rv, tc.status)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if pb, _ := p.Data(nil); string(pb) != string(b) || p.Type() != types.MergePatchType {
			t.Errorf("%s: Status gives %s %s, StatusBody %s", tc.name, p.Type(), pb, b)
		}
	}
}

func TestStatusRejects(t *testing.T) {
	if _, err := StatusBody("1", nil); err == nil {
		t.Error("StatusBody accepted no status")
	}
	for _, pt := range []types.PatchType{types.JSONPatchType, types.ApplyYAMLPatchType, types.ApplyCBORPatchType, ""} {
		if _, err := Status(pt, "1", v1alpha1.IPPoolStatus{}); err == nil {
			t.Errorf("Status accepted patch type %q", pt)
		}
	}
}

// TestStatusRoundTrip applies status patches as the API server would: a
// strategic merge patch to a Service (conditions merge by type, other
// controllers' stay) and a merge patch to a custom resource, with control
// characters in the strings.
func TestStatusRoundTrip(t *testing.T) {
	theirs := metav1.Condition{Type: "example.com/Other", Status: metav1.ConditionFalse, Reason: "X", LastTransitionTime: metav1.Unix(5, 0).Rfc3339Copy()}
	ours := metav1.Condition{Type: v1alpha1.ConditionAddressAllocated, Status: metav1.ConditionTrue, Reason: "Allocated", Message: controlChars, LastTransitionTime: metav1.Unix(9, 0).Rfc3339Copy()}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", ResourceVersion: "5"},
		Status:     corev1.ServiceStatus{Conditions: []metav1.Condition{theirs}},
	}
	ingress := []corev1.LoadBalancerIngress{{IP: "192.0.2.1", Hostname: controlChars}}
	b, err := StatusBody("5", map[string]any{
		"conditions":   []metav1.Condition{ours},
		"loadBalancer": corev1.LoadBalancerStatus{Ingress: ingress},
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := strategicpatch.StrategicMergePatch(encode(t, svc), b, corev1.Service{})
	if err != nil {
		t.Fatal(err)
	}
	var got corev1.Service
	decode(t, out, &got)
	want := svc.DeepCopy()
	want.Status = corev1.ServiceStatus{Conditions: []metav1.Condition{ours, theirs}, LoadBalancer: corev1.LoadBalancerStatus{Ingress: ingress}}
	if !equality.Semantic.DeepEqual(&got, want) {
		t.Fatalf("patched Service\n%+v\nwant\n%+v", got.Status, want.Status)
	}

	before := nodeStatus("3", "", 0)
	next := nodeStatus("3", controlChars, 1).Status
	b, err = StatusBody("3", next)
	if err != nil {
		t.Fatal(err)
	}
	var gotNS v1alpha1.BGPNodeStatus
	decode(t, applyMerge(t, encode(t, before), b), &gotNS)
	if !equality.Semantic.DeepEqual(gotNS.Status, next) {
		t.Fatalf("patched status\n%+v\nwant\n%+v", gotNS.Status, next)
	}
}

func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
}

// applyMerge applies a JSON merge patch (RFC 7386) to a document.
func applyMerge(t *testing.T, doc, patch []byte) []byte {
	t.Helper()
	var d, p any
	decode(t, doc, &d)
	decode(t, patch, &p)
	return encode(t, mergeValue(d, p))
}

func mergeValue(target, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	tm, ok := target.(map[string]any)
	if !ok {
		tm = map[string]any{}
	}
	for k, v := range pm {
		if v == nil {
			delete(tm, k)
		} else {
			tm[k] = mergeValue(tm[k], v)
		}
	}
	return tm
}
