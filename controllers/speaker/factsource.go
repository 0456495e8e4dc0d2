package speaker

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	discoveryv1client "k8s.io/client-go/kubernetes/typed/discovery/v1"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// factSource is the node reconciler's source for Services and
// EndpointSlices: it runs a reflector of each kind into the factStore and
// enqueues the node's key on every change the store reports. The
// controller waits for both first lists before its first run, as it does
// for an informer.
type factSource struct {
	store      *factStore
	reflectors []*toolscache.Reflector
	key        reconcile.Request
	// mark records the changed Service in the reconciler's dirty set.
	mark func(types.NamespacedName)
}

var _ source.TypedSyncingSource[reconcile.Request] = (*factSource)(nil)

// newFactSource builds the reflectors: every LoadBalancer Service (a
// Service that stops being one is seen deleted) and every EndpointSlice,
// read as protobuf through the manager's HTTP client.
func newFactSource(mgr ctrl.Manager, store *factStore, key reconcile.Request) (*factSource, error) {
	cfg := rest.CopyConfig(mgr.GetConfig())
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	core, err := corev1client.NewForConfigAndClient(cfg, mgr.GetHTTPClient())
	if err != nil {
		return nil, fmt.Errorf("the Services' client: %w", err)
	}
	disc, err := discoveryv1client.NewForConfigAndClient(cfg, mgr.GetHTTPClient())
	if err != nil {
		return nil, fmt.Errorf("the EndpointSlices' client: %w", err)
	}
	lb := fields.OneTermEqualSelector("spec.type", string(corev1.ServiceTypeLoadBalancer)).String()
	services := &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = lb
			return core.Services(metav1.NamespaceAll).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = lb
			return core.Services(metav1.NamespaceAll).Watch(ctx, o)
		},
	}
	slices := &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return disc.EndpointSlices(metav1.NamespaceAll).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return disc.EndpointSlices(metav1.NamespaceAll).Watch(ctx, o)
		},
	}
	return &factSource{
		store: store,
		key:   key,
		reflectors: []*toolscache.Reflector{
			toolscache.NewReflectorWithOptions(services, &corev1.Service{}, servicesInto(store),
				toolscache.ReflectorOptions{Name: "speaker-services"}),
			toolscache.NewReflectorWithOptions(slices, &discoveryv1.EndpointSlice{}, slicesInto(store),
				toolscache.ReflectorOptions{Name: "speaker-endpointslices"}),
		},
	}, nil
}

// Start implements source.TypedSource: from now on every change the
// store reports marks its Service dirty and enqueues the node.
func (s *factSource) Start(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	s.store.setChanged(func(svc types.NamespacedName) {
		if s.mark != nil {
			s.mark(svc)
		}
		q.Add(s.key)
	})
	for _, r := range s.reflectors {
		go r.RunWithContext(ctx)
	}
	return nil
}

// WaitForSync implements source.TypedSyncingSource.
func (s *factSource) WaitForSync(ctx context.Context) error {
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
		return s.store.synced(), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the first lists of Services and EndpointSlices: %w", err)
	}
	return nil
}

// String names the source in the controller's logs.
func (s *factSource) String() string { return "speaker Services and EndpointSlices" }
