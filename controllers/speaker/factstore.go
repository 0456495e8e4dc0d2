package speaker

import (
	"fmt"
	"iter"
	"maps"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// factStore keeps, of every LoadBalancer Service and every EndpointSlice
// of the cluster, only their facts (serviceFacts, endpointFacts): a
// reflector of each kind writes into it (servicesInto, slicesInto) and the
// objects themselves are dropped as soon as they are read. An informer's
// store would keep every object, with a map per index key: at 10,000
// Services that was about 20 MB of the speaker's heap, most of it.
//
// Every change that alters what anyServiceWants can answer for a Service
// calls changed with that Service (not under the lock), after the facts
// are stored: the reconciler that runs next reads them.
type factStore struct {
	nodeName string
	changed  func(types.NamespacedName)

	mu       sync.RWMutex
	services map[types.NamespacedName]serviceFacts
	// slices maps each EndpointSlice (namespace/name) to its Service, so
	// that a slice relabelled or deleted is found without its old object.
	slices map[types.NamespacedName]string
	// bySvc holds each Service's slices and their facts (usually one per
	// address family).
	bySvc map[types.NamespacedName][]namedFacts

	servicesSynced, slicesSynced bool
}

type namedFacts struct {
	slice string
	facts endpointFacts
}

func newFactStore(nodeName string, changed func(types.NamespacedName)) *factStore {
	return &factStore{
		nodeName: nodeName, changed: changed,
		services: map[types.NamespacedName]serviceFacts{},
		slices:   map[types.NamespacedName]string{},
		bySvc:    map[types.NamespacedName][]namedFacts{},
	}
}

func (s *factStore) service(key types.NamespacedName) (serviceFacts, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	f, ok := s.services[key]
	return f, ok
}

func (s *factStore) endpoints(key types.NamespacedName) endpointFacts {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.endpointsLocked(key)
}

func (s *factStore) endpointsLocked(key types.NamespacedName) endpointFacts {
	var f endpointFacts
	for _, n := range s.bySvc[key] {
		f = f.or(n.facts)
	}
	return f
}

// setChanged sets the function told of changes; call it before the
// reflectors start.
func (s *factStore) setChanged(f func(types.NamespacedName)) { s.changed = f }

// synced reports whether both reflectors have stored their first list.
func (s *factStore) synced() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.servicesSynced && s.slicesSynced
}

func (s *factStore) notify(keys []types.NamespacedName) {
	if s.changed == nil {
		return
	}
	for _, k := range keys {
		s.changed(k)
	}
}

// setServiceLocked stores (or, with svc nil, forgets) a Service's facts
// and appends it to out when they changed.
func (s *factStore) setServiceLocked(key types.NamespacedName, svc *corev1.Service, out []types.NamespacedName) []types.NamespacedName {
	old, had := s.services[key]
	if svc == nil {
		delete(s.services, key)
	} else {
		s.services[key] = factsOfService(svc)
	}
	if now, has := s.services[key]; had != has || now != old {
		out = append(out, key)
	}
	return out
}

// setSliceLocked stores (or, with es nil, forgets) the facts of the
// EndpointSlice key and appends to out the Services whose merged facts
// changed and that are known LoadBalancers (the others are read when they
// become one). A slice without a Service label counts for no Service.
func (s *factStore) setSliceLocked(key types.NamespacedName, es *discoveryv1.EndpointSlice, out []types.NamespacedName) []types.NamespacedName {
	var affected []types.NamespacedName
	var before []endpointFacts
	note := func(svc types.NamespacedName) {
		affected = append(affected, svc)
		before = append(before, s.endpointsLocked(svc))
	}
	if old, ok := s.slices[key]; ok {
		svc := keyOf(key.Namespace, old)
		note(svc)
		delete(s.slices, key)
		s.dropSliceLocked(svc, key.Name)
	}
	if name := labelOf(es); name != "" {
		svc := keyOf(key.Namespace, name)
		if len(affected) == 0 || affected[0] != svc {
			note(svc)
		}
		s.slices[key] = name
		s.bySvc[svc] = append(s.bySvc[svc], namedFacts{slice: key.Name, facts: factsOfSlice(es, s.nodeName)})
	}
	for i, svc := range affected {
		if _, lb := s.services[svc]; lb && s.endpointsLocked(svc) != before[i] {
			out = append(out, svc)
		}
	}
	return out
}

// dropSliceLocked removes a slice's facts from its Service's list.
func (s *factStore) dropSliceLocked(svc types.NamespacedName, slice string) {
	l := s.bySvc[svc]
	for i := range l {
		if l[i].slice == slice {
			l = append(l[:i:i], l[i+1:]...)
			break
		}
	}
	if len(l) == 0 {
		delete(s.bySvc, svc)
	} else {
		s.bySvc[svc] = l
	}
}

// labelOf is the name of the Service an EndpointSlice belongs to ("" for
// none, or no slice).
func labelOf(es *discoveryv1.EndpointSlice) string {
	if es == nil {
		return ""
	}
	return es.Labels[discoveryv1.LabelServiceName]
}

// sink is where a reflector writes one kind: each object becomes facts
// (set; a nil object forgets them) and the Services whose facts changed
// are told after the lock is released.
type sink[T client.Object] struct {
	s   *factStore
	set func(s *factStore, key types.NamespacedName, obj T, out []types.NamespacedName) []types.NamespacedName
	// known lists the keys stored of this kind; synced marks its first list.
	known  func(s *factStore) iter.Seq[types.NamespacedName]
	synced func(s *factStore)
}

var (
	_ toolscache.ReflectorStore = sink[*corev1.Service]{}
	_ toolscache.ReflectorStore = sink[*discoveryv1.EndpointSlice]{}
)

// servicesInto is the sink of the Services' reflector.
func servicesInto(s *factStore) sink[*corev1.Service] {
	return sink[*corev1.Service]{s: s, set: (*factStore).setServiceLocked,
		known:  func(s *factStore) iter.Seq[types.NamespacedName] { return maps.Keys(s.services) },
		synced: func(s *factStore) { s.servicesSynced = true }}
}

// slicesInto is the sink of the EndpointSlices' reflector.
func slicesInto(s *factStore) sink[*discoveryv1.EndpointSlice] {
	return sink[*discoveryv1.EndpointSlice]{s: s, set: (*factStore).setSliceLocked,
		known:  func(s *factStore) iter.Seq[types.NamespacedName] { return maps.Keys(s.slices) },
		synced: func(s *factStore) { s.slicesSynced = true }}
}

func keyOf(namespace, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: namespace, Name: name}
}

func (k sink[T]) object(obj any) (T, error) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	o, ok := obj.(T)
	if !ok {
		return o, fmt.Errorf("the %T reflector gave a %T", o, obj)
	}
	return o, nil
}

func (k sink[T]) put(obj any, remove bool) error {
	o, err := k.object(obj)
	if err != nil {
		return err
	}
	key := keyOf(o.GetNamespace(), o.GetName())
	if remove {
		var none T
		o = none
	}
	k.s.mu.Lock()
	changed := k.set(k.s, key, o, nil)
	k.s.mu.Unlock()
	k.s.notify(changed)
	return nil
}

// Add implements toolscache.ReflectorStore.
func (k sink[T]) Add(obj any) error { return k.put(obj, false) }

// Update implements toolscache.ReflectorStore.
func (k sink[T]) Update(obj any) error { return k.put(obj, false) }

// Delete implements toolscache.ReflectorStore.
func (k sink[T]) Delete(obj any) error { return k.put(obj, true) }

// Resync implements toolscache.ReflectorStore (nothing to do).
func (sink[T]) Resync() error { return nil }

// Replace implements toolscache.ReflectorStore: the list is the whole
// truth (the first list, or a relist after the watch expired); objects
// missing from it are gone.
func (k sink[T]) Replace(list []any, _ string) error {
	next := make(map[types.NamespacedName]T, len(list))
	for _, obj := range list {
		o, err := k.object(obj)
		if err != nil {
			return err
		}
		next[keyOf(o.GetNamespace(), o.GetName())] = o
	}
	var changed []types.NamespacedName
	k.s.mu.Lock()
	var none T
	for key := range k.known(k.s) {
		if _, ok := next[key]; !ok {
			changed = k.set(k.s, key, none, changed)
		}
	}
	for key, o := range next {
		changed = k.set(k.s, key, o, changed)
	}
	k.synced(k.s)
	k.s.mu.Unlock()
	k.s.notify(changed)
	return nil
}
