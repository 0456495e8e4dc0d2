package frrk8s

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	frrv1beta1 "github.com/metallb/frr-k8s/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/frrk8s"
)

// errNoOwner: the node's BGPNodeStatus, which owns what the writer writes,
// does not exist yet (the status writer creates it).
var errNoOwner = errors.New("waiting for the node's BGPNodeStatus (the owner of its FRRConfiguration)")

// writer writes the node's FRRConfiguration and password Secrets. It runs
// on every speaker (no leader election): each writes only its own node's.
type writer struct {
	b *Backend
	// last is what was last written; nil before the first write.
	last *written
	// drift: the stored objects may differ from last (deleted, edited):
	// compare them on the next sync.
	drift bool
}

type written struct {
	spec     frrv1beta1.FRRConfigurationSpec
	secrets  map[string]string
	ownerUID types.UID
}

// NeedLeaderElection implements manager.LeaderElectionRunnable.
func (w *writer) NeedLeaderElection() bool { return false }

// Start runs the writer until ctx ends: on every wake-up (a new state,
// frr-k8s reporting, one of its objects changing) it syncs, but never
// writes twice within the debounce interval: what arrives meanwhile goes
// into the next write.
func (w *writer) Start(ctx context.Context) error {
	b := w.b
	resync := time.NewTicker(b.opts.Resync)
	defer resync.Stop()
	var lastWrite time.Time
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-b.wake:
		case <-retry:
		case <-resync.C:
			w.drift = true
		}
		if b.configEvent.Swap(false) {
			w.drift = true
		}
		if wait := b.opts.Debounce - time.Since(lastWrite); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		wrote, err := w.sync(ctx)
		if wrote {
			lastWrite = time.Now()
		}
		retry = nil
		switch {
		case errors.Is(err, errNoOwner):
			b.log.V(1).Info(err.Error())
			retry = time.After(b.opts.Debounce)
		case err != nil && ctx.Err() == nil:
			b.log.Error(err, "writing the node's FRRConfiguration; retrying")
			retry = time.After(time.Second)
		}
	}
}

// sync renders the recorded state and writes what differs from the last
// write. It reports whether it wrote.
func (w *writer) sync(ctx context.Context) (bool, error) {
	b := w.b
	w.observeNodeState(ctx)
	st, ok := b.snapshot()
	if !ok {
		return false, nil // the reconciler has not applied anything yet
	}
	var node corev1.Node
	if err := b.reader.Get(ctx, types.NamespacedName{Name: b.opts.NodeName}, &node); err != nil {
		return false, fmt.Errorf("reading Node: %w", client.IgnoreNotFound(err))
	}
	var owner v1alpha1.BGPNodeStatus
	switch err := b.reader.Get(ctx, types.NamespacedName{Name: b.opts.NodeName}, &owner); {
	case apierrors.IsNotFound(err):
		return false, errNoOwner
	case err != nil:
		return false, fmt.Errorf("reading BGPNodeStatus: %w", err)
	}
	cfg, _ := frrk8s.Render(st, b.renderOptions(&node)) // Apply reported what it left out
	next := &written{spec: cfg.Spec, secrets: cfg.Secrets, ownerUID: owner.UID}
	force := w.drift && w.storedDiffers(ctx, next)
	w.drift = false
	if !force && w.last != nil && w.last.ownerUID == next.ownerUID &&
		equality.Semantic.DeepEqual(w.last.spec, next.spec) && maps.Equal(w.last.secrets, next.secrets) {
		return false, nil
	}
	ownerRef := metav1ac.OwnerReference().WithAPIVersion(v1alpha1.GroupVersion.String()).WithKind("BGPNodeStatus").
		WithName(owner.Name).WithUID(owner.UID)
	// Secrets first, so that frr-k8s finds them when it reads the config.
	for name, pw := range next.secrets {
		if !force && w.last != nil && w.last.ownerUID == next.ownerUID && w.last.secrets[name] == pw {
			continue
		}
		s := corev1ac.Secret(name, b.opts.Namespace).WithLabels(OwnLabels(b.opts.NodeName)).
			WithOwnerReferences(ownerRef).WithType(corev1.SecretTypeBasicAuth).
			WithData(map[string][]byte{corev1.BasicAuthPasswordKey: []byte(pw)})
		if err := b.writer.Apply(ctx, s, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
			return false, fmt.Errorf("applying password Secret %s/%s: %w", b.opts.Namespace, name, err)
		}
	}
	if err := w.applyConfig(ctx, next, &owner); err != nil {
		return false, err
	}
	b.statusMu.Lock()
	b.rendered = cfg.Peers
	b.writes++
	b.statusMu.Unlock()
	w.last = next
	// Secrets of peers that lost their password or went away.
	var secrets corev1.SecretList
	if err := b.reader.List(ctx, &secrets, client.InNamespace(b.opts.Namespace)); err != nil {
		return true, fmt.Errorf("listing password Secrets: %w", err)
	}
	for i := range secrets.Items {
		s := &secrets.Items[i]
		if _, keep := next.secrets[s.Name]; keep {
			continue
		}
		if err := b.writer.Delete(ctx, s, client.Preconditions{UID: &s.UID}); client.IgnoreNotFound(err) != nil {
			return true, fmt.Errorf("deleting password Secret %s/%s: %w", s.Namespace, s.Name, err)
		}
	}
	b.log.V(1).Info("wrote FRRConfiguration", "peers", len(cfg.Peers), "prefixes", len(st.Paths))
	return true, nil
}

// applyConfig writes the node's FRRConfiguration with server-side apply:
// created the first time, updated in place after (never deleted and
// re-created, which would make FRR drop the sessions). Fields bgplb does
// not set stay whoever's they are.
func (w *writer) applyConfig(ctx context.Context, next *written, owner *v1alpha1.BGPNodeStatus) error {
	b := w.b
	obj := &frrv1beta1.FRRConfiguration{
		TypeMeta: metav1.TypeMeta{APIVersion: frrv1beta1.GroupVersion.String(), Kind: "FRRConfiguration"},
		ObjectMeta: metav1.ObjectMeta{
			Name: frrk8s.ConfigName(b.opts.NodeName), Namespace: b.opts.Namespace, Labels: OwnLabels(b.opts.NodeName),
			OwnerReferences: []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "BGPNodeStatus", Name: owner.Name, UID: owner.UID}},
		},
		Spec: next.spec,
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return fmt.Errorf("converting the FRRConfiguration: %w", err)
	}
	delete(u, "status")
	unstructured.RemoveNestedField(u, "metadata", "creationTimestamp")
	ac := client.ApplyConfigurationFromUnstructured(&unstructured.Unstructured{Object: u})
	if err := b.writer.Apply(ctx, ac, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying FRRConfiguration %s/%s: %w", obj.Namespace, obj.Name, err)
	}
	return nil
}

// storedDiffers reports whether the stored FRRConfiguration is missing or
// differs from what would be written (a user edited or deleted it).
func (w *writer) storedDiffers(ctx context.Context, next *written) bool {
	var cur frrv1beta1.FRRConfiguration
	key := types.NamespacedName{Namespace: w.b.opts.Namespace, Name: frrk8s.ConfigName(w.b.opts.NodeName)}
	if err := w.b.reader.Get(ctx, key, &cur); err != nil {
		return true
	}
	return !equality.Semantic.DeepEqual(cur.Spec, next.spec)
}

// wakeOn returns an informer handler that calls wake on every event.
func wakeOn(wake func()) toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { wake() },
		UpdateFunc: func(any, any) { wake() },
		DeleteFunc: func(any) { wake() },
	}
}

// observeNodeState reads what frr-k8s last reported for the node
// (FRRNodeState: whether it could merge every FRRConfiguration selecting
// the node, bgplb's and other components', and whether FRR took the
// result) and records a problem for the status, with an event on the
// node's BGPNodeStatus when it appears or changes.
func (w *writer) observeNodeState(ctx context.Context) {
	b := w.b
	var ns frrv1beta1.FRRNodeState
	problem, reported := "", false
	if err := b.reader.Get(ctx, types.NamespacedName{Name: b.opts.NodeName}, &ns); err == nil {
		problem = NodeStateProblem(ns.Status)
		reported = ns.Status.LastConversionResult != "" || ns.Status.LastReloadResult != ""
	}
	b.statusMu.Lock()
	changed := problem != b.problem
	b.problem, b.reported = problem, reported
	b.statusMu.Unlock()
	if !changed || b.recorder == nil {
		return
	}
	obj := &v1alpha1.BGPNodeStatus{ObjectMeta: metav1.ObjectMeta{Name: b.opts.NodeName}}
	if problem != "" {
		b.log.Info("frr-k8s reports a problem with the node's configuration", "problem", problem)
		b.recorder.Eventf(obj, nil, corev1.EventTypeWarning, ReasonFRRK8sFailed, "Configure", "%s", problem)
	} else {
		b.recorder.Eventf(obj, nil, corev1.EventTypeNormal, ReasonFRRK8sApplied, "Configure", "frr-k8s applied the node's configuration")
	}
}

// Event reasons of the frr-k8s backend, also the reasons of its condition.
const (
	ReasonFRRK8sFailed  = "FRRK8sConfigurationFailed"
	ReasonFRRK8sApplied = "FRRK8sConfigurationApplied"
	// ReasonFRRK8sPending: frr-k8s has not reported on the node yet.
	ReasonFRRK8sPending = "FRRK8sNotReported"
)

// ConditionFRRK8sConfigured is the BGPNodeStatus condition of the frr-k8s
// backend: True when frr-k8s's FRRNodeState reports that it merged the
// node's FRRConfigurations and FRR took them, False with frr-k8s's message
// when it reports a problem, Unknown before it reports.
const ConditionFRRK8sConfigured = "FRRK8sConfigured"

// NodeStateProblem describes what an FRRNodeState reports wrong ("" when
// both the merge of the node's FRRConfigurations and FRR's reload
// succeeded or are not reported yet).
func NodeStateProblem(s frrv1beta1.FRRNodeStateStatus) string {
	bad := func(r string) bool { return r != "" && r != "success" }
	switch {
	case bad(s.LastConversionResult):
		return "frr-k8s could not merge the node's FRRConfigurations: " + s.LastConversionResult
	case bad(s.LastReloadResult):
		return "FRR rejected the node's configuration: " + s.LastReloadResult
	}
	return ""
}
