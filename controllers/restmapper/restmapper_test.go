package restmapper

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// unreachable is a discovery mapper while the API server is down.
type unreachable struct{ meta.RESTMapper }

var errDown = errors.New("connection refused")

func (unreachable) RESTMapping(schema.GroupKind, ...string) (*meta.RESTMapping, error) {
	return nil, errDown
}

func TestNewMapsBgplbKindsWithoutTheAPIServer(t *testing.T) {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	m := New(s, unreachable{})
	for _, tc := range []struct {
		gk       schema.GroupKind
		resource string
		scope    meta.RESTScopeName
	}{
		{schema.GroupKind{Kind: "Service"}, "services", meta.RESTScopeNameNamespace},
		{schema.GroupKind{Kind: "Secret"}, "secrets", meta.RESTScopeNameNamespace},
		{schema.GroupKind{Kind: "Node"}, "nodes", meta.RESTScopeNameRoot},
		{schema.GroupKind{Kind: "Namespace"}, "namespaces", meta.RESTScopeNameRoot},
		{schema.GroupKind{Group: "discovery.k8s.io", Kind: "EndpointSlice"}, "endpointslices", meta.RESTScopeNameNamespace},
		{schema.GroupKind{Group: v1alpha1.GroupVersion.Group, Kind: "IPPool"}, "ippools", meta.RESTScopeNameRoot},
		{schema.GroupKind{Group: v1alpha1.GroupVersion.Group, Kind: "IPAllocation"}, "ipallocations", meta.RESTScopeNameRoot},
		{schema.GroupKind{Group: v1alpha1.GroupVersion.Group, Kind: "BGPNodeStatus"}, "bgpnodestatuses", meta.RESTScopeNameRoot},
	} {
		got, err := m.RESTMapping(tc.gk)
		if err != nil {
			t.Errorf("%s: %v", tc.gk, err)
			continue
		}
		if got.Resource.Resource != tc.resource || got.Scope.Name() != tc.scope {
			t.Errorf("%s: got %s %s, want %s %s", tc.gk, got.Resource.Resource, got.Scope.Name(), tc.resource, tc.scope)
		}
	}
	// Anything else goes to discovery, and its error comes back.
	if _, err := m.RESTMapping(schema.GroupKind{Group: "apps", Kind: "Deployment"}); !errors.Is(err, errDown) {
		t.Errorf("Deployment: got %v, want the fallback's error", err)
	}
	// Option and list types of the group get no mapping.
	if _, err := m.RESTMapping(schema.GroupKind{Group: v1alpha1.GroupVersion.Group, Kind: "ListOptions"}); !errors.Is(err, errDown) {
		t.Errorf("ListOptions: got %v, want no static mapping", err)
	}
}
