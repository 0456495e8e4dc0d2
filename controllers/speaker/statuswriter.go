package speaker

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp"
	"github.com/bgplb/bgplb/controllers/internal/patch"
)

// nodeStatusWriter keeps the node's BGPNodeStatus and the session metrics
// up to date. It polls the bgp package every Interval and whenever the
// reconciler decides something, and writes the status only when it differs
// from the stored one, at most once per Interval.
type nodeStatusWriter struct {
	nodeName string
	reader   client.Reader // the speaker's cache
	// apiReader reads the Node past the cache before the status is
	// created (nil: trust the reconciler's view, in unit tests).
	apiReader client.Reader
	writer    client.Client
	bgp       BGP
	hub       *viewHub
	interval  time.Duration
	recorder  events.EventRecorder
	log       logr.Logger
	now       func() time.Time

	lastWrite time.Time
	states    map[string]bgp.SessionState // last observed, for events
	metered   map[string]bool             // peers with metric series
	last      *v1alpha1.BGPNodeStatus     // last written, for the final update
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every
// speaker reports its own node.
func (w *nodeStatusWriter) NeedLeaderElection() bool { return false }

// Start runs the writer until ctx ends.
func (w *nodeStatusWriter) Start(ctx context.Context) error {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-w.hub.changed:
		}
		if err := w.sync(ctx); err != nil && ctx.Err() == nil {
			w.log.Error(err, "updating BGPNodeStatus")
		}
	}
}

// sync reads the sessions, updates metrics and events, and writes the
// status if it changed and the last write is at least one interval old
// (otherwise the next tick writes it).
func (w *nodeStatusWriter) sync(ctx context.Context) error {
	uid, view, ok := w.hub.get()
	if !ok {
		return nil // the reconciler has not run yet
	}
	observed, err := w.bgp.Status(ctx)
	if err != nil {
		return fmt.Errorf("reading BGP status: %w", err)
	}
	w.observe(view, observed)
	if uid == "" {
		return nil // no Node object: nothing to own the status
	}
	now := w.now()
	if now.Sub(w.lastWrite) < w.interval {
		return nil
	}
	var cur v1alpha1.BGPNodeStatus
	err = w.reader.Get(ctx, types.NamespacedName{Name: w.nodeName}, &cur)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading BGPNodeStatus: %w", err)
	}
	if exists && ownedByOtherNode(&cur, uid) {
		// The Node was re-created: the garbage collector removes the old
		// status; create ours after it is gone.
		w.log.V(1).Info("BGPNodeStatus belongs to an earlier Node of this name; waiting for the garbage collector before writing ours")
		return nil
	}
	next := ComputeNodeStatus(view, observed, cur.Status, now)
	if cr, ok := w.bgp.(ConditionReporter); ok {
		for _, c := range cr.Conditions(now) {
			meta.SetStatusCondition(&next.Conditions, c)
		}
	}
	if exists && equality.Semantic.DeepEqual(cur.Status, next) {
		return nil
	}
	w.lastWrite = now
	if !exists {
		// The reconciler's view may be older than the Node: a Node
		// deleted and registered again has a new UID, and a status owned
		// by the old one would wait for the garbage collector forever
		// (ownedByOtherNode) where none runs, or until it runs.
		if live, err := w.liveNodeUID(ctx); err != nil {
			return err
		} else if live != uid {
			w.log.V(1).Info("the Node changed since the last reconcile; creating BGPNodeStatus after the next one", "seen", uid, "live", live)
			return nil
		}
		obj := &v1alpha1.BGPNodeStatus{ObjectMeta: metav1.ObjectMeta{
			Name: w.nodeName,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Node", Name: w.nodeName, UID: uid,
			}},
		}}
		if err := w.writer.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating BGPNodeStatus: %w", err)
		} else if err != nil {
			// Lost a race with an earlier run of this speaker; the cache
			// will show its object and the next sync patches it.
			w.log.V(1).Info("BGPNodeStatus exists already though the cache has none yet; patching it on the next sync")
			return nil
		}
		cur = *obj
	}
	patched := cur.DeepCopy()
	patched.Status = next
	if err := w.writer.Status().Patch(ctx, patched, patch.MergeFrom(&cur, patch.LastWriteWins)); err != nil {
		if apierrors.IsNotFound(err) {
			// Deleted since the cache saw it (the garbage collector, after
			// the Node was re-created): the next sync creates it again.
			w.log.V(1).Info("BGPNodeStatus deleted while being updated; creating it again on the next sync")
			return nil
		}
		return fmt.Errorf("patching BGPNodeStatus status: %w", err)
	}
	w.last = patched
	return nil
}

// liveNodeUID is the UID of the node's Node as the API server has it now
// ("" when there is none).
func (w *nodeStatusWriter) liveNodeUID(ctx context.Context) (types.UID, error) {
	if w.apiReader == nil {
		uid, _, _ := w.hub.get()
		return uid, nil
	}
	var n corev1.Node
	switch err := w.apiReader.Get(ctx, types.NamespacedName{Name: w.nodeName}, &n); {
	case apierrors.IsNotFound(err):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("reading Node %s: %w", w.nodeName, err)
	}
	return n.UID, nil
}

func ownedByOtherNode(st *v1alpha1.BGPNodeStatus, uid types.UID) bool {
	for _, o := range st.OwnerReferences {
		if o.Kind == "Node" && o.UID != uid {
			return true
		}
	}
	return false
}

// observe updates the session metrics and emits an event on the BGPPeer
// when a session comes up or goes down.
func (w *nodeStatusWriter) observe(view nodeView, observed []bgp.PeerStatus) {
	seen := make(map[string]bool, len(observed))
	states := make(map[string]bgp.SessionState, len(observed))
	addr := make(map[string]string, len(view.Peers))
	for _, p := range view.Peers {
		addr[p.Name] = p.Address
	}
	for _, o := range observed {
		seen[o.Name] = true
		states[o.Name] = o.State
		up := 0.0
		if o.State == bgp.StateEstablished {
			up = 1
		}
		sessionUp.WithLabelValues(o.Name).Set(up)
		announcedPrefixes.WithLabelValues(o.Name).Set(float64(o.PrefixesSent))
		setBFDMetric(o)

		prev, known := w.states[o.Name]
		if !known || prev == o.State || w.recorder == nil {
			continue
		}
		peer := &v1alpha1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: o.Name}}
		switch {
		case o.State == bgp.StateEstablished:
			w.recorder.Eventf(peer, nil, corev1.EventTypeNormal, v1alpha1.ReasonSessionEstablished, "Connect",
				"node %s: session with %s established", w.nodeName, addr[o.Name])
		case prev == bgp.StateEstablished:
			msg := fmt.Sprintf("node %s: session with %s went %s", w.nodeName, addr[o.Name], o.State)
			if o.LastError != "" {
				msg += ": " + o.LastError
			}
			w.recorder.Eventf(peer, nil, corev1.EventTypeWarning, v1alpha1.ReasonSessionDown, "Connect", "%s", msg)
		}
	}
	for name := range w.metered {
		if !seen[name] {
			sessionUp.DeleteLabelValues(name)
			announcedPrefixes.DeleteLabelValues(name)
			bfdUp.DeleteLabelValues(name)
		}
	}
	w.metered, w.states = seen, states
}

// setBFDMetric sets a peer's BFD gauge, or drops its series when the peer
// has no BFD (BFDState empty), so "0" always means a BFD session not Up.
func setBFDMetric(o bgp.PeerStatus) {
	switch o.BFDState {
	case "":
		bfdUp.DeleteLabelValues(o.Name)
	case bgp.BFDUp:
		bfdUp.WithLabelValues(o.Name).Set(1)
	default:
		bfdUp.WithLabelValues(o.Name).Set(0)
	}
}

// markStopped records, best effort, that the speaker stopped: its sessions
// are down (with graceful restart the routers still hold its routes).
func (w *nodeStatusWriter) markStopped(ctx context.Context, reason string) error {
	if w.last == nil {
		return nil
	}
	cur := w.last
	next := cur.DeepCopy()
	for i := range next.Status.Sessions {
		s := &next.Status.Sessions[i]
		if s.State != v1alpha1.SessionIdle {
			s.State, s.PrefixesSent, s.BFDState = v1alpha1.SessionIdle, 0, ""
			t := metav1.NewTime(w.now().Truncate(time.Second))
			s.Since = &t
		}
		s.LastError = reason
	}
	next.Status.EstablishedSessions = 0
	meta.SetStatusCondition(&next.Status.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonSpeakerStopped, Message: reason,
		LastTransitionTime: metav1.NewTime(w.now().Truncate(time.Second)),
	})
	if err := w.writer.Status().Patch(ctx, next, patch.MergeFrom(cur, patch.LastWriteWins)); err != nil {
		return fmt.Errorf("marking BGPNodeStatus stopped: %w", err)
	}
	return nil
}
