package metallb

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// clusterKinds are the MetalLB kinds read from a cluster, each at the
// versions tried in order (BGPPeer is stored as v1beta2, served as both).
var clusterKinds = []struct {
	kind     string
	versions []string
}{
	{"IPAddressPool", []string{"v1beta1"}},
	{"BGPPeer", []string{"v1beta2", "v1beta1"}},
	{"BGPAdvertisement", []string{"v1beta1"}},
	{"Community", []string{"v1beta1"}},
	{"BFDProfile", []string{"v1beta1"}},
	{"L2Advertisement", []string{"v1beta1"}},
}

// FromCluster reads MetalLB's configuration from a cluster (all
// namespaces, or one), then the Secrets its peers' passwordSecret name.
// A kind whose CRD is not installed is noted in Skipped.
func FromCluster(ctx context.Context, c client.Reader, namespace string) (*Config, error) {
	cfg := &Config{Secrets: map[string]Secret{}}
	n := 0
	for _, k := range clusterKinds {
		var list *unstructured.UnstructuredList
		for _, v := range k.versions {
			l := &unstructured.UnstructuredList{}
			l.SetGroupVersionKind(schema.GroupVersionKind{Group: Group, Version: v, Kind: k.kind + "List"})
			err := c.List(ctx, l, client.InNamespace(namespace))
			if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("listing MetalLB %ss: %w", k.kind, err)
			}
			list = l
			break
		}
		if list == nil {
			cfg.Skipped = append(cfg.Skipped, fmt.Sprintf("the cluster serves no %s.%s (MetalLB CRD not installed)", k.kind, Group))
			continue
		}
		for i := range list.Items {
			if err := cfg.add(list.Items[i].Object, "cluster", &n); err != nil {
				return nil, err
			}
		}
	}
	for _, p := range cfg.Peers {
		ref := p.Spec.PasswordSecret
		if ref.Name == "" {
			continue
		}
		ns := ref.Namespace
		if ns == "" {
			ns = p.Namespace
		}
		sec := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, sec); err != nil {
			if apierrors.IsNotFound(err) {
				continue // Convert says how to copy it
			}
			return nil, fmt.Errorf("reading Secret %s/%s of BGPPeer %s: %w", ns, ref.Name, p.Name, err)
		}
		cfg.Secrets[ns+"/"+ref.Name] = Secret{Namespace: ns, Name: ref.Name, Type: string(sec.Type), Data: sec.Data}
	}
	return cfg, nil
}
