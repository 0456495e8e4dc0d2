package speaker

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// objects keeps the gathered objects that problems are reported on.
type objects struct {
	peers map[string]*v1alpha1.BGPPeer
	advs  map[string]*v1alpha1.BGPAdvertisement
}

// noCopy reads objects from the cache without deep-copying them: gather
// and Compute only read them.
const noCopy = client.UnsafeDisableDeepCopy

// stores reads the kinds there are thousands of: IPAllocations straight
// from their informer's store, as the pointers the cache holds (the
// cache's Get and List copy every object they return even without a deep
// copy: at 10,000 Services those copies were most of a reconcile's time),
// found by Service through byService, and Services and EndpointSlices as
// their facts (factStore: stores is the reconciler's serviceSource).
// Everything that reads these objects only reads them.
type stores struct {
	allocations toolscache.Store
	byService   *allocationIndex
	*factStore
}

// allocation returns the IPAllocation called name, nil if there is none.
func (s stores) allocation(name string) *v1alpha1.IPAllocation {
	o, _, _ := s.allocations.GetByKey(name)
	a, _ := o.(*v1alpha1.IPAllocation)
	return a
}

// allocationsOf adds to names the IPAllocations that record the Service.
func (s stores) allocationsOf(key types.NamespacedName, names map[string]struct{}) {
	s.byService.of(key, names)
}

// gather reads the inputs of Compute from the cache.
func (r *NodeReconciler) gather(ctx context.Context) (Inputs, objects, error) {
	var in Inputs
	objs := objects{peers: map[string]*v1alpha1.BGPPeer{}, advs: map[string]*v1alpha1.BGPAdvertisement{}}
	var node corev1.Node
	switch err := r.Reader.Get(ctx, types.NamespacedName{Name: r.NodeName}, &node, noCopy); {
	case apierrors.IsNotFound(err):
		// The node is gone: withdraw everything and close the sessions.
	case err != nil:
		return in, objs, fmt.Errorf("getting node %s: %w", r.NodeName, err)
	default:
		in.Node = &node
	}

	var peers v1alpha1.BGPPeerList
	if err := r.Reader.List(ctx, &peers, noCopy); err != nil {
		return in, objs, fmt.Errorf("listing BGPPeers: %w", err)
	}
	in.Peers = peers.Items
	for i := range in.Peers {
		objs.peers[in.Peers[i].Name] = &in.Peers[i]
	}
	var advs v1alpha1.BGPAdvertisementList
	if err := r.Reader.List(ctx, &advs, noCopy); err != nil {
		return in, objs, fmt.Errorf("listing BGPAdvertisements: %w", err)
	}
	in.Advertisements = advs.Items
	for i := range in.Advertisements {
		objs.advs[in.Advertisements[i].Name] = &in.Advertisements[i]
	}
	var pools v1alpha1.IPPoolList
	if err := r.Reader.List(ctx, &pools, noCopy); err != nil {
		return in, objs, fmt.Errorf("listing IPPools: %w", err)
	}
	in.Pools = make(map[string]*v1alpha1.IPPool, len(pools.Items))
	for i := range pools.Items {
		in.Pools[pools.Items[i].Name] = &pools.Items[i]
	}
	var secrets corev1.SecretList
	if err := r.Reader.List(ctx, &secrets, client.InNamespace(v1alpha1.InstallNamespace), noCopy); err != nil {
		return in, objs, fmt.Errorf("listing Secrets in %s: %w", v1alpha1.InstallNamespace, err)
	}
	in.Secrets = make(map[string]*corev1.Secret, len(secrets.Items))
	for i := range secrets.Items {
		in.Secrets[secrets.Items[i].Name] = &secrets.Items[i]
	}

	for _, o := range r.stores.allocations.List() {
		if a, ok := o.(*v1alpha1.IPAllocation); ok {
			in.Allocations = append(in.Allocations, a)
		}
	}
	in.source = r.stores
	return in, objs, nil
}
