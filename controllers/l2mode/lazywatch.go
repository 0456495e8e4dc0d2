package l2mode

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// lazyWatches starts watching what L2 mode reads (Nodes, pools,
// IPAllocations, Services, EndpointSlices) the first time an
// L2Advertisement exists. Until then L2 mode costs a speaker only the
// L2Advertisements' watch: the manifests turn L2 mode on everywhere, and a
// cluster that announces over BGP alone would otherwise keep a second copy
// of every Service and EndpointSlice in every speaker (about 40 MiB at
// 10,000 Services). Once started the watches stay.
type lazyWatches struct {
	cache   cache.Cache
	ctl     controller.Controller
	enqueue handler.EventHandler

	mu      sync.Mutex
	indexed bool
	started bool
}

// ensure starts the watches unless they run already; the cache's reads
// that follow wait for the new informers' first lists.
func (w *lazyWatches) ensure(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return nil
	}
	if !w.indexed {
		// A Service's EndpointSlices by an index, not a scan of the namespace.
		err := w.cache.IndexField(ctx, &discoveryv1.EndpointSlice{}, indexSliceService, func(o client.Object) []string {
			if svc := o.GetLabels()[discoveryv1.LabelServiceName]; svc != "" {
				return []string{svc}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("indexing EndpointSlices: %w", err)
		}
		w.indexed = true
	}
	if err := w.ctl.Watch(source.Kind[client.Object](w.cache, &corev1.Node{}, w.enqueue, nodeChanged())); err != nil {
		return fmt.Errorf("watching Nodes: %w", err)
	}
	for _, obj := range []client.Object{&v1alpha1.IPPool{}, &v1alpha1.IPAllocation{}, &corev1.Service{}, &discoveryv1.EndpointSlice{}} {
		if err := w.ctl.Watch(source.Kind[client.Object](w.cache, obj, w.enqueue)); err != nil {
			return fmt.Errorf("watching %T: %w", obj, err)
		}
	}
	w.started = true
	logf.FromContext(ctx).Info("an L2Advertisement exists: watching Nodes, IPPools, IPAllocations, Services and EndpointSlices for L2 mode")
	return nil
}
