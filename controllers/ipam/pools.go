package ipam

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/allocator"
)

// PoolView is the controller's parsed view of an IPPool.
type PoolView struct {
	Name       string
	Created    time.Time
	Generation int64
	// Labels are the pool's labels, which new IPAllocations of the pool
	// copy (spec.poolLabels). Read-only: views are replaced, never changed.
	// They decide nothing about allocation, so samePoolView ignores them.
	Labels map[string]string
	Ranges []allocator.Range
	// Invalid says why the pool cannot be used (bad addresses or selectors);
	// empty when it is fine.
	Invalid       string
	AutoAssign    bool
	AvoidBuggyIPs bool
	Disabled      bool
	Deleting      bool

	HasAllocateTo     bool
	Priority          int32
	Namespaces        []string
	NamespaceSelector labels.Selector // nil: none
	ServiceSelector   labels.Selector // nil: none

	// OverlapsWith names the older pool this one overlaps; such a pool gives
	// out nothing until fixed.
	OverlapsWith string
}

// Gives reports whether the pool hands out new addresses.
func (p *PoolView) Gives() bool {
	return p.Invalid == "" && !p.Disabled && !p.Deleting && p.OverlapsWith == ""
}

// HasFamily reports whether the pool has a range of the family.
func (p *PoolView) HasFamily(f allocator.Family) bool {
	return slices.ContainsFunc(p.Ranges, func(r allocator.Range) bool { return r.Family() == f })
}

// whyNot says why a pool gives nothing, for conditions; "" if it gives.
func (p *PoolView) whyNot() string {
	switch {
	case p.Invalid != "":
		return fmt.Sprintf("pool %s is invalid: %s", p.Name, p.Invalid)
	case p.Deleting:
		return fmt.Sprintf("pool %s is being deleted", p.Name)
	case p.Disabled:
		return fmt.Sprintf("pool %s is disabled", p.Name)
	case p.OverlapsWith != "":
		return fmt.Sprintf("pool %s overlaps the older pool %s and gives no addresses until fixed", p.Name, p.OverlapsWith)
	}
	return ""
}

// AllocatesTo reports whether the pool's allocateTo admits a Service in
// namespace ns with the given namespace and Service labels. The namespace
// list and namespace selector are alternatives; the Service selector, when
// set, must match too. A pool without allocateTo admits every Service.
func (p *PoolView) AllocatesTo(ns string, nsLabels, svcLabels labels.Set) bool {
	if !p.HasAllocateTo {
		return true
	}
	if len(p.Namespaces) > 0 || p.NamespaceSelector != nil {
		ok := slices.Contains(p.Namespaces, ns) || (p.NamespaceSelector != nil && p.NamespaceSelector.Matches(nsLabels))
		if !ok {
			return false
		}
	}
	return p.ServiceSelector == nil || p.ServiceSelector.Matches(svcLabels)
}

// BuildPoolViews parses the pools and decides overlaps: a pool that overlaps
// an older one (by creationTimestamp, then name) is marked and gives nothing,
// so the older pool's Services never see their addresses handed out twice.
// The result is sorted by name.
func BuildPoolViews(pools []v1alpha1.IPPool) []*PoolView {
	views := make([]*PoolView, 0, len(pools))
	for i := range pools {
		views = append(views, poolView(&pools[i]))
	}
	byAge := slices.Clone(views)
	slices.SortFunc(byAge, func(a, b *PoolView) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	var winners []*PoolView
	for _, v := range byAge {
		if v.Invalid != "" {
			continue
		}
		for _, w := range winners {
			if allocator.PoolsOverlap(allocator.Pool{Ranges: v.Ranges}, allocator.Pool{Ranges: w.Ranges}) {
				v.OverlapsWith = w.Name
				break
			}
		}
		if v.OverlapsWith == "" {
			winners = append(winners, v)
		}
	}
	slices.SortFunc(views, func(a, b *PoolView) int { return cmp.Compare(a.Name, b.Name) })
	return views
}

func poolView(p *v1alpha1.IPPool) *PoolView {
	v := &PoolView{
		Name:          p.Name,
		Created:       p.CreationTimestamp.Time,
		Generation:    p.Generation,
		Labels:        maps.Clone(p.Labels),
		AutoAssign:    p.Spec.AutoAssign == nil || *p.Spec.AutoAssign,
		AvoidBuggyIPs: p.Spec.AvoidBuggyIPs,
		Disabled:      p.Spec.Disabled,
		Deleting:      !p.DeletionTimestamp.IsZero(),
	}
	ss := make([]string, len(p.Spec.Addresses))
	for i, a := range p.Spec.Addresses {
		ss[i] = string(a)
	}
	rs, err := allocator.ParseRanges(ss)
	if err != nil {
		v.Invalid = err.Error()
	}
	v.Ranges = rs
	if at := p.Spec.AllocateTo; at != nil {
		v.HasAllocateTo = true
		v.Priority = at.Priority
		v.Namespaces = slices.Sorted(slices.Values(at.Namespaces))
		if at.NamespaceSelector != nil {
			s, err := metav1.LabelSelectorAsSelector(at.NamespaceSelector)
			if err != nil {
				v.Invalid = fmt.Sprintf("allocateTo.namespaceSelector: %v", err)
			}
			v.NamespaceSelector = s
		}
		if at.ServiceSelector != nil {
			s, err := metav1.LabelSelectorAsSelector(at.ServiceSelector)
			if err != nil {
				v.Invalid = fmt.Sprintf("allocateTo.serviceSelector: %v", err)
			}
			v.ServiceSelector = s
		}
	}
	if v.Invalid != "" {
		v.Ranges = nil
	}
	return v
}

// Failure is why a Service did not get an address: a condition reason and a
// message for the user.
type Failure struct {
	Reason  string
	Message string
}

func (f *Failure) Error() string { return f.Reason + ": " + f.Message }

// Candidates returns the pools a Service may get a new address from, in the
// order to try them: the named pool alone if it names one; otherwise the
// auto-assign pools whose allocateTo admits the Service, by priority then
// name, followed by the auto-assign pools without allocateTo, by name.
// Pools that give nothing (disabled, deleting, overlapping, invalid) are left
// out. pools must be sorted by name.
func Candidates(pools []*PoolView, named, ns string, nsLabels, svcLabels labels.Set) ([]*PoolView, *Failure) {
	if named != "" {
		i, ok := slices.BinarySearchFunc(pools, named, func(p *PoolView, n string) int { return cmp.Compare(p.Name, n) })
		if !ok {
			return nil, &Failure{v1alpha1.ReasonNoMatchingPool, fmt.Sprintf("pool %s named by %s does not exist", named, v1alpha1.AnnotationIPPool)}
		}
		p := pools[i]
		if why := p.whyNot(); why != "" {
			return nil, &Failure{v1alpha1.ReasonNoMatchingPool, why}
		}
		if !p.AllocatesTo(ns, nsLabels, svcLabels) {
			return nil, &Failure{v1alpha1.ReasonNoMatchingPool, fmt.Sprintf("pool %s does not allocate to this Service (see its allocateTo)", named)}
		}
		return []*PoolView{p}, nil
	}
	var restricted, open []*PoolView
	for _, p := range pools {
		if !p.Gives() || !p.AutoAssign {
			continue
		}
		switch {
		case !p.HasAllocateTo:
			open = append(open, p)
		case p.AllocatesTo(ns, nsLabels, svcLabels):
			restricted = append(restricted, p)
		}
	}
	slices.SortStableFunc(restricted, func(a, b *PoolView) int { return cmp.Compare(a.Priority, b.Priority) })
	out := slices.Concat(restricted, open)
	if len(out) == 0 {
		return nil, &Failure{v1alpha1.ReasonNoMatchingPool, noPoolMessage(pools)}
	}
	return out, nil
}

func noPoolMessage(pools []*PoolView) string {
	if len(pools) == 0 {
		return "no IPPool exists"
	}
	var why []string
	for _, p := range pools {
		w := p.whyNot()
		switch {
		case w != "":
		case !p.AutoAssign:
			w = fmt.Sprintf("pool %s has autoAssign: false (name it with %s)", p.Name, v1alpha1.AnnotationIPPool)
		default:
			w = fmt.Sprintf("pool %s does not allocate to this Service", p.Name)
		}
		why = append(why, w)
		if len(why) == 5 && len(pools) > 5 {
			why = append(why, fmt.Sprintf("and %d more", len(pools)-5))
			break
		}
	}
	return "no pool gives addresses to this Service: " + strings.Join(why, "; ")
}
