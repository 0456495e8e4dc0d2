package frrk8s

import (
	"context"
	"fmt"

	frrv1beta1 "github.com/metallb/frr-k8s/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Cleanup deletes the FRRConfiguration and password Secrets the frr-k8s
// backend wrote for the node, and nothing else: the GoBGP backend calls it
// when it starts, so that switching back from frr-k8s leaves no bgplb
// configuration in FRR (otherwise FRR would keep announcing the node's
// addresses beside GoBGP). Without frr-k8s's CRDs, its namespace, or the
// right to list there (the RBAC of config/components/frr-k8s), there is
// nothing it can do: it says so and returns nil. It reports how many
// objects it deleted. r should read from the API server, not a cache
// (the manager's APIReader): no informer is wanted on these kinds.
func Cleanup(ctx context.Context, r client.Reader, w client.Writer, namespace, node string) (int, error) {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	sel := client.MatchingLabels(OwnLabels(node))
	deleted := 0
	for _, list := range []client.ObjectList{&frrv1beta1.FRRConfigurationList{}, &corev1.SecretList{}} {
		if err := r.List(ctx, list, client.InNamespace(namespace), sel); err != nil {
			if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) || apierrors.IsForbidden(err) || apierrors.IsMethodNotSupported(err) {
				return deleted, nil
			}
			return deleted, fmt.Errorf("listing bgplb's %T in %s: %w", list, namespace, err)
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return deleted, fmt.Errorf("reading %T: %w", list, err)
		}
		for _, it := range items {
			obj, ok := it.(client.Object)
			if !ok {
				continue
			}
			uid := obj.GetUID()
			if err := w.Delete(ctx, obj, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
				return deleted, fmt.Errorf("deleting %s/%s: %w", namespace, obj.GetName(), err)
			}
			deleted++
		}
	}
	return deleted, nil
}
