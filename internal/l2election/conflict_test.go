package l2election

import (
	"fmt"
	"testing"
)

func TestYieldsExactlyOneOfTwo(t *testing.T) {
	for i := 0; i < 500; i++ {
		key := fmt.Sprintf("ns/svc-%d", i)
		a, b := fmt.Sprintf("node-%d", i%7), fmt.Sprintf("node-%d", 7+i%5)
		for _, st := range [][2]bool{{false, false}, {true, true}, {true, false}, {false, true}} {
			ya := Yields(key, a, st[0], Claim{Node: b, APIStale: st[1]})
			yb := Yields(key, b, st[1], Claim{Node: a, APIStale: st[0]})
			if ya == yb {
				t.Fatalf("key %s, %s stale=%v, %s stale=%v: both yield=%v", key, a, st[0], b, st[1], ya)
			}
			if st[0] != st[1] && ya != st[0] {
				t.Fatalf("key %s: the node with the stale view must yield", key)
			}
			if st[0] == st[1] && ya != (Weight(key, a) < Weight(key, b)) {
				t.Fatalf("key %s: with equal views the lighter node must yield", key)
			}
		}
	}
	if Yields("k", "a", true, Claim{Node: "a"}) {
		t.Fatal("a node never yields to itself")
	}
}
