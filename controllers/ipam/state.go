package ipam

import (
	"net/netip"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/allocator"
)

// svcKey names a Service.
type svcKey = types.NamespacedName

// State is the controller's memory: the allocator, the pools, and who holds
// which address. Decisions are made under its mutex and are short; API
// writes happen outside it.
type State struct {
	mu    sync.Mutex
	built bool
	alloc *allocator.Allocator
	pools []*PoolView // sorted by name
	byNam map[string]*PoolView
	recs  map[netip.Addr]*record
	bySvc map[svcKey]map[*record]struct{}
	byKey map[string]map[*record]struct{}
	// releasing holds records a Service left; they are written (patched or
	// deleted) after that Service's status no longer shows them.
	releasing map[svcKey]map[*record]struct{}
	// pending are Services left wanting (no address, a missing family, a
	// request not met); they are retried when addresses are freed or pools change.
	pending map[svcKey]struct{}
	share   map[svcKey]ShareInfo
	memo    map[svcKey]statusMemo
	// claims are status addresses reserved at start for the Service that
	// shows them until it is decided (claims.go); claimsBy indexes them.
	claims   map[netip.Addr][]svcKey
	claimsBy map[svcKey][]netip.Addr

	// OnFreed is called (under the mutex; it must not block) when an
	// address is freed or pools change, with the Services to retry.
	OnRetry func(keys []svcKey)
	// OnPoolUsage is called (under the mutex; must not block) when a
	// pool's allocations change.
	OnPoolUsage func(pool string)
}

// statusMemo remembers the last status written for a Service: base is the
// resourceVersion the write was based on, so a reconcile that still sees
// that version (the cache has not caught up) does not write again.
type statusMemo struct {
	base string
	st   ServiceStatus
}

// NewState returns an empty State.
func NewState() *State {
	return &State{
		alloc:     allocator.New(),
		byNam:     map[string]*PoolView{},
		recs:      map[netip.Addr]*record{},
		bySvc:     map[svcKey]map[*record]struct{}{},
		byKey:     map[string]map[*record]struct{}{},
		releasing: map[svcKey]map[*record]struct{}{},
		pending:   map[svcKey]struct{}{},
		share:     map[svcKey]ShareInfo{},
		memo:      map[svcKey]statusMemo{},
		claims:    map[netip.Addr][]svcKey{},
		claimsBy:  map[svcKey][]netip.Addr{},
	}
}

// Build fills an empty State from the pools and allocations that exist. It
// runs once, before the first decision, so an address held before a
// restart is never handed out again. It returns the Services named by
// allocations, which must be reconciled (some may be gone).
func (s *State) Build(pools []v1alpha1.IPPool, allocs []v1alpha1.IPAllocation) []types.NamespacedName {
	keys, _ := s.BuildClaiming(pools, allocs, nil)
	return keys
}

// BuildClaiming is Build, then, before any decision can see the State,
// claims the addresses Services show that no allocation records (see
// ClaimShown). It also returns how many it claimed.
func (s *State) BuildClaiming(pools []v1alpha1.IPPool, allocs []v1alpha1.IPAllocation, shown []ShownAddrs) ([]types.NamespacedName, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.built {
		return nil, 0
	}
	s.setPoolsLocked(BuildPoolViews(pools))
	var keys []svcKey
	for i := range allocs {
		keys = append(keys, s.observeLocked(&allocs[i])...)
	}
	n := s.claimShownLocked(shown)
	s.built = true
	return keys, n
}

// Built reports whether Build ran.
func (s *State) Built() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.built
}

// SetPools installs new pool views and returns the names of the pools whose
// view changed, and the Services to reconcile because of it: the pending
// ones and those holding addresses of changed pools.
func (s *State) SetPools(views []*PoolView) (changed []string, retry []types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed = s.setPoolsLocked(views)
	if len(changed) == 0 {
		return nil, nil
	}
	seen := map[svcKey]struct{}{}
	for k := range s.pending {
		seen[k] = struct{}{}
	}
	for _, rec := range s.recs {
		if slices.Contains(changed, rec.pool) {
			for _, r := range rec.want {
				seen[refKey(r)] = struct{}{}
			}
		}
	}
	for k := range seen {
		retry = append(retry, k)
	}
	return changed, retry
}

func (s *State) setPoolsLocked(views []*PoolView) []string {
	var changed []string
	names := map[string]bool{}
	for _, v := range views {
		names[v.Name] = true
		if v.Invalid == "" {
			s.alloc.SetPool(allocator.Pool{Name: v.Name, Ranges: v.Ranges, AvoidBuggyIPs: v.AvoidBuggyIPs})
		} else {
			s.alloc.DeletePool(v.Name)
		}
		if old := s.byNam[v.Name]; old == nil || !samePoolView(old, v) {
			changed = append(changed, v.Name)
		}
	}
	for name := range s.byNam {
		if !names[name] {
			s.alloc.DeletePool(name)
			changed = append(changed, name)
		}
	}
	s.pools = views
	s.byNam = make(map[string]*PoolView, len(views))
	for _, v := range views {
		s.byNam[v.Name] = v
	}
	slices.Sort(changed)
	return changed
}

func samePoolView(a, b *PoolView) bool {
	if a.Name != b.Name || a.Invalid != b.Invalid || a.AutoAssign != b.AutoAssign || a.AvoidBuggyIPs != b.AvoidBuggyIPs ||
		a.Disabled != b.Disabled || a.Deleting != b.Deleting || a.HasAllocateTo != b.HasAllocateTo ||
		a.Priority != b.Priority || a.OverlapsWith != b.OverlapsWith || a.Generation != b.Generation ||
		!slices.Equal(a.Ranges, b.Ranges) || !slices.Equal(a.Namespaces, b.Namespaces) {
		return false
	}
	return selString(a.NamespaceSelector) == selString(b.NamespaceSelector) && selString(a.ServiceSelector) == selString(b.ServiceSelector)
}

func selString(s labels.Selector) string {
	if s == nil {
		return "<none>"
	}
	return s.String()
}

// Pool returns the view of a pool.
func (s *State) Pool(name string) *PoolView {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byNam[name]
}

// NeedsNamespaceLabels reports whether some pool selects namespaces by label.
func (s *State) NeedsNamespaceLabels() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pools {
		if p.NamespaceSelector != nil {
			return true
		}
	}
	return false
}

// memoOf returns the status last written for a Service.
func (s *State) memoOf(k svcKey) (statusMemo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.memo[k]
	return m, ok
}

// setMemo remembers the status written for a Service.
func (s *State) setMemo(k svcKey, m statusMemo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.memo[k] = m
}

// Knows reports whether the State holds anything for a Service: addresses,
// releases in flight, a pending request or a written status.
func (s *State) Knows(k svcKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, held := s.bySvc[k]
	_, releasing := s.releasing[k]
	_, pending := s.pending[k]
	_, memo := s.memo[k]
	return held || releasing || pending || memo
}

// PendingIn returns the pending Services of a namespace.
func (s *State) PendingIn(ns string) []types.NamespacedName {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []svcKey
	for k := range s.pending {
		if k.Namespace == ns {
			out = append(out, k)
		}
	}
	return out
}
