package speaker

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// factsOfSlice answers, for one slice, what the speaker asks: a usable
// endpoint here (externalTrafficPolicy Local), anywhere (Cluster).
func TestFactsOfSlice(t *testing.T) {
	servingHere := ep{node: thisNode, ready: "n", serving: "y", terminating: "y"}
	notReadyHere := ep{node: thisNode, ready: "n", serving: "n", terminating: "n"}
	goneThere := ep{node: "node-b", ready: "n", serving: "n", terminating: "y"}
	nilReady := ep{node: thisNode, ready: "-", serving: "-", terminating: "-"}
	noNode := ep{ready: "y"}
	for _, tc := range []struct {
		name string
		eps  []ep
		want endpointFacts
	}{
		{"none", nil, endpointFacts{}},
		{"ready here", []ep{readyHere}, endpointFacts{here: true, any: true}},
		{"ready elsewhere", []ep{readyThere}, endpointFacts{any: true}},
		{"terminating but serving here", []ep{servingHere}, endpointFacts{here: true, any: true}},
		{"not ready here, ready elsewhere", []ep{notReadyHere, readyThere}, endpointFacts{any: true}},
		{"elsewhere first, then here", []ep{readyThere, readyHere}, endpointFacts{here: true, any: true}},
		{"terminating and not serving", []ep{goneThere}, endpointFacts{}},
		{"nil conditions mean ready", []ep{nilReady}, endpointFacts{here: true, any: true}},
		{"no node name", []ep{noNode}, endpointFacts{any: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := factsOfSlice(slice(tc.eps...), thisNode); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func namedSlice(ns, name, svcName string, eps ...ep) *discoveryv1.EndpointSlice {
	s := slice(eps...)
	s.Namespace, s.Name = ns, name
	if svcName != "" {
		s.Labels = map[string]string{discoveryv1.LabelServiceName: svcName, "other": "x"}
	}
	return s
}

// The store reports exactly the Services for which what anyServiceWants
// can answer changed, and nothing for changes that do not matter.
func TestFactStoreReportsWhatChanges(t *testing.T) {
	web := types.NamespacedName{Namespace: "a", Name: "web"}
	api := types.NamespacedName{Namespace: "a", Name: "api"}
	type (
		services  = sink[*corev1.Service]
		sliceSink = sink[*discoveryv1.EndpointSlice]
	)
	type step struct {
		name string
		do   func(services, sliceSink) error
		want []types.NamespacedName
	}
	steps := []step{
		{"first lists", func(s services, l sliceSink) error {
			if err := s.Replace([]any{svc("a/web")}, "1"); err != nil {
				return err
			}
			return l.Replace([]any{namedSlice("a", "web-1", "web", readyThere)}, "1")
		}, []types.NamespacedName{web, web}},
		{"status-only update", func(s services, _ sliceSink) error {
			o := svc("a/web")
			o.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "198.51.100.1"}}
			return s.Update(o)
		}, nil},
		{"same facts, other endpoint", func(_ services, l sliceSink) error {
			return l.Update(namedSlice("a", "web-1", "web", readyThere, readyThere))
		}, nil},
		{"a ready endpoint here", func(_ services, l sliceSink) error {
			return l.Add(namedSlice("a", "web-2", "web", readyHere))
		}, []types.NamespacedName{web}},
		{"slices of a Service that is not a LoadBalancer", func(_ services, l sliceSink) error {
			return l.Add(namedSlice("a", "api-1", "api", readyHere))
		}, nil},
		{"it becomes one", func(s services, _ sliceSink) error { return s.Add(svc("a/api", etpLocal)) },
			[]types.NamespacedName{api}},
		{"a slice moves from web to api (relabelled)", func(_ services, l sliceSink) error {
			return l.Update(namedSlice("a", "web-2", "api", readyHere))
		}, []types.NamespacedName{web}}, // api already had one here
		{"a slice without a Service label", func(_ services, l sliceSink) error {
			return l.Update(namedSlice("a", "api-1", "", readyHere))
		}, nil}, // web-2 still gives api one here
		{"relist without web-2", func(_ services, l sliceSink) error {
			return l.Replace([]any{namedSlice("a", "web-1", "web", readyThere)}, "9")
		}, []types.NamespacedName{api}},
		{"ETP changes", func(s services, _ sliceSink) error { return s.Update(svc("a/api")) },
			[]types.NamespacedName{api}},
		{"deleted", func(s services, _ sliceSink) error { return s.Delete(svc("a/api")) },
			[]types.NamespacedName{api}},
		{"relist without web", func(s services, _ sliceSink) error { return s.Replace(nil, "10") },
			[]types.NamespacedName{web}},
	}
	var got []types.NamespacedName
	st := newFactStore(thisNode, func(k types.NamespacedName) { got = append(got, k) })
	if st.synced() {
		t.Fatal("synced before any list")
	}
	for _, s := range steps {
		got = nil
		if err := s.do(servicesInto(st), slicesInto(st)); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if !slices.Equal(got, s.want) {
			t.Errorf("%s: reported %v, want %v", s.name, got, s.want)
		}
	}
	if !st.synced() {
		t.Error("not synced after both lists")
	}
	if len(st.services) != 0 || len(st.slices) != 1 || len(st.bySvc) != 1 {
		t.Errorf("left: %v %v %v", st.services, st.slices, st.bySvc)
	}
	if err := (servicesInto(st)).Add(&corev1.Node{}); err == nil {
		t.Error("a Node in the Services' store")
	}
}

// factFeed keeps a factStore in step with a model's world, as the
// reflectors would (a relist now and then, else one event per object),
// and collects the Services the store reports.
type factFeed struct {
	store   *factStore
	changed []string
	svcs    map[types.NamespacedName]*corev1.Service
	slices  map[types.NamespacedName]*discoveryv1.EndpointSlice
}

func newFactFeed() *factFeed {
	f := &factFeed{}
	f.store = newFactStore(thisNode, func(k types.NamespacedName) { f.changed = append(f.changed, k.String()) })
	return f
}

// sync feeds the store the difference from the last world to w and returns
// the Services it reported.
func (f *factFeed) sync(w world, rng *rand.Rand) ([]string, error) {
	svcs := map[types.NamespacedName]*corev1.Service{}
	for _, s := range w.svcs {
		if s.Spec.Type == corev1.ServiceTypeLoadBalancer { // the reflector's field selector
			svcs[keyOf(s.Namespace, s.Name)] = s
		}
	}
	sls := map[types.NamespacedName]*discoveryv1.EndpointSlice{}
	for key, list := range w.endpoints {
		ns, name, _ := strings.Cut(key, "/")
		for i, s := range list {
			c := s.DeepCopy()
			c.Namespace, c.Name = ns, fmt.Sprintf("%s-%d", name, i)
			c.Labels = map[string]string{discoveryv1.LabelServiceName: name}
			sls[keyOf(ns, c.Name)] = c
		}
	}
	f.changed = nil
	if f.svcs == nil || rng.IntN(5) == 0 {
		if err := feedReplace(servicesInto(f.store), svcs); err != nil {
			return nil, err
		}
		if err := feedReplace(slicesInto(f.store), sls); err != nil {
			return nil, err
		}
	} else {
		if err := feedEvents(servicesInto(f.store), f.svcs, svcs); err != nil {
			return nil, err
		}
		if err := feedEvents(slicesInto(f.store), f.slices, sls); err != nil {
			return nil, err
		}
	}
	f.svcs, f.slices = svcs, sls
	return f.changed, nil
}

func feedReplace[T any](sink interface{ Replace([]any, string) error }, objs map[types.NamespacedName]T) error {
	list := make([]any, 0, len(objs))
	for _, o := range objs {
		list = append(list, o)
	}
	return sink.Replace(list, "")
}

// feedEvents sends Delete, Add and Update (every object still there, as a
// resync would: unchanged ones must report nothing).
func feedEvents[T any](sink interface {
	Add(any) error
	Update(any) error
	Delete(any) error
}, old, next map[types.NamespacedName]T) error {
	for k, o := range old {
		if _, ok := next[k]; !ok {
			if err := sink.Delete(o); err != nil {
				return err
			}
		}
	}
	for k, o := range next {
		var err error
		if _, ok := old[k]; ok {
			err = sink.Update(o)
		} else {
			err = sink.Add(o)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
