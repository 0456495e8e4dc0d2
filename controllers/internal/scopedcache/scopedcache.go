// Package scopedcache builds the caches bgplb's controllers keep of their
// own, beside the manager's: Secrets only of the install namespace (the
// RBAC of both binaries allows no more) and no managedFields on anything.
package scopedcache

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// New creates such a cache with the manager's client settings, plus the
// given per-kind options, and adds it to the manager (AddToManager).
func New(mgr ctrl.Manager, byObject map[client.Object]cache.ByObject) (cache.Cache, error) {
	opts := map[client.Object]cache.ByObject{
		&corev1.Secret{}: {Namespaces: map[string]cache.Config{v1alpha1.InstallNamespace: {}}},
	}
	for obj, o := range byObject {
		opts[obj] = o
	}
	c, err := cache.New(mgr.GetConfig(), cache.Options{
		HTTPClient:       mgr.GetHTTPClient(),
		Scheme:           mgr.GetScheme(),
		Mapper:           mgr.GetRESTMapper(),
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject:         opts,
	})
	if err != nil {
		return nil, fmt.Errorf("creating cache: %w", err)
	}
	if err := AddToManager(mgr, c); err != nil {
		return nil, err
	}
	return c, nil
}

// AddToManager makes the manager run c as one of its caches: started and
// synced before the controllers, on every replica, leader or not. (Added
// as is, a cache would count as a leader-elected runnable.)
func AddToManager(mgr ctrl.Manager, c cache.Cache) error {
	if err := mgr.Add(runnable{c}); err != nil {
		return fmt.Errorf("adding cache: %w", err)
	}
	return nil
}

// runnable has the manager's hasCache method.
type runnable struct{ cache.Cache }

// GetCache implements the manager's hasCache.
func (r runnable) GetCache() cache.Cache { return r.Cache }
