package l2election

import (
	"net/netip"
	"reflect"
	"testing"
)

var lan = netip.MustParsePrefix("198.51.100.7/24")
var lan6 = netip.MustParsePrefix("2001:db8:100::7/64")

func up(links ...Link) Node { return Node{Ready: true, Alive: true, Links: links} }

func eth0() Link { return Link{Name: "eth0", Prefixes: []netip.Prefix{lan, lan6}} }

func addr(s string, nodes ...string) Address {
	return Address{IP: netip.MustParseAddr(s), Selections: []Selection{{Nodes: nodes}}}
}

// winner is the node with the highest weight for key among names.
func winner(key string, names ...string) string {
	best := ""
	for _, n := range names {
		if best == "" || Weight(key, n) > Weight(key, best) {
			best = n
		}
	}
	return best
}

func TestElectOne(t *testing.T) {
	const ip = "198.51.100.200"
	all := []string{"a", "b", "c"}
	three := func(mut func(map[string]Node)) map[string]Node {
		m := map[string]Node{"a": up(eth0()), "b": up(eth0()), "c": up(eth0())}
		if mut != nil {
			mut(m)
		}
		return m
	}
	top := winner(ip, all...)
	others := func(but string) []string {
		var out []string
		for _, n := range all {
			if n != but {
				out = append(out, n)
			}
		}
		return out
	}
	second := winner(ip, others(top)...)
	tests := []struct {
		name  string
		nodes map[string]Node
		addr  Address
		want  Owner
	}{
		{"highest weight wins", three(nil), addr(ip, all...), Owner{Node: top, Interfaces: []string{"eth0"}}},
		{"not Ready: next heaviest", three(func(m map[string]Node) { n := m[top]; n.Ready = false; m[top] = n }), addr(ip, all...), Owner{Node: second, Interfaces: []string{"eth0"}}},
		{"excluded: next heaviest", three(func(m map[string]Node) { n := m[top]; n.Excluded = true; m[top] = n }), addr(ip, all...), Owner{Node: second, Interfaces: []string{"eth0"}}},
		{"speaker dead: next heaviest", three(func(m map[string]Node) { n := m[top]; n.Alive = false; m[top] = n }), addr(ip, all...), Owner{Node: second, Interfaces: []string{"eth0"}}},
		{"link down: next heaviest", three(func(m map[string]Node) { n := m[top]; n.Links = nil; m[top] = n }), addr(ip, all...), Owner{Node: second, Interfaces: []string{"eth0"}}},
		{"link on another subnet: not eligible", three(func(m map[string]Node) {
			m[top] = up(Link{Name: "eth0", Prefixes: []netip.Prefix{netip.MustParsePrefix("203.0.113.7/24")}})
		}), addr(ip, all...), Owner{Node: second, Interfaces: []string{"eth0"}}},
		{"not selected: next heaviest", three(nil), addr(ip, others(top)...), Owner{Node: second, Interfaces: []string{"eth0"}}},
		{"unknown node is not eligible", three(nil), addr(ip, "zz"), Owner{}},
		{"nobody eligible", three(func(m map[string]Node) {
			for k, n := range m {
				n.Alive = false
				m[k] = n
			}
		}), addr(ip, all...), Owner{}},
		{"ETP Local: only endpoint nodes", three(nil), func() Address {
			a := addr(ip, all...)
			a.EndpointNodes = others(top)[:1]
			return a
		}(), Owner{Node: others(top)[0], Interfaces: []string{"eth0"}}},
		{"ETP Local without endpoints: nobody", three(nil), func() Address {
			a := addr(ip, all...)
			a.EndpointNodes = []string{}
			return a
		}(), Owner{}},
		{"named interfaces win over the subnet, only the up ones", three(func(m map[string]Node) {
			for k := range m {
				m[k] = up(eth0(), Link{Name: "bond0"}, Link{Name: "eth1"})
			}
		}), func() Address {
			a := addr(ip, all...)
			a.Selections[0].Interfaces = []string{"eth1", "bond0", "eth9"}
			return a
		}(), Owner{Node: top, Interfaces: []string{"bond0", "eth1"}}},
		{"named interface down: not eligible", three(func(m map[string]Node) { m[top] = up(eth0()) }), func() Address {
			a := addr(ip, all...)
			a.Selections[0].Interfaces = []string{"eth0"}
			a.Selections = append(a.Selections, Selection{Nodes: []string{top}, Interfaces: []string{"bond0"}})
			return a
		}(), Owner{Node: top, Interfaces: []string{"eth0"}}},
		{"two advertisements: union of their interfaces on the owner", three(func(m map[string]Node) {
			for k := range m {
				m[k] = up(eth0(), Link{Name: "bond0"})
			}
		}), func() Address {
			a := addr(ip, all...)
			a.Selections = append(a.Selections, Selection{Nodes: all, Interfaces: []string{"bond0"}})
			return a
		}(), Owner{Node: top, Interfaces: []string{"bond0", "eth0"}}},
		{"IPv6 by subnet", three(nil), addr("2001:db8:100::200", all...), Owner{Node: winner("2001:db8:100::200", all...), Interfaces: []string{"eth0"}}},
		{"key decides, not the address", three(nil), func() Address {
			a := addr(ip, all...)
			a.Key = "default/web"
			return a
		}(), Owner{Node: winner("default/web", all...), Interfaces: []string{"eth0"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ElectOne(tc.nodes, &tc.addr)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDualStackSameKeySameOwner(t *testing.T) {
	nodes := map[string]Node{}
	var names []string
	for _, n := range []string{"n1", "n2", "n3", "n4", "n5"} {
		nodes[n] = up(eth0())
		names = append(names, n)
	}
	for i := 0; i < 50; i++ {
		key := "ns/svc-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		v4 := addr("198.51.100.200", names...)
		v6 := addr("2001:db8:100::200", names...)
		v4.Key, v6.Key = key, key
		o := Elect(nodes, []Address{v4, v6})
		if o[v4.IP].Node != o[v6.IP].Node {
			t.Fatalf("key %s: IPv4 on %s, IPv6 on %s", key, o[v4.IP].Node, o[v6.IP].Node)
		}
	}
}

func TestWeightIsFixed(t *testing.T) {
	// Every speaker, of every version and architecture, must compute the
	// same weights: pin a few so a change of the hash is a visible break.
	for _, tc := range []struct {
		key, node string
		want      uint64
	}{
		{"198.51.100.200", "node-1", 0x89afe3d65c86d33d},
		{"2001:db8:100::200", "node-2", 0x73bb54ab0003b386},
		{"default/web", "node-3", 0x18dedf9fd13be16e},
	} {
		if got := Weight(tc.key, tc.node); got != tc.want {
			t.Fatalf("Weight(%q,%q)=%#x want %#x", tc.key, tc.node, got, tc.want)
		}
	}
	if Weight("a", "bc") == Weight("ab", "c") {
		t.Fatal("the separator must keep (a, bc) and (ab, c) apart")
	}
}
