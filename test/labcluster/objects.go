package labcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/test/lab"
)

// ApplyDir server-side applies every YAML document under dir (recursively,
// kustomization.yaml files excepted) and returns "kind/name" of each.
func (c *Cluster) ApplyDir(ctx context.Context, dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Base(path) == "kustomization.yaml" {
			return err
		}
		if strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("labcluster: %w", err)
	}
	sort.Strings(files)
	var applied []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return applied, fmt.Errorf("labcluster: %w", err)
		}
		names, err := c.ApplyYAML(ctx, string(b))
		applied = append(applied, names...)
		if err != nil {
			return applied, fmt.Errorf("labcluster: %s: %w", f, err)
		}
	}
	return applied, nil
}

// ApplyYAML server-side applies every document of a YAML stream.
func (c *Cluster) ApplyYAML(ctx context.Context, text string) ([]string, error) {
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewBufferString(text), 4096)
	var applied []string
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return applied, nil
			}
			return applied, fmt.Errorf("decode: %w", err)
		}
		if len(u.Object) == 0 {
			continue
		}
		name := strings.ToLower(u.GetKind()) + "/" + u.GetName()
		if err := c.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
			return applied, fmt.Errorf("apply %s: %w", name, err)
		}
		applied = append(applied, name)
	}
}

// Families of a Service.
type Families int

// Which address families a Service asks for.
const (
	IPv4 Families = iota
	IPv6
	DualStack
)

// ServiceOptions describe a LoadBalancer Service the lab creates.
type ServiceOptions struct {
	Namespace, Name string
	// Families: IPv4 (default), IPv6, or RequireDualStack IPv4+IPv6.
	Families Families
	// Local sets externalTrafficPolicy: Local.
	Local bool
	// Port is the Service's TCP port (default 80).
	Port uint16
	// Annotations, e.g. v1alpha1.AnnotationIPPool.
	Annotations map[string]string
	// Class sets spec.loadBalancerClass when not empty.
	Class string
	// Backends are the nodes with a ready endpoint; nil means every node.
	// Use an empty non-nil slice for a Service with no endpoints.
	Backends []string
}

// CreateService writes the Service's EndpointSlices (ready endpoints on
// opts.Backends) and then the Service.
func (c *Cluster) CreateService(ctx context.Context, opts ServiceOptions) (*corev1.Service, error) {
	svc := c.ServiceObject(opts)
	backends := opts.Backends
	if backends == nil {
		backends = c.NodeNames()
	}
	if err := c.SetBackends(ctx, svc, backends...); err != nil {
		return nil, err
	}
	if err := c.Client.Create(ctx, svc); err != nil {
		return nil, fmt.Errorf("labcluster: create service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	return svc, nil
}

// ServiceObject builds the Service CreateService writes. It has no
// selector: its EndpointSlices are the lab's (SetBackends).
func (c *Cluster) ServiceObject(opts ServiceOptions) *corev1.Service {
	if opts.Port == 0 {
		opts.Port = 80
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: opts.Namespace, Name: opts.Name, Annotations: opts.Annotations},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{
				Name: "http", Protocol: corev1.ProtocolTCP, Port: int32(opts.Port), TargetPort: intstr.FromInt32(int32(opts.Port)),
			}},
			// BGP needs no node ports, and thousands of Services would exhaust them.
			AllocateLoadBalancerNodePorts: ptr.To(false),
		},
	}
	switch opts.Families {
	case IPv6:
		svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
		svc.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicySingleStack)
	case DualStack:
		svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
		svc.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicyRequireDualStack)
	default:
		svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
		svc.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicySingleStack)
	}
	if opts.Local {
		svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
	if opts.Class != "" {
		svc.Spec.LoadBalancerClass = ptr.To(opts.Class)
	}
	return svc
}

// SetBackends writes the Service's EndpointSlices (one per family of the
// Service) so that exactly nodes have a ready endpoint, as the EndpointSlice
// controller would for pods on those nodes. Each endpoint's address is the
// node's address on r1's LAN (a host-network pod).
func (c *Cluster) SetBackends(ctx context.Context, svc *corev1.Service, nodes ...string) error {
	families := svc.Spec.IPFamilies
	if len(families) == 0 {
		families = []corev1.IPFamily{corev1.IPv4Protocol}
	}
	for _, fam := range families {
		es := c.endpointSlice(svc, fam, nodes)
		if err := c.Client.Apply(ctx, endpointSliceApply(es), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
			return fmt.Errorf("labcluster: endpoints of %s/%s: %w", svc.Namespace, svc.Name, err)
		}
	}
	return nil
}

// endpointSliceApply turns a typed slice into an apply configuration.
func endpointSliceApply(es *discoveryv1.EndpointSlice) runtime.ApplyConfiguration {
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(es)
	if err != nil {
		panic(err) // a typed object always converts
	}
	u := &unstructured.Unstructured{Object: obj}
	u.SetAPIVersion("discovery.k8s.io/v1")
	u.SetKind("EndpointSlice")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	return client.ApplyConfigurationFromUnstructured(u)
}

func (c *Cluster) endpointSlice(svc *corev1.Service, fam corev1.IPFamily, nodes []string) *discoveryv1.EndpointSlice {
	addrType := discoveryv1.AddressTypeIPv4
	suffix := "v4"
	if fam == corev1.IPv6Protocol {
		addrType, suffix = discoveryv1.AddressTypeIPv6, "v6"
	}
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: svc.Namespace,
			Name:      svc.Name + "-lab-" + suffix,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: svc.Name,
				discoveryv1.LabelManagedBy:   ManagedBy,
			},
		},
		AddressType: addrType,
		// Non-nil: an empty list is how "no endpoints" looks.
		Endpoints: []discoveryv1.Endpoint{},
	}
	for _, p := range svc.Spec.Ports {
		es.Ports = append(es.Ports, discoveryv1.EndpointPort{
			Name: ptr.To(p.Name), Protocol: ptr.To(p.Protocol), Port: ptr.To(p.TargetPort.IntVal),
		})
	}
	for _, name := range nodes {
		n := c.Lab.Node(name)
		if n == nil {
			continue
		}
		a := n.Links[0].Addr4
		if fam == corev1.IPv6Protocol {
			a = n.Links[0].Addr6
		}
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{a.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
			NodeName:   ptr.To(name),
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: svc.Namespace, Name: svc.Name + "-" + name},
		})
	}
	return es
}

// DeleteService deletes the Service and the EndpointSlices the lab wrote
// for it (no garbage collector runs in the lab).
func (c *Cluster) DeleteService(ctx context.Context, svc *corev1.Service) error {
	var errs []error
	if err := c.Client.Delete(ctx, svc); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, err)
	}
	if err := c.Client.DeleteAllOf(ctx, &discoveryv1.EndpointSlice{}, client.InNamespace(svc.Namespace),
		client.MatchingLabels{discoveryv1.LabelServiceName: svc.Name, discoveryv1.LabelManagedBy: ManagedBy}); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// EnsureNamespace creates a namespace if it does not exist. (No namespace
// controller runs in the lab, so namespaces are never deleted.)
func (c *Cluster) EnsureNamespace(ctx context.Context, name string) error {
	err := c.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("labcluster: namespace %s: %w", name, err)
	}
	return nil
}

// ServiceAddresses returns the addresses in a Service's status.
func ServiceAddresses(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(in.IP); err == nil {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

// NodeNames returns n1..nN.
func (c *Cluster) NodeNames() []string {
	var out []string
	for _, n := range c.Lab.Nodes() {
		out = append(out, n.Name)
	}
	return out
}

// NextHop is the address router uses to reach node for a route of addr's
// family: the node's address on that router's LAN, which is the local
// address of its BGP session.
func (c *Cluster) NextHop(node, router string, addr netip.Addr) netip.Addr {
	return c.Lab.NextHop(node, router, addr)
}

// NextHops returns NextHop for each node, sorted.
func (c *Cluster) NextHops(router string, addr netip.Addr, nodes ...string) []netip.Addr {
	var out []netip.Addr
	for _, n := range nodes {
		out = append(out, c.NextHop(n, router, addr))
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

// NodeOf returns the node owning a next hop on a router LAN ("" if none),
// link-local IPv6 next hops included.
func (c *Cluster) NodeOf(hop netip.Addr) string { return c.Lab.NodeOf(hop) }

// NodesOf maps next hops to sorted node names.
func (c *Cluster) NodesOf(hops []netip.Addr) []string {
	var out []string
	for _, h := range hops {
		out = append(out, c.NodeOf(h))
	}
	sort.Strings(out)
	return out
}

// Serve starts an HTTP server answering with the node's name on
// addr:port in each of nodes (standing in for kube-proxy and a pod), and
// returns a func that closes them all.
func (c *Cluster) Serve(addr netip.Addr, port uint16, nodes ...string) (closeAll func(), err error) {
	var servers []*lab.HTTPServer
	closeAll = func() {
		for _, s := range servers {
			_ = s.Close()
		}
	}
	for _, name := range nodes {
		n := c.Lab.Node(name)
		if n == nil {
			closeAll()
			return nil, fmt.Errorf("labcluster: no node %q", name)
		}
		s, err := n.ServeHTTP(addr, port)
		if err != nil {
			closeAll()
			return nil, err
		}
		servers = append(servers, s)
	}
	return closeAll, nil
}
