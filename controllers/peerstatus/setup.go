package peerstatus

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/internal/scopedcache"
)

// Setup adds the BGPPeer status reconciler to the manager, fed by the
// BGPPeers, every BGPNodeStatus and the password Secrets, read through a
// scopedcache (Secrets of the install namespace only).
func Setup(mgr ctrl.Manager) error {
	c, err := scopedcache.New(mgr, nil)
	if err != nil {
		return fmt.Errorf("peer status: %w", err)
	}
	r := &Reconciler{Reader: c, Writer: mgr.GetClient(), Now: time.Now}
	log := mgr.GetLogger().WithName("peer-status")
	peersOf := func(_ context.Context, st *v1alpha1.BGPNodeStatus) []reconcile.Request {
		// Called with the old and the new object on updates, so a peer
		// that a node stops reporting is recounted too.
		out := make([]reconcile.Request, 0, len(st.Status.Sessions))
		for _, s := range st.Status.Sessions {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: s.Peer}})
		}
		return out
	}
	peersOfSecret := func(ctx context.Context, s *corev1.Secret) []reconcile.Request {
		var peers v1alpha1.BGPPeerList
		if err := c.List(ctx, &peers); err != nil {
			// A cache read fails only while the cache is stopping or not
			// synced; the peers' statuses catch up on their next event.
			log.Error(err, "listing BGPPeers for a changed password Secret; their Valid condition may lag", "secret", s.Name)
			return nil
		}
		var out []reconcile.Request
		for _, p := range peers.Items {
			if ref := p.Spec.PasswordSecretRef; ref != nil && ref.Name == s.Name {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: p.Name}})
			}
		}
		return out
	}
	err = ctrl.NewControllerManagedBy(mgr).Named("peer-status").
		WatchesRawSource(source.Kind(c, &v1alpha1.BGPPeer{}, &handler.TypedEnqueueRequestForObject[*v1alpha1.BGPPeer]{})).
		WatchesRawSource(source.Kind(c, &v1alpha1.BGPNodeStatus{}, handler.TypedEnqueueRequestsFromMapFunc(peersOf))).
		WatchesRawSource(source.Kind(c, &corev1.Secret{}, handler.TypedEnqueueRequestsFromMapFunc(peersOfSecret))).
		Complete(r)
	if err != nil {
		return fmt.Errorf("creating the peer status reconciler: %w", err)
	}
	return nil
}
