package allocator

import (
	"fmt"
	"slices"
)

// runsOf returns the runs of s in order, without tree links.
func runsOf(s *runSet) []run {
	var out []run
	s.ascend(u128{}, func(r *run) bool {
		out = append(out, run{start: r.start, end: r.end, owner: r.owner})
		return true
	})
	return out
}

// checkTree verifies the treap: keys in order, heap-ordered priorities,
// disjoint runs, adjacent runs only if owners differ, and the run count.
func checkTree(s *runSet) error {
	n := 0
	var prev *run
	var walk func(t *run) error
	walk = func(t *run) error {
		if t == nil {
			return nil
		}
		for _, c := range []*run{t.left, t.right} {
			if c != nil && c.prio > t.prio {
				return fmt.Errorf("heap order broken at %v", t.start)
			}
		}
		if err := walk(t.left); err != nil {
			return err
		}
		n++
		if t.end.less(t.start) {
			return fmt.Errorf("run %v-%v reversed", t.start, t.end)
		}
		if prev != nil {
			if !prev.end.less(t.start) {
				return fmt.Errorf("runs %v-%v and %v-%v out of order or overlapping", prev.start, prev.end, t.start, t.end)
			}
			if prev.end.inc() == t.start && prev.owner == t.owner {
				return fmt.Errorf("adjacent runs %v-%v and %v-%v not merged", prev.start, prev.end, t.start, t.end)
			}
		}
		prev = t
		return walk(t.right)
	}
	if err := walk(s.root); err != nil {
		return err
	}
	if n != s.runs {
		return fmt.Errorf("run count %d, tree has %d", s.runs, n)
	}
	return nil
}

// check verifies every internal invariant of the allocator against a
// recomputation from the global held set.
func (a *Allocator) check() error {
	held := map[*poolRec][2]uint64{}
	for f := range a.held {
		if err := checkTree(&a.held[f]); err != nil {
			return fmt.Errorf("held[%d]: %w", f, err)
		}
		for _, r := range runsOf(&a.held[f]) {
			if r.owner == nil || a.pools[r.owner.name] != r.owner {
				return fmt.Errorf("run %v-%v has an unknown owner", r.start, r.end)
			}
			c := held[r.owner]
			c[f] += r.end.sub(r.start).lo + 1
			held[r.owner] = c
		}
	}
	for name, rec := range a.pools {
		if rec.name != name {
			return fmt.Errorf("pool %q recorded as %q", name, rec.name)
		}
		if rec.held != held[rec] {
			return fmt.Errorf("pool %q: held %v, runs say %v", name, rec.held, held[rec])
		}
		if !rec.defined && (rec.held == [2]uint64{} || rec.fams != [2]*famState{}) {
			return fmt.Errorf("undefined pool %q kept with held %v fams %v", name, rec.held, rec.fams)
		}
		for f, fs := range rec.fams {
			if fs == nil {
				continue
			}
			if err := checkTree(&fs.taken); err != nil {
				return fmt.Errorf("pool %q fam %d taken: %w", name, f, err)
			}
			fresh := newFamState(famIdx(f), fs.buggy, fs.merged)
			a.fillTaken(rec, fresh)
			if got, want := runsOf(&fs.taken), runsOf(&fresh.taken); !slices.Equal(got, want) {
				return fmt.Errorf("pool %q fam %d: taken %v, recomputed %v", name, f, got, want)
			}
			if fs.takenN != fresh.takenN || fs.mine != fresh.mine || fs.last != fresh.last {
				return fmt.Errorf("pool %q fam %d: counts taken=%d mine=%d, recomputed %d %d",
					name, f, fs.takenN, fs.mine, fresh.takenN, fresh.mine)
			}
		}
	}
	old := a.index
	a.rebuildIndex()
	for f := range old {
		if !slices.EqualFunc(old[f], a.index[f], func(x, y segment) bool {
			return x.first == y.first && x.last == y.last && slices.Equal(x.pools, y.pools)
		}) {
			return fmt.Errorf("index[%d] stale", f)
		}
	}
	return nil
}
