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
	tsl, _ := trimEndpointSlice(sl)
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
