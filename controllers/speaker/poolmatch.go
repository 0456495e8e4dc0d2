package speaker

import (
	"k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// poolMatch is what an advertisement's pool selection (ipPools,
// ipPoolSelector) looks at for one address.
//
// Deleting an IPPool takes no address away: its Services keep theirs, and
// so do their IPAllocations. The pool object, whose labels ipPoolSelector
// matches, is gone then; the labels the controller last copied to the
// IPAllocation (spec.poolLabels) stand in for them, so an advertisement
// selecting pools by label keeps announcing the kept addresses. While the
// pool exists its own labels decide (the copy may lag a label change).
type poolMatch struct {
	// name of the pool, as the IPAllocation records it.
	name string
	// labels ipPoolSelector is matched against.
	labels labels.Set
	// key tells announce groups apart (it keys pathTable.groups with the
	// family): the pool's name while it exists; for a deleted pool, the
	// name and the recorded labels, which may differ between its
	// allocations if it went while the controller was writing new ones.
	key string
}

// matchPool returns what advertisements select an allocation's address by.
func matchPool(alloc *v1alpha1.IPAllocation, pools map[string]*v1alpha1.IPPool) poolMatch {
	name := alloc.Spec.Pool
	if p := pools[name]; p != nil {
		return poolMatch{name: name, labels: labels.Set(p.Labels), key: name}
	}
	set := labels.Set(alloc.Spec.PoolLabels)
	// A NUL cannot occur in an object name, so no live pool has this key.
	return poolMatch{name: name, labels: set, key: name + "\x00" + set.String()}
}

// selectsMatch reports whether the advertisement selects addresses of the
// pool m describes: it selects every pool, names it in ipPools, or its
// ipPoolSelector matches m's labels.
func (a *advertisement) selectsMatch(m poolMatch) bool {
	switch {
	case a.pools == nil && a.poolSel == nil:
		return true
	case a.pools[m.name]:
		return true
	default:
		return a.poolSel != nil && a.poolSel.Matches(m.labels)
	}
}
