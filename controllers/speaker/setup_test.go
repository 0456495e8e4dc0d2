package speaker

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// The cache keeps trimmed Services and EndpointSlices: Compute must decide
// exactly as it would on the full objects.
func TestTrimmedObjectsDecideTheSame(t *testing.T) {
	full := svc("default/web", etpLocal)
	full.Spec.LoadBalancerClass = ptr.To(v1alpha1.LoadBalancerClass)
	full.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{...}"}
	full.Spec.Ports = []corev1.ServicePort{{Port: 80}}
	full.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.10"}}
	sl := slice(readyHere, ep{node: "node-b", ready: "n", serving: "y", terminating: "y"})
	sl.Namespace, sl.Name = "default", "web-abc"
	sl.Labels = map[string]string{discoveryv1.LabelServiceName: "web", "other": "x"}
	sl.Ports = []discoveryv1.EndpointPort{{Port: ptr.To[int32](80)}}

	ts, _ := trimService(full)
	tsl, _ := trimEndpointSlice(thisNode)(sl)
	small, smallSlice := ts.(*corev1.Service), tsl.(*discoveryv1.EndpointSlice)
	if small.Annotations != nil || small.Spec.Ports != nil || small.Status.LoadBalancer.Ingress != nil || smallSlice.Ports != nil {
		t.Errorf("not trimmed: %+v %+v", small, smallSlice)
	}
	if smallSlice.Labels[discoveryv1.LabelServiceName] != "web" || len(smallSlice.Labels) != 1 {
		t.Errorf("slice labels = %v", smallSlice.Labels)
	}

	decide := func(s *corev1.Service, es *discoveryv1.EndpointSlice) Desired {
		w := base()
		w.svcs = []*corev1.Service{s}
		in := w.inputs()
		in.EndpointSlices = map[types.NamespacedName][]*discoveryv1.EndpointSlice{{Namespace: "default", Name: "web"}: {es}}
		return Compute(in)
	}
	if a, b := decide(full, sl), decide(small, smallSlice); !reflect.DeepEqual(a.State, b.State) || len(a.State.Paths) != 1 {
		t.Errorf("decisions differ:\n%+v\n%+v", a.State, b.State)
	}
	for _, deleting := range []bool{false, true} {
		full.DeletionTimestamp = nil
		if deleting {
			full.DeletionTimestamp = &metav1.Time{Time: t0}
		}
		ts, _ = trimService(full)
		if got := ts.(*corev1.Service).DeletionTimestamp != nil; got != deleting {
			t.Errorf("deletion timestamp kept = %v", got)
		}
	}
	// Tombstones pass through untouched.
	tomb := toolscache.DeletedFinalStateUnknown{Key: "default/web", Obj: full}
	if got, _ := trimService(tomb); !reflect.DeepEqual(got, tomb) {
		t.Errorf("tombstone changed")
	}
}

// The trimmed slice keeps one endpoint at most, and whether a Service has a
// usable endpoint (anywhere, or on this node) is the same on it.
func TestTrimmedEndpointSliceKeepsTheAnswer(t *testing.T) {
	notReadyHere := ep{node: thisNode, ready: "n", serving: "n", terminating: "n"}
	servingHere := ep{node: thisNode, ready: "n", serving: "y", terminating: "y"}
	goneThere := ep{node: "node-b", ready: "n", serving: "n", terminating: "y"}
	noNode := ep{ready: "y"}
	all := []ep{readyHere, readyThere, notReadyHere, servingHere, goneThere, noNode}
	// Every list of up to three of them, in every order.
	var lists [][]ep
	var grow func(cur []ep)
	grow = func(cur []ep) {
		lists = append(lists, cur)
		if len(cur) == 3 {
			return
		}
		for _, e := range all {
			grow(append(append([]ep(nil), cur...), e))
		}
	}
	grow(nil)
	trim := trimEndpointSlice(thisNode)
	for _, eps := range lists {
		full := slice(eps...)
		o, _ := trim(full)
		small := o.(*discoveryv1.EndpointSlice)
		if len(small.Endpoints) > 1 {
			t.Errorf("%v: kept %d endpoints", eps, len(small.Endpoints))
		}
		for _, local := range []bool{false, true} {
			want := hasUsableEndpoint([]*discoveryv1.EndpointSlice{full}, local, thisNode)
			if got := hasUsableEndpoint([]*discoveryv1.EndpointSlice{small}, local, thisNode); got != want {
				t.Errorf("%v, local=%v: trimmed says %v, full says %v", eps, local, got, want)
			}
		}
	}
}
