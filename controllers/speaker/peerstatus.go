package speaker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// PeerStatusReconciler keeps each BGPPeer's status (nodes, established
// nodes, "x/y" sessions, Valid and Ready conditions) in line with the
// BGPNodeStatus objects of all nodes. Every speaker runs it; they all
// compute the same status from the same objects, write only when the
// stored status differs, and write with optimistic locking, so one write
// wins and the others see a conflict, re-read and find nothing to do.
// It needs no node of its own and could as well run in the controller.
type PeerStatusReconciler struct {
	Reader client.Reader
	Writer client.Client
	Now    func() time.Time
}

// Reconcile implements reconcile.Reconciler for one BGPPeer.
func (r *PeerStatusReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var peer v1alpha1.BGPPeer
	if err := r.Reader.Get(ctx, req.NamespacedName, &peer); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	var nodes v1alpha1.BGPNodeStatusList
	if err := r.Reader.List(ctx, &nodes); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing BGPNodeStatuses: %w", err)
	}
	secrets := map[string]*corev1.Secret{}
	if ref := peer.Spec.PasswordSecretRef; ref != nil {
		var s corev1.Secret
		err := r.Reader.Get(ctx, types.NamespacedName{Namespace: v1alpha1.InstallNamespace, Name: ref.Name}, &s)
		switch {
		case err == nil:
			secrets[ref.Name] = &s
		case !apierrors.IsNotFound(err):
			return ctrl.Result{}, fmt.Errorf("getting password Secret: %w", err)
		}
	}
	next := ComputePeerStatus(&peer, nodes.Items, PeerProblem(&peer, secrets), r.Now())
	if equality.Semantic.DeepEqual(peer.Status, next) {
		return ctrl.Result{}, nil
	}
	patched := peer.DeepCopy()
	patched.Status = next
	err := r.Writer.Status().Patch(ctx, patched, client.MergeFromWithOptions(&peer, client.MergeFromWithOptimisticLock{}))
	switch {
	case apierrors.IsConflict(err):
		// Another speaker wrote first (or our cache is behind): look again
		// once the cache has caught up.
		return ctrl.Result{RequeueAfter: time.Duration(100+rand.IntN(400)) * time.Millisecond}, nil
	case apierrors.IsNotFound(err):
		return ctrl.Result{}, nil
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("patching BGPPeer %s status: %w", peer.Name, err)
	}
	return ctrl.Result{}, nil
}
