package allocator

// runSet is an ordered set of disjoint runs [start, end] of 128-bit keys,
// kept in a treap keyed by start. Adjacent runs with the same owner are
// always merged, so memory grows with the number of runs, not with the
// number of keys: a pool filled in order is a single run.
//
// Every operation is O(log runs) expected. Priorities come from a private
// xorshift generator, so the tree shape is reproducible and callers cannot
// steer it into a degenerate shape.
type runSet struct {
	root  *run
	rng   uint64
	runs  int
	spare *run // recycled nodes, linked by right; release/allocate churn then allocates nothing
	nfree int
}

// maxSpare bounds the recycled nodes kept, so memory still follows the
// number of runs.
const maxSpare = 64

func (s *runSet) newRun(a, b u128, owner *poolRec) *run {
	n := s.spare
	if n == nil {
		n = new(run)
	} else {
		s.spare = n.right
		s.nfree--
	}
	*n = run{start: a, end: b, owner: owner, prio: s.nextPrio()}
	return n
}

func (s *runSet) recycle(n *run) {
	if s.nfree >= maxSpare {
		return
	}
	*n = run{right: s.spare}
	s.spare = n
	s.nfree++
}

// run is one treap node. Its size (64 bytes) is the per-run memory cost.
type run struct {
	start, end  u128
	owner       *poolRec // nil in sets that do not track owners
	prio        uint64
	left, right *run
}

func (s *runSet) nextPrio() uint64 {
	if s.rng == 0 {
		s.rng = 0x9e3779b97f4a7c15
	}
	x := s.rng
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	s.rng = x
	return x * 0x2545f4914f6cdd1d
}

// floor returns the run with the greatest start <= x, or nil.
func (s *runSet) floor(x u128) *run {
	var best *run
	for t := s.root; t != nil; {
		if x.less(t.start) {
			t = t.left
		} else {
			best = t
			t = t.right
		}
	}
	return best
}

// find returns the run containing x, or nil.
func (s *runSet) find(x u128) *run {
	if r := s.floor(x); r != nil && !r.end.less(x) {
		return r
	}
	return nil
}

// addRun adds the keys [a, b], which must not intersect the set, merging
// with neighbours of the same owner.
func (s *runSet) addRun(a, b u128, owner *poolRec) {
	var left, right *run
	if !a.isZero() {
		if l := s.floor(a.dec()); l != nil && l.end == a.dec() && l.owner == owner {
			left = l
		}
	}
	if !b.isMax() {
		if r := s.floor(b.inc()); r != nil && r.start == b.inc() && r.owner == owner {
			right = r
		}
	}
	switch {
	case left != nil && right != nil:
		left.end = right.end
		s.root = deleteRun(s.root, right.start)
		s.runs--
		s.recycle(right)
	case left != nil:
		left.end = b
	case right != nil:
		// Moving the key down keeps the order: nothing lies in [a, right.start).
		right.start = a
	default:
		s.root = insertRun(s.root, s.newRun(a, b, owner))
		s.runs++
	}
}

// removeOne removes the key x, which must be in the set, and returns the
// owner of the run it was in.
func (s *runSet) removeOne(x u128) *poolRec {
	r := s.find(x)
	if r == nil {
		return nil
	}
	owner := r.owner
	switch {
	case r.start == r.end:
		s.root = deleteRun(s.root, r.start)
		s.runs--
		s.recycle(r)
	case x == r.start:
		r.start = x.inc()
	case x == r.end:
		r.end = x.dec()
	default:
		tail := s.newRun(x.inc(), r.end, owner)
		r.end = x.dec()
		s.root = insertRun(s.root, tail)
		s.runs++
	}
	return owner
}

// ascend calls fn for every run that ends at or after from, in order, until
// fn returns false.
func (s *runSet) ascend(from u128, fn func(*run) bool) {
	ascendRuns(s.root, from, fn)
}

func ascendRuns(t *run, from u128, fn func(*run) bool) bool {
	for t != nil {
		if t.end.less(from) {
			// Runs are disjoint and sorted: the whole left subtree ends before t.
			t = t.right
			continue
		}
		if !ascendRuns(t.left, from, fn) || !fn(t) {
			return false
		}
		t = t.right
	}
	return true
}

func insertRun(t, n *run) *run {
	if t == nil {
		return n
	}
	if n.start.less(t.start) {
		t.left = insertRun(t.left, n)
		if t.left.prio > t.prio {
			l := t.left
			t.left, l.right = l.right, t
			return l
		}
	} else {
		t.right = insertRun(t.right, n)
		if t.right.prio > t.prio {
			r := t.right
			t.right, r.left = r.left, t
			return r
		}
	}
	return t
}

func deleteRun(t *run, start u128) *run {
	if t == nil {
		return nil
	}
	switch start.cmp(t.start) {
	case -1:
		t.left = deleteRun(t.left, start)
	case 1:
		t.right = deleteRun(t.right, start)
	default:
		return joinRuns(t.left, t.right)
	}
	return t
}

// joinRuns merges two treaps where every key of l is below every key of r.
func joinRuns(l, r *run) *run {
	switch {
	case l == nil:
		return r
	case r == nil:
		return l
	case l.prio > r.prio:
		l.right = joinRuns(l.right, r)
		return l
	default:
		r.left = joinRuns(l, r.left)
		return r
	}
}
