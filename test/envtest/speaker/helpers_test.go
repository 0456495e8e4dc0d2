package speaker_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp/bgptest"
)

const ns = "default"

// create creates an object and deletes it when the spec ends.
func create(obj client.Object) {
	GinkgoHelper()
	Expect(k8s.Create(ctx, obj)).To(Succeed(), "creating %T %s", obj, obj.GetName())
	DeferCleanup(func() {
		err := k8s.Delete(ctx, obj)
		Expect(client.IgnoreNotFound(err)).To(Succeed())
	})
}

type svcOpt func(*corev1.Service)

func local(s *corev1.Service) {
	s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
}

// service creates a LoadBalancer Service.
func service(name string, opts ...svcOpt) *corev1.Service {
	GinkgoHelper()
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			Ports:                         []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
			AllocateLoadBalancerNodePorts: ptrTo(false),
		},
	}
	for _, o := range opts {
		o(s)
	}
	create(s)
	return s
}

// endpoint describes one endpoint of a Service.
type endpoint struct {
	node                        string
	ready, serving, terminating bool
}

var (
	readyOn    = func(node string) endpoint { return endpoint{node: node, ready: true, serving: true} }
	notReadyOn = func(node string) endpoint { return endpoint{node: node} }
	// terminatingOn is an endpoint that is shutting down but still serving.
	terminatingOn = func(node string) endpoint { return endpoint{node: node, serving: true, terminating: true} }
	goneOn        = func(node string) endpoint { return endpoint{node: node, terminating: true} }
)

// setEndpoints creates or replaces the Service's EndpointSlice, as the
// EndpointSlice controller would.
func setEndpoints(svc *corev1.Service, eps ...endpoint) {
	GinkgoHelper()
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: svc.Name + "-abc"},
	}
	Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		err := k8s.Get(ctx, client.ObjectKeyFromObject(slice), slice)
		exists := err == nil
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		slice.Labels = map[string]string{discoveryv1.LabelServiceName: svc.Name}
		slice.AddressType = discoveryv1.AddressTypeIPv4
		slice.Endpoints = nil
		for i, e := range eps {
			slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
				Addresses: []string{fmt.Sprintf("203.0.113.%d", 100+i)},
				NodeName:  ptrTo(e.node),
				Conditions: discoveryv1.EndpointConditions{
					Ready: ptrTo(e.ready), Serving: ptrTo(e.serving), Terminating: ptrTo(e.terminating),
				},
			})
		}
		if exists {
			return k8s.Update(ctx, slice)
		}
		if err := k8s.Create(ctx, slice); err != nil {
			return err
		}
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(ctx, slice))).To(Succeed()) })
		return nil
	})).To(Succeed())
}

// allocate records, as the controller would, that the Services hold addr.
func allocate(addr, pool string, svcs ...*corev1.Service) *v1alpha1.IPAllocation {
	GinkgoHelper()
	a := &v1alpha1.IPAllocation{
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.AllocationName(addr)},
		Spec:       v1alpha1.IPAllocationSpec{Address: addr, Pool: pool},
	}
	for _, s := range svcs {
		a.Spec.Services = append(a.Spec.Services, v1alpha1.ServiceReference{Namespace: s.Namespace, Name: s.Name, UID: s.UID})
	}
	if len(svcs) > 1 {
		a.Spec.SharingKey = "shared"
	}
	create(a)
	return a
}

// advertise creates a BGPAdvertisement.
func advertise(name string, spec v1alpha1.BGPAdvertisementSpec) *v1alpha1.BGPAdvertisement {
	GinkgoHelper()
	a := &v1alpha1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	create(a)
	return a
}

// announcedService creates a Service with a ready endpoint holding addr:
// once a router has its route, the speaker has acted on every object
// created before it (of the kinds it involves).
func announcedService(addr, pool string) *corev1.Service {
	GinkgoHelper()
	s := service(uniq("svc"))
	setEndpoints(s, readyOn("node-b"))
	allocate(addr, pool, s)
	return s
}

// prefixes polls the prefixes a router holds from the speaker.
func prefixes(r *bgptest.Router) func() []string {
	n := speakerV4
	if r.Address().Is6() {
		n = speakerV6
	}
	return func() []string { return r.Prefixes(n) }
}

// route polls a router's route for a prefix (zero Route when absent).
func route(r *bgptest.Router, prefix string) func() bgptest.Route {
	n := speakerV4
	if r.Address().Is6() {
		n = speakerV6
	}
	p := netip.MustParsePrefix(prefix)
	return func() bgptest.Route { rt, _ := r.Route(n, p); return rt }
}

// communities renders a route's communities and large communities for
// assertions, e.g. "65000:100 65535:0 | 65000:1:2".
func communities(rt bgptest.Route) string {
	return strings.Join(rt.CommunityStrings(), " ") + " | " + strings.Join(rt.LargeCommunityStrings(), " ")
}

// setNodeLabel sets (value != nil) or removes a label of node-a.
func setNodeLabel(key string, value *string) {
	GinkgoHelper()
	Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var n corev1.Node
		if err := k8s.Get(ctx, types.NamespacedName{Name: nodeName}, &n); err != nil {
			return err
		}
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		if value == nil {
			delete(n.Labels, key)
		} else {
			n.Labels[key] = *value
		}
		return k8s.Update(ctx, &n)
	})).To(Succeed())
}

// labelNode labels node-a for the rest of the spec.
func labelNode(key, value string) {
	GinkgoHelper()
	setNodeLabel(key, &value)
	DeferCleanup(func() { setNodeLabel(key, nil) })
}

func nodeStatus() *v1alpha1.BGPNodeStatus {
	var st v1alpha1.BGPNodeStatus
	if err := k8s.Get(ctx, types.NamespacedName{Name: nodeName}, &st); err != nil {
		return nil
	}
	return &st
}

// session polls node-a's reported session with a peer.
func session(peer string) func() v1alpha1.BGPSessionStatus {
	return func() v1alpha1.BGPSessionStatus {
		if st := nodeStatus(); st != nil {
			for _, s := range st.Status.Sessions {
				if s.Peer == peer {
					return s
				}
			}
		}
		return v1alpha1.BGPSessionStatus{}
	}
}

// sessionPeers polls the peers node-a reports sessions with.
func sessionPeers() []string {
	var out []string
	if st := nodeStatus(); st != nil {
		for _, s := range st.Status.Sessions {
			out = append(out, s.Peer)
		}
	}
	slices.Sort(out)
	return out
}

// condition polls a condition of node-a's BGPNodeStatus.
func condition(typ string) func() metav1.Condition {
	return func() metav1.Condition {
		if st := nodeStatus(); st != nil {
			for _, c := range st.Status.Conditions {
				if c.Type == typ {
					return c
				}
			}
		}
		return metav1.Condition{}
	}
}

// peerStatus polls a BGPPeer's status.
func peerStatus(name string) func() v1alpha1.BGPPeerStatus {
	return func() v1alpha1.BGPPeerStatus {
		var p v1alpha1.BGPPeer
		if err := k8s.Get(ctx, types.NamespacedName{Name: name}, &p); err != nil {
			return v1alpha1.BGPPeerStatus{}
		}
		return p.Status
	}
}

func peerCondition(name, typ string) func() metav1.Condition {
	return func() metav1.Condition {
		for _, c := range peerStatus(name)().Conditions {
			if c.Type == typ {
				return c
			}
		}
		return metav1.Condition{}
	}
}
