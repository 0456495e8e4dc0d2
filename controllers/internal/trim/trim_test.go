package trim

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

func TestService(t *testing.T) {
	now := metav1.Now()
	full := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "default", Name: "web", UID: "u1", ResourceVersion: "7", DeletionTimestamp: &now,
			Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"big": "x"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			LoadBalancerClass: ptr.To("bgplb.io/bgplb"), Ports: []corev1.ServicePort{{Port: 80}},
			Selector: map[string]string{"app": "web"},
		},
		Status: corev1.ServiceStatus{
			LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "198.51.100.1"}}},
			Conditions:   []metav1.Condition{{Type: "A", Status: "True"}, {Type: "B", Status: "False"}},
		},
	}
	wantMeta := metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "u1", ResourceVersion: "7", DeletionTimestamp: &now}
	wantSpec := corev1.ServiceSpec{Type: full.Spec.Type, ExternalTrafficPolicy: full.Spec.ExternalTrafficPolicy, LoadBalancerClass: full.Spec.LoadBalancerClass}
	for _, tc := range []struct {
		name  string
		types []string
		want  []metav1.Condition
	}{
		{"no conditions kept", nil, nil},
		{"one type", []string{"B"}, []metav1.Condition{{Type: "B", Status: "False"}}},
		{"a type the Service lacks", []string{"C"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Service(tc.types...)(full)
			if err != nil {
				t.Fatal(err)
			}
			want := &corev1.Service{ObjectMeta: wantMeta, Spec: wantSpec, Status: corev1.ServiceStatus{Conditions: tc.want}}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
		})
	}
	tomb := toolscache.DeletedFinalStateUnknown{Key: "default/web", Obj: full}
	if got, _ := Service()(tomb); !reflect.DeepEqual(got, tomb) {
		t.Errorf("a tombstone changed: %+v", got)
	}
}

func TestEndpointSlice(t *testing.T) {
	ep := func(node string, ready bool) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{
			Addresses: []string{"198.19.0.1"}, NodeName: ptr.To(node), Hostname: ptr.To("h"),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)},
		}
	}
	full := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-abc", UID: "u2", ResourceVersion: "3",
			Labels: map[string]string{discoveryv1.LabelServiceName: "web", "other": "x"}},
		AddressType: discoveryv1.AddressTypeIPv6,
		Endpoints:   []discoveryv1.Endpoint{ep("a", true), ep("b", false)},
		Ports:       []discoveryv1.EndpointPort{{Port: ptr.To[int32](80)}},
	}
	small := func(eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
		out := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-abc", ResourceVersion: "3",
				Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
			AddressType: discoveryv1.AddressTypeIPv6,
		}
		for _, e := range eps {
			out.Endpoints = append(out.Endpoints, discoveryv1.Endpoint{NodeName: e.NodeName, Conditions: e.Conditions})
		}
		return out
	}
	got, err := EndpointSlice()(full)
	if err != nil {
		t.Fatal(err)
	}
	if want := small(ep("a", true), ep("b", false)); !reflect.DeepEqual(got, want) {
		t.Errorf("every endpoint, node and conditions only: got %+v\nwant %+v", got, want)
	}
	if len(full.Endpoints) != 2 || full.Endpoints[0].Addresses == nil {
		t.Errorf("the informer's object was modified: %+v", full.Endpoints)
	}
	unlabelled := full.DeepCopy()
	unlabelled.Labels = nil
	got, _ = EndpointSlice()(unlabelled)
	if l := got.(*discoveryv1.EndpointSlice).Labels; l != nil {
		t.Errorf("labels of an unlabelled slice = %v", l)
	}
}
