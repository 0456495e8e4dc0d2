package ipam

import (
	"maps"
	"slices"
	"testing"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/internal/patch"
)

func labelsOf(kv ...string) map[string]string {
	if len(kv) == 0 {
		return nil
	}
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func withLabels(a *v1alpha1.IPAllocation, kv ...string) *v1alpha1.IPAllocation {
	a.Spec.PoolLabels = labelsOf(kv...)
	return a
}

func TestWithPoolLabels(t *testing.T) {
	for _, tc := range []struct {
		name      string
		have      map[string]string
		pool      map[string]string
		want      map[string]string
		unchanged bool
	}{
		{"in step", labelsOf("tier", "public"), labelsOf("tier", "public"), nil, true},
		{"neither has any", nil, nil, nil, true},
		{"an empty map is no labels", map[string]string{}, nil, nil, true},
		{"no labels yet (made before the field existed): filled in", nil, labelsOf("tier", "public"), labelsOf("tier", "public"), false},
		{"a label changed", labelsOf("tier", "public"), labelsOf("tier", "internal"), labelsOf("tier", "internal"), false},
		{"a label added", labelsOf("tier", "public"), labelsOf("tier", "public", "zone", "a"), labelsOf("tier", "public", "zone", "a"), false},
		{"the pool lost its labels", labelsOf("tier", "public"), map[string]string{}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := withLabels(allocObj("192.0.2.0", "u", "7", "a"))
			in.Spec.PoolLabels = tc.have
			before := in.DeepCopy()
			got := WithPoolLabels(in, tc.pool)
			if tc.unchanged != (got == nil) {
				t.Fatalf("got %v, unchanged %v", got, tc.unchanged)
			}
			if got == nil {
				return
			}
			if !maps.Equal(got.Spec.PoolLabels, tc.want) || (tc.want == nil) != (got.Spec.PoolLabels == nil) {
				t.Fatalf("labels %v, want %v", got.Spec.PoolLabels, tc.want)
			}
			got.Spec.PoolLabels = labelsOf("mutated", "yes")
			if !maps.Equal(in.Spec.PoolLabels, before.Spec.PoolLabels) || !slices.Equal(in.Spec.Services, before.Spec.Services) {
				t.Fatal("the input (a cached object) was changed")
			}
			if tc.pool != nil && tc.pool["mutated"] != "" {
				t.Fatal("the copy shares the pool's map")
			}
		})
	}
}

// The pool reconciler's write names spec.poolLabels and the
// resourceVersion it was computed from, nothing else: it can neither
// replace a holder nor apply to a version it did not see.
func TestPoolLabelsPatchNamesOnlyThem(t *testing.T) {
	for _, tc := range []struct {
		name       string
		have, pool map[string]string
		want       string
	}{
		{"filled in", nil, labelsOf("tier", "public"),
			`{"metadata":{"resourceVersion":"7"},"spec":{"poolLabels":{"tier":"public"}}}`},
		{"changed: removed keys are nulled", labelsOf("tier", "public", "zone", "a"), labelsOf("tier", "internal"),
			`{"metadata":{"resourceVersion":"7"},"spec":{"poolLabels":{"tier":"internal","zone":null}}}`},
		{"all gone", labelsOf("tier", "public"), nil,
			`{"metadata":{"resourceVersion":"7"},"spec":{"poolLabels":null}}`},
	} {
		before := allocObj("192.0.2.0", "u", "7", "a", "b")
		before.Spec.SharingKey = "k"
		before.Spec.PoolLabels = tc.have
		after := WithPoolLabels(before, tc.pool)
		b, err := patch.MergeFrom(before, patch.Optimistic).Data(after)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, b, tc.want)
		}
	}
}

// New IPAllocations carry their pool's labels as the pool has them when
// the object is created; patches of holders never carry them.
func TestCreatedCarriesPoolLabels(t *testing.T) {
	p := mkPool("p", 0, "192.0.2.0/30")
	p.Labels = labelsOf("tier", "public")
	w := newWorld(t, p)
	d := w.s.Decide(w.input("a"), w.lookup)
	wr := w.s.snapshot(d.Acquire[0])
	obj := wr.created()
	if !maps.Equal(obj.Spec.PoolLabels, p.Labels) {
		t.Fatalf("created with %v, want the pool's %v", obj.Spec.PoolLabels, p.Labels)
	}
	if wr.object().Spec.PoolLabels != nil || wr.base().Spec.PoolLabels != nil {
		t.Fatal("a holder patch must not name the pool labels")
	}
	obj.Spec.PoolLabels["decoded"] = "into the object" // as the create's answer is
	if _, ok := w.s.Pool("p").Labels["decoded"]; ok {
		t.Fatal("the object shares the pool view's map")
	}

	p.Labels = labelsOf("tier", "internal")
	w.setPools(p)
	d = w.s.Decide(w.input("b"), w.lookup)
	if got := w.s.snapshot(d.Acquire[0]).created().Spec.PoolLabels; !maps.Equal(got, p.Labels) {
		t.Fatalf("after a relabel: %v, want %v", got, p.Labels)
	}
	w.s.wrote(d.Acquire[0], allocObj(d.Acquire[0].addr.String(), "u", "3", "b"))
	if got := w.s.snapshot(d.Acquire[0]).labels; got != nil {
		t.Fatalf("an existing object's write carries labels %v", got)
	}
}

func TestPoolLabelsBehind(t *testing.T) {
	public := mkPool("public", 0, "192.0.2.0/30")
	public.Labels = labelsOf("tier", "public")
	plain := mkPool("plain", 0, "192.0.2.4/30")
	w := newWorld(t, public, plain)
	for _, tc := range []struct {
		name string
		obj  *v1alpha1.IPAllocation
		want bool
	}{
		{"in step", withLabels(allocObj("192.0.2.0", "u", "1", "a"), "tier", "public"), false},
		{"none yet", allocObj("192.0.2.0", "u", "1", "a"), true},
		{"old labels", withLabels(allocObj("192.0.2.0", "u", "1", "a"), "tier", "internal"), true},
		{"a pool without labels", allocObj("192.0.2.4", "u", "1", "a"), false},
		{"a pool without labels, stale ones", withLabels(allocObj("192.0.2.4", "u", "1", "a"), "tier", "public"), true},
		{"the pool is gone: last known labels stay", withLabels(allocObj("192.0.2.8", "u", "1", "a"), "tier", "public"), false},
	} {
		switch tc.obj.Spec.Address {
		case "192.0.2.4":
			tc.obj.Spec.Pool = "plain"
		case "192.0.2.8":
			tc.obj.Spec.Pool = "gone"
		default:
			tc.obj.Spec.Pool = "public"
		}
		if got := w.s.PoolLabelsBehind(tc.obj); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A write of the pool labels between this controller's decision and its
// write of the object costs the decision nothing: the write conflicts, the
// object read back still names the holders the decision was based on, so
// the proposal stands (no Service loses its address or is decided again).
// Any other change still makes memory take the object's word.
func TestRefreshAfterPoolLabelsWrite(t *testing.T) {
	for _, tc := range []struct {
		name      string
		obj       *v1alpha1.IPAllocation
		reconcile []string
		holders   []string // what the record proposes after
	}{
		{"only the pool labels changed: the release stands",
			withLabels(allocObj("192.0.2.0", "u", "6", "a"), "tier", "public"), nil, nil},
		{"another object of that name: its word",
			withLabels(allocObj("192.0.2.0", "other", "6", "a"), "tier", "public"), []string{"a"}, []string{"a"}},
		{"another holder: its word", allocObj("192.0.2.0", "u", "6", "b"), []string{"b"}, []string{"b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, mkPool("p", 0, "192.0.2.0/30"))
			d := w.s.Decide(w.input("a"), w.lookup)
			rec := d.Acquire[0]
			w.s.wrote(rec, allocObj("192.0.2.0", "u", "5", "a"))
			// a goes: memory proposes the release (delete at version 5).
			delete(w.svcs, svcKey{Namespace: "ns", Name: "a"})
			if d := w.s.Decide(ServiceInput{Key: svcKey{Namespace: "ns", Name: "a"}}, w.lookup); len(d.Release) != 1 {
				t.Fatalf("release %v", d.Release)
			}
			keys, lost := w.s.refresh(rec, tc.obj)
			if lost || !slices.Equal(names(keys), tc.reconcile) {
				t.Fatalf("lost %v reconcile %v, want false %v", lost, names(keys), tc.reconcile)
			}
			if got := w.holders("192.0.2.0"); !slices.Equal(got, tc.holders) {
				t.Fatalf("holders %v, want %v", got, tc.holders)
			}
			if wr := w.s.snapshot(rec); wr.rv != "6" || wr.upToDate != (len(tc.holders) > 0) {
				t.Fatalf("record %+v: want version 6 known", wr)
			}
		})
	}
}
