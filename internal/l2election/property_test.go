package l2election

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// world is a random cluster: nodes with random health and links, addresses
// with random selections and endpoint restrictions.
type world struct {
	nodes map[string]Node
	names []string
	addrs []Address
}

func randomWorld(r *rand.Rand, nNodes, nAddrs int) world {
	w := world{nodes: map[string]Node{}}
	for i := 0; i < nNodes; i++ {
		name := fmt.Sprintf("node-%d", i)
		n := Node{Ready: r.IntN(8) != 0, Excluded: r.IntN(10) == 0, Alive: r.IntN(8) != 0}
		if r.IntN(6) != 0 {
			n.Links = append(n.Links, eth0())
		}
		if r.IntN(2) == 0 {
			n.Links = append(n.Links, Link{Name: "bond0"})
		}
		w.nodes[name] = n
		w.names = append(w.names, name)
	}
	for i := 0; i < nAddrs; i++ {
		ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
		if i%2 == 1 {
			ip = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00, 14: byte(i >> 8), 15: byte(i)})
		}
		a := Address{IP: ip}
		for s := 0; s <= r.IntN(2); s++ {
			var sel Selection
			for _, n := range w.names {
				if r.IntN(4) != 0 {
					sel.Nodes = append(sel.Nodes, n)
				}
			}
			if r.IntN(4) == 0 {
				sel.Interfaces = []string{"bond0"}
			}
			a.Selections = append(a.Selections, sel)
		}
		if r.IntN(5) == 0 {
			a.EndpointNodes = []string{}
			for _, n := range w.names {
				if r.IntN(3) == 0 {
					a.EndpointNodes = append(a.EndpointNodes, n)
				}
			}
		}
		w.addrs = append(w.addrs, a)
	}
	return w
}

// TestPropertyOneEligibleOwner: every address has exactly one owner, it is
// eligible, and no node is left without an owner while one is eligible.
func TestPropertyOneEligibleOwner(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		w := randomWorld(r, 1+r.IntN(12), 1+r.IntN(60))
		got := Elect(w.nodes, w.addrs)
		if len(got) != len(w.addrs) {
			t.Fatalf("round %d: %d owners for %d addresses", round, len(got), len(w.addrs))
		}
		for i := range w.addrs {
			a := &w.addrs[i]
			o := got[a.IP]
			var eligible []string
			for _, n := range w.names {
				if Eligible(w.nodes, a, n) {
					eligible = append(eligible, n)
				}
			}
			switch {
			case len(eligible) == 0 && o.Node != "":
				t.Fatalf("round %d %s: owner %s but no node is eligible", round, a.IP, o.Node)
			case len(eligible) > 0 && !Eligible(w.nodes, a, o.Node):
				t.Fatalf("round %d %s: owner %q is not among eligible %v", round, a.IP, o.Node, eligible)
			case len(eligible) > 0 && o.Node != winner(keyOf(a), eligible...):
				t.Fatalf("round %d %s: owner %s, want the heaviest of %v", round, a.IP, o.Node, eligible)
			}
			// Same inputs, same answer (what lets every speaker agree).
			if again := ElectOne(w.nodes, a); again.Node != o.Node {
				t.Fatalf("round %d %s: not deterministic: %s then %s", round, a.IP, o.Node, again.Node)
			}
		}
	}
}

// TestPropertyRemovingANodeMovesOnlyItsAddresses: a node failing (any way:
// dead, not Ready, link down) moves the addresses it owned and nothing
// else.
func TestPropertyRemovingANodeMovesOnlyItsAddresses(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	fail := []func(Node) Node{
		func(n Node) Node { n.Alive = false; return n },
		func(n Node) Node { n.Ready = false; return n },
		func(n Node) Node { n.Links = nil; return n },
		func(n Node) Node { n.Excluded = true; return n },
	}
	for round := 0; round < 300; round++ {
		w := randomWorld(r, 2+r.IntN(10), 1+r.IntN(80))
		before := Elect(w.nodes, w.addrs)
		victim := w.names[r.IntN(len(w.names))]
		w.nodes[victim] = fail[round%len(fail)](w.nodes[victim])
		after := Elect(w.nodes, w.addrs)
		for ip, o := range before {
			if o.Node != victim && after[ip].Node != o.Node {
				t.Fatalf("round %d: %s moved from %s to %s though only %s failed", round, ip, o.Node, after[ip].Node, victim)
			}
			if after[ip].Node == victim {
				t.Fatalf("round %d: %s still on failed %s", round, ip, victim)
			}
		}
	}
}

// TestPropertyAddingANodeMovesAtMostItsShare: a node joining takes only
// addresses (never moves one between two other nodes), and about 1/n of
// them.
func TestPropertyAddingANodeMovesAtMostItsShare(t *testing.T) {
	const nAddrs = 4000
	for _, n := range []int{2, 3, 5, 10, 30} {
		nodes := map[string]Node{}
		var names []string
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("worker-%d", i)
			nodes[name] = up(eth0())
			names = append(names, name)
		}
		addrs := make([]Address, nAddrs)
		for i := range addrs {
			addrs[i] = Address{IP: netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00, 14: byte(i >> 8), 15: byte(i)}),
				Selections: []Selection{{Nodes: append(append([]string(nil), names...), "newcomer")}}}
		}
		before := Elect(nodes, addrs)
		nodes["newcomer"] = up(eth0())
		after := Elect(nodes, addrs)
		moved := 0
		for ip, o := range before {
			if after[ip].Node == o.Node {
				continue
			}
			if after[ip].Node != "newcomer" {
				t.Fatalf("n=%d: %s moved from %s to %s, not to the new node", n, ip, o.Node, after[ip].Node)
			}
			moved++
		}
		share := float64(nAddrs) / float64(n+1)
		if float64(moved) > 1.25*share || float64(moved) < 0.75*share {
			t.Fatalf("n=%d: the new node took %d addresses, want about %.0f", n, moved, share)
		}
		t.Logf("n=%d -> %d nodes: %d of %d addresses moved (ideal %.0f)", n, n+1, moved, nAddrs, share)
	}
}

// TestPropertyEvenSpread: with n equal nodes every node owns close to 1/n
// of the addresses.
func TestPropertyEvenSpread(t *testing.T) {
	for _, n := range []int{3, 7, 20} {
		nodes := map[string]Node{}
		var names []string
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("node-%c", 'a'+i)
			nodes[name] = up(eth0())
			names = append(names, name)
		}
		const nAddrs = 6000
		addrs := make([]Address, nAddrs)
		for i := range addrs {
			addrs[i] = Address{IP: netip.AddrFrom4([4]byte{198, 51, byte(100 + i/256), byte(i)}), Selections: []Selection{{Nodes: names, Interfaces: []string{"eth0"}}}}
		}
		count := map[string]int{}
		for _, o := range Elect(nodes, addrs) {
			count[o.Node]++
		}
		share := float64(nAddrs) / float64(n)
		for _, name := range names {
			if c := float64(count[name]); c < 0.8*share || c > 1.2*share {
				t.Fatalf("n=%d: %s owns %v addresses, want about %.0f (%v)", n, name, c, share, count)
			}
		}
		t.Logf("n=%d: %v", n, count)
	}
	// The three nodes of the lab with a handful of Services: each gets some.
	nodes := map[string]Node{"node-1": up(eth0()), "node-2": up(eth0()), "node-3": up(eth0())}
	count := map[string]int{}
	for i := 0; i < 12; i++ {
		a := addr(fmt.Sprintf("198.51.100.%d", 200+i), "node-1", "node-2", "node-3")
		count[ElectOne(nodes, &a).Node]++
	}
	if len(count) != 3 {
		t.Fatalf("12 addresses over 3 nodes: %v", count)
	}
}
