package speaker

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp"
)

// update does what the reconciler does for a run with dirty Services and
// IPAllocations: every allocation named, and every allocation recording
// a dirty Service, is set again from in's allocations and src.
func update(tbl *pathTable, in Inputs, src serviceSource, services, allocations []string) {
	byName := make(map[string]*v1alpha1.IPAllocation, len(in.Allocations))
	names := map[string]bool{}
	for _, a := range in.Allocations {
		byName[a.Name] = a
	}
	for _, n := range allocations {
		names[n] = true
	}
	for _, key := range services {
		ns, name, _ := strings.Cut(key, "/")
		for _, a := range in.Allocations {
			if slices.ContainsFunc(a.Spec.Services, func(r v1alpha1.ServiceReference) bool { return r.Namespace == ns && r.Name == name }) {
				names[a.Name] = true
			}
		}
	}
	for n := range names {
		tbl.set(n, byName[n], src)
	}
}

func stateOf(paths []bgp.Path) bgp.State { return bgp.State{Paths: paths} }

func changesSummary(c tableChanges) (paths, []string) {
	up := summary(Desired{State: stateOf(c.upsert)})
	var wd []string
	for _, p := range c.withdraw {
		wd = append(wd, p.String())
	}
	return up, wd
}

func notReady() []*discoveryv1.EndpointSlice {
	return []*discoveryv1.EndpointSlice{slice(ep{node: "node-b", ready: "n", serving: "n", terminating: "n"})}
}

// A change to one Service, its endpoints or its allocation hands the bgp
// package only its own paths; aggregates count their members.
func TestTableUpdates(t *testing.T) {
	api := func(w *world) {
		w.svcs = append(w.svcs, svc("default/api"))
		w.endpoints["default/api"] = []*discoveryv1.EndpointSlice{slice(readyThere)}
	}
	aggregated := func(w *world) {
		w.advs = []v1alpha1.BGPAdvertisement{adv("a", aggregation(24, 64))}
		api(w)
		w.allocs = append(w.allocs, alloc("192.0.2.11", "p1", "default/api"))
	}
	twoPools := func(w *world) {
		w.pools = append(w.pools, pool("p2", nil))
		w.advs = []v1alpha1.BGPAdvertisement{
			adv("a", pools("p1"), aggregation(24, 64), communities("65000:1")),
			adv("b", pools("p2"), aggregation(24, 64), communities("65000:2")),
		}
		api(w)
		w.allocs = append(w.allocs, alloc("192.0.2.20", "p2", "default/api"))
	}
	// p1 is deleted; its address stays selected by label through the
	// labels its allocation recorded.
	deletedPublic := func(w *world) {
		w.pools = nil
		w.allocs[0].Spec.PoolLabels = map[string]string{"tier": "public"}
		w.advs = []v1alpha1.BGPAdvertisement{adv("a", poolSelector(map[string]string{"tier": "public"}))}
	}
	cases := []struct {
		name     string
		start    func(w *world)
		change   func(w *world) (services, allocations []string)
		upsert   paths
		withdraw []string
	}{
		{"endpoint no longer ready: the Service's /32 is withdrawn", nil, func(w *world) ([]string, []string) {
			w.endpoints["default/web"] = notReady()
			return []string{"default/web"}, nil
		}, paths{}, []string{"192.0.2.10/32"}},
		{"ready again: announced", func(w *world) { w.endpoints["default/web"] = notReady() }, func(w *world) ([]string, []string) {
			w.endpoints["default/web"] = []*discoveryv1.EndpointSlice{slice(readyThere)}
			return []string{"default/web"}, nil
		}, paths{"192.0.2.10/32": {"r1": ""}}, nil},
		{"an event that changes nothing applies nothing", nil, func(w *world) ([]string, []string) {
			return []string{"default/web"}, []string{v1alpha1.AllocationName("192.0.2.10")}
		}, paths{}, nil},
		{"a Service nothing records applies nothing", nil, func(w *world) ([]string, []string) {
			api(w)
			return []string{"default/api"}, nil
		}, paths{}, nil},
		{"new allocation: announced", nil, func(w *world) ([]string, []string) {
			api(w)
			w.allocs = append(w.allocs, alloc("192.0.2.11", "p1", "default/api"))
			return nil, []string{v1alpha1.AllocationName("192.0.2.11")}
		}, paths{"192.0.2.11/32": {"r1": ""}}, nil},
		{"allocation deleted: withdrawn", nil, func(w *world) ([]string, []string) {
			w.allocs = nil
			return nil, []string{v1alpha1.AllocationName("192.0.2.10")}
		}, paths{}, []string{"192.0.2.10/32"}},
		{"Service deleted: withdrawn", nil, func(w *world) ([]string, []string) {
			w.svcs = nil
			return []string{"default/web"}, nil
		}, paths{}, []string{"192.0.2.10/32"}},
		{"Service re-created with another UID: withdrawn", nil, func(w *world) ([]string, []string) {
			w.svcs[0].UID = "new"
			return []string{"default/web"}, nil
		}, paths{}, []string{"192.0.2.10/32"}},
		{"Service becomes ETP Local without a local endpoint: withdrawn", nil, func(w *world) ([]string, []string) {
			etpLocal(w.svcs[0])
			return []string{"default/web"}, nil
		}, paths{}, []string{"192.0.2.10/32"}},
		{"shared address: still wanted by the other Service", func(w *world) {
			api(w)
			w.allocs = []*v1alpha1.IPAllocation{alloc("192.0.2.10", "p1", "default/web", "default/api")}
		}, func(w *world) ([]string, []string) {
			w.endpoints["default/web"] = notReady()
			return []string{"default/web"}, nil
		}, paths{}, nil},
		{"shared address: the last wanting Service goes", func(w *world) {
			api(w)
			w.allocs = []*v1alpha1.IPAllocation{alloc("192.0.2.10", "p1", "default/web", "default/api")}
			w.endpoints["default/web"] = notReady()
		}, func(w *world) ([]string, []string) {
			w.endpoints["default/api"] = notReady()
			return []string{"default/api"}, nil
		}, paths{}, []string{"192.0.2.10/32"}},
		{"a second member of an announced aggregate changes nothing", func(w *world) {
			w.advs = []v1alpha1.BGPAdvertisement{adv("a", aggregation(24, 64))}
		}, func(w *world) ([]string, []string) {
			api(w)
			w.allocs = append(w.allocs, alloc("192.0.2.11", "p1", "default/api"))
			return nil, []string{v1alpha1.AllocationName("192.0.2.11")}
		}, paths{}, nil},
		{"the aggregate stays while a member is announced", aggregated, func(w *world) ([]string, []string) {
			w.endpoints["default/web"] = notReady()
			return []string{"default/web"}, nil
		}, paths{}, nil},
		{"and goes with the last", func(w *world) {
			aggregated(w)
			w.endpoints["default/web"] = notReady()
		}, func(w *world) ([]string, []string) {
			w.endpoints["default/api"] = notReady()
			return []string{"default/api"}, nil
		}, paths{}, []string{"192.0.2.0/24"}},
		{"both members go in one run", aggregated, func(w *world) ([]string, []string) {
			w.endpoints = nil
			return []string{"default/web", "default/api"}, nil
		}, paths{}, []string{"192.0.2.0/24"}},
		{"aggregate of two pools: losing one pool's last member changes its attributes", twoPools, func(w *world) ([]string, []string) {
			w.endpoints["default/api"] = notReady()
			return []string{"default/api"}, nil
		}, paths{"192.0.2.0/24": {"r1": "c=65000:1"}}, nil},
		{"aggregate of two pools: and gaining it back merges them again", func(w *world) {
			twoPools(w)
			w.endpoints["default/api"] = notReady()
		}, func(w *world) ([]string, []string) {
			w.endpoints["default/api"] = []*discoveryv1.EndpointSlice{slice(readyThere)}
			return []string{"default/api"}, nil
		}, paths{"192.0.2.0/24": {"r1": "c=65000:1,65000:2"}}, nil},
		{"deleted pool: its allocation's recorded labels leave the selector: withdrawn", deletedPublic, func(w *world) ([]string, []string) {
			w.allocs[0] = withPoolLabels(w.allocs[0].DeepCopy(), map[string]string{"tier": "internal"})
			return nil, []string{v1alpha1.AllocationName("192.0.2.10")}
		}, paths{}, []string{"192.0.2.10/32"}},
		{"deleted pool: labels recorded after it went: announced", func(w *world) {
			deletedPublic(w)
			w.allocs[0].Spec.PoolLabels = nil
		}, func(w *world) ([]string, []string) {
			w.allocs[0] = withPoolLabels(w.allocs[0].DeepCopy(), map[string]string{"tier": "public"})
			return nil, []string{v1alpha1.AllocationName("192.0.2.10")}
		}, paths{"192.0.2.10/32": {"r1": ""}}, nil},
		{"deleted pool: allocations recorded with other labels are told apart", func(w *world) {
			deletedPublic(w)
			w.advs = append(w.advs, adv("b", poolSelector(map[string]string{"tier": "internal"}), communities("65000:2")))
		}, func(w *world) ([]string, []string) {
			api(w)
			w.allocs = append(w.allocs, withPoolLabels(alloc("192.0.2.11", "p1", "default/api"), map[string]string{"tier": "internal"}))
			return nil, []string{v1alpha1.AllocationName("192.0.2.11")}
		}, paths{"192.0.2.11/32": {"r1": "c=65000:2"}}, nil},
		{"drain over: nothing is announced", func(w *world) {
			w.node.Labels = map[string]string{corev1.LabelNodeExcludeBalancers: ""}
			w.drainAt = t0.Add(-time.Hour)
		}, func(w *world) ([]string, []string) {
			api(w)
			w.allocs = append(w.allocs, alloc("192.0.2.11", "p1", "default/api"))
			return nil, []string{v1alpha1.AllocationName("192.0.2.11")}
		}, paths{}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := base()
			if tc.start != nil {
				tc.start(&w)
			}
			tbl := Compute(w.inputs()).table
			services, allocations := tc.change(&w)
			in := w.inputs()
			update(tbl, in, mapSource{services: in.Services, slices: in.EndpointSlices, nodeName: nodeNameOf(in.Node)}, services, allocations)
			up, wd := changesSummary(tbl.flush())
			if !reflect.DeepEqual(up, tc.upsert) || !slices.Equal(wd, tc.withdraw) {
				t.Errorf("upsert %v withdraw %v, want upsert %v withdraw %v", up, wd, tc.upsert, tc.withdraw)
			}
			// The table now holds what a full computation gives.
			if got, want := summary(Desired{State: stateOf(tbl.announcedPaths())}), summary(Compute(in)); !reflect.DeepEqual(got, want) {
				t.Errorf("table after the update %v, full Compute %v", got, want)
			}
			if c := tbl.flush(); len(c.upsert)+len(c.withdraw) > 0 {
				t.Errorf("a second flush returned %v", c)
			}
		})
	}
}

// An allocation the table has never seen, set to nothing, leaves no trace.
func TestTableForgetsUnknownAllocation(t *testing.T) {
	tbl := Compute(base().inputs()).table
	tbl.set("unknown", nil, mapSource{nodeName: thisNode})
	if c := tbl.flush(); len(c.upsert)+len(c.withdraw) > 0 || tbl.size() != 1 || len(tbl.members) != 1 {
		t.Errorf("changes %v, size %d, members %d", c, tbl.size(), len(tbl.members))
	}
}
