package speaker

import (
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
)

// factStore keeps, of every LoadBalancer Service and every EndpointSlice
// of the cluster, only their facts (serviceFacts, endpointFacts): a
// reflector of each kind writes into it (serviceSink, sliceSink) and the
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
// and reports whether they changed.
func (s *factStore) setServiceLocked(key types.NamespacedName, svc *corev1.Service) bool {
	old, had := s.services[key]
	if svc == nil {
		delete(s.services, key)
		return had
	}
	f := factsOfService(svc)
	s.services[key] = f
	return !had || f != old
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

// serviceSink is the store the Services' reflector writes to.
type serviceSink struct{ s *factStore }

// sliceSink is the store the EndpointSlices' reflector writes to.
type sliceSink struct{ s *factStore }

var (
	_ toolscache.ReflectorStore = serviceSink{}
	_ toolscache.ReflectorStore = sliceSink{}
)

func keyOf(namespace, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: namespace, Name: name}
}

func asService(obj any) (*corev1.Service, error) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return nil, fmt.Errorf("the Services' reflector gave a %T", obj)
	}
	return svc, nil
}

func asSlice(obj any) (*discoveryv1.EndpointSlice, error) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	es, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, fmt.Errorf("the EndpointSlices' reflector gave a %T", obj)
	}
	return es, nil
}

func (k serviceSink) put(obj any, remove bool) error {
	svc, err := asService(obj)
	if err != nil {
		return err
	}
	key := keyOf(svc.Namespace, svc.Name)
	if remove {
		svc = nil
	}
	k.s.mu.Lock()
	changed := k.s.setServiceLocked(key, svc)
	k.s.mu.Unlock()
	if changed {
		k.s.notify([]types.NamespacedName{key})
	}
	return nil
}

// Add implements toolscache.ReflectorStore.
func (k serviceSink) Add(obj any) error { return k.put(obj, false) }

// Update implements toolscache.ReflectorStore.
func (k serviceSink) Update(obj any) error { return k.put(obj, false) }

// Delete implements toolscache.ReflectorStore.
func (k serviceSink) Delete(obj any) error { return k.put(obj, true) }

// Resync implements toolscache.ReflectorStore (nothing to do).
func (serviceSink) Resync() error { return nil }

// Replace implements toolscache.ReflectorStore: the list is the whole
// truth (the first list, or a relist after the watch expired); Services
// missing from it are gone.
func (k serviceSink) Replace(list []any, _ string) error {
	next := make(map[types.NamespacedName]*corev1.Service, len(list))
	for _, o := range list {
		svc, err := asService(o)
		if err != nil {
			return err
		}
		next[keyOf(svc.Namespace, svc.Name)] = svc
	}
	var changed []types.NamespacedName
	k.s.mu.Lock()
	for key := range k.s.services {
		if _, ok := next[key]; !ok && k.s.setServiceLocked(key, nil) {
			changed = append(changed, key)
		}
	}
	for key, svc := range next {
		if k.s.setServiceLocked(key, svc) {
			changed = append(changed, key)
		}
	}
	k.s.servicesSynced = true
	k.s.mu.Unlock()
	k.s.notify(changed)
	return nil
}

func (k sliceSink) put(obj any, remove bool) error {
	es, err := asSlice(obj)
	if err != nil {
		return err
	}
	key := keyOf(es.Namespace, es.Name)
	if remove {
		es = nil
	}
	k.s.mu.Lock()
	changed := k.s.setSliceLocked(key, es, nil)
	k.s.mu.Unlock()
	k.s.notify(changed)
	return nil
}

// Add implements toolscache.ReflectorStore.
func (k sliceSink) Add(obj any) error { return k.put(obj, false) }

// Update implements toolscache.ReflectorStore.
func (k sliceSink) Update(obj any) error { return k.put(obj, false) }

// Delete implements toolscache.ReflectorStore.
func (k sliceSink) Delete(obj any) error { return k.put(obj, true) }

// Resync implements toolscache.ReflectorStore (nothing to do).
func (sliceSink) Resync() error { return nil }

// Replace implements toolscache.ReflectorStore (see serviceSink.Replace).
func (k sliceSink) Replace(list []any, _ string) error {
	next := make(map[types.NamespacedName]*discoveryv1.EndpointSlice, len(list))
	for _, o := range list {
		es, err := asSlice(o)
		if err != nil {
			return err
		}
		next[keyOf(es.Namespace, es.Name)] = es
	}
	var changed []types.NamespacedName
	k.s.mu.Lock()
	for key := range k.s.slices {
		if _, ok := next[key]; !ok {
			changed = k.s.setSliceLocked(key, nil, changed)
		}
	}
	for key, es := range next {
		changed = k.s.setSliceLocked(key, es, changed)
	}
	k.s.slicesSynced = true
	k.s.mu.Unlock()
	k.s.notify(changed)
	return nil
}
