package speaker

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp"
)

// fakeBGP returns canned session states; the real speaker is exercised by
// the envtest suite.
type fakeBGP struct {
	mu     sync.Mutex
	status []bgp.PeerStatus
}

func (f *fakeBGP) Apply(context.Context, bgp.State) error { return nil }
func (f *fakeBGP) UpdatePaths(context.Context, []bgp.Path, []netip.Prefix) error {
	return nil
}
func (f *fakeBGP) Status(context.Context) ([]bgp.PeerStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]bgp.PeerStatus(nil), f.status...), nil
}

func (f *fakeBGP) set(s ...bgp.PeerStatus) {
	f.mu.Lock()
	f.status = s
	f.mu.Unlock()
}

// The writer's own logic: write only on change, at most once per interval,
// owned by the Node, and keep metrics and events in step with the sessions.
func TestNodeStatusWriter(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithStatusSubresource(&v1alpha1.BGPNodeStatus{}).Build()
	writes := 0
	counting := interceptWrites(c, &writes)
	now := t0
	fb := &fakeBGP{}
	rec := events.NewFakeRecorder(10)
	w := &nodeStatusWriter{
		nodeName: thisNode, reader: c, writer: counting, bgp: fb, hub: newViewHub(),
		interval: time.Second, recorder: rec, log: logr.Discard(), now: func() time.Time { return now },
	}
	ctx := context.Background()
	sync := func() {
		t.Helper()
		if err := w.sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	get := func() *v1alpha1.BGPNodeStatus {
		t.Helper()
		var st v1alpha1.BGPNodeStatus
		if err := c.Get(ctx, types.NamespacedName{Name: thisNode}, &st); err != nil {
			t.Fatal(err)
		}
		return &st
	}
	r1 := bgp.PeerStatus{Name: "r1", Address: netip.MustParseAddr("198.51.100.1"), State: bgp.StateActive}

	// Nothing decided yet, then no Node: nothing written.
	sync()
	w.hub.set("", nodeView{Peers: []PeerIntent{{Name: "r1", Address: "198.51.100.1"}}})
	sync()
	if writes != 0 {
		t.Fatalf("%d writes without a Node", writes)
	}

	w.hub.set("node-uid", nodeView{Peers: []PeerIntent{{Name: "r1", Address: "198.51.100.1"}}, Announced: 2})
	fb.set(r1)
	sync()
	st := get()
	if len(st.OwnerReferences) != 1 || st.OwnerReferences[0].UID != "node-uid" || st.OwnerReferences[0].Kind != "Node" {
		t.Errorf("owner references = %+v", st.OwnerReferences)
	}
	if len(st.Status.Sessions) != 1 || st.Status.Sessions[0].State != v1alpha1.SessionActive || st.Status.AnnouncedPrefixes != 2 {
		t.Errorf("status = %+v", st.Status)
	}
	first := writes

	// Unchanged, even much later: no write.
	now = now.Add(10 * time.Second)
	sync()
	if writes != first {
		t.Errorf("unchanged status written again (%d writes)", writes-first)
	}

	// Established: written, and an event on the peer.
	r1.State, r1.Since, r1.PrefixesSent = bgp.StateEstablished, now, 2
	fb.set(r1)
	sync()
	if writes != first+1 || get().Status.Sessions[0].State != v1alpha1.SessionEstablished {
		t.Errorf("change not written: %d writes, %+v", writes-first, get().Status.Sessions)
	}
	if e := <-rec.Events; !strings.Contains(e, "SessionEstablished") {
		t.Errorf("event = %q", e)
	}
	if v := gaugeValue(sessionUp.WithLabelValues("r1")); v != 1 {
		t.Errorf("session_up = %v", v)
	}
	if v := gaugeValue(announcedPrefixes.WithLabelValues("r1")); v != 2 {
		t.Errorf("announced_prefixes = %v", v)
	}

	// A change within the interval waits for the next tick.
	now = now.Add(300 * time.Millisecond)
	r1.State, r1.LastError = bgp.StateActive, "hold timer expired"
	fb.set(r1)
	sync()
	if writes != first+1 {
		t.Errorf("written twice within one interval")
	}
	if e := <-rec.Events; !strings.Contains(e, "SessionDown") || !strings.Contains(e, "hold timer expired") {
		t.Errorf("event = %q", e)
	}
	now = now.Add(time.Second)
	sync()
	if writes != first+2 || get().Status.Sessions[0].LastError != "hold timer expired" {
		t.Errorf("pending change not written after the interval")
	}

	// The peer goes: its metric series go too.
	w.hub.set("node-uid", nodeView{})
	fb.set()
	now = now.Add(time.Second)
	sync()
	if n := seriesCount(sessionUp); n != 0 {
		t.Errorf("%d session_up series left", n)
	}

	// A status left by an earlier Node of the same name is not taken over.
	w.hub.set("new-node-uid", nodeView{})
	now = now.Add(time.Second)
	before := writes
	sync()
	if writes != before {
		t.Errorf("wrote a status owned by another Node")
	}

	// Stopping marks every session down.
	if err := w.markStopped(ctx, "stopped for a test"); err != nil {
		t.Fatal(err)
	}
	for _, c := range get().Status.Conditions {
		if c.Type == v1alpha1.ConditionReady && (c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonSpeakerStopped) {
			t.Errorf("Ready after stop = %+v", c)
		}
	}
}

// interceptWrites counts the writes made through the returned client.
func interceptWrites(c client.WithWatch, n *int) client.Client {
	return &countingClient{Client: c, n: n}
}

type countingClient struct {
	client.Client
	n *int
}

func (c *countingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	*c.n++
	return c.Client.Create(ctx, obj, opts...)
}

func (c *countingClient) Status() client.SubResourceWriter {
	return &countingStatus{SubResourceWriter: c.Client.Status(), n: c.n}
}

type countingStatus struct {
	client.SubResourceWriter
	n *int
}

func (c *countingStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	*c.n++
	return c.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return -1
	}
	return m.GetGauge().GetValue()
}

func seriesCount(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 100)
	c.Collect(ch)
	close(ch)
	return len(ch)
}
