package metallb

import (
	"bytes"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    string
		pools int
		peers int
		skip  string // a substring of Skipped
		err   string
	}{
		{name: "empty input"},
		{name: "empty documents", in: "---\n---\n"},
		{name: "two documents", in: "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec: {addresses: [192.0.2.0/28]}\n---\n" +
			"apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: b}\nspec: {myASN: 1}\n", pools: 1, peers: 1},
		{name: "kubectl List", in: "apiVersion: v1\nkind: List\nitems:\n- apiVersion: metallb.io/v1beta1\n  kind: IPAddressPool\n  metadata: {name: a}\n  spec: {addresses: []}\n", pools: 1},
		{name: "typed list without item kinds", in: `{"apiVersion":"metallb.io/v1beta1","kind":"IPAddressPoolList","items":[{"metadata":{"name":"a"},"spec":{"addresses":[]}}]}`, pools: 1},
		{name: "JSON", in: `{"apiVersion":"metallb.io/v1beta1","kind":"IPAddressPool","metadata":{"name":"a"},"spec":{"addresses":["192.0.2.0/28"]}}`, pools: 1},
		{name: "unknown field reported", in: "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec: {addresses: [], shiny: true}\n",
			pools: 1, skip: `unknown field "spec.shiny"`},
		{name: "status kinds skipped", in: "apiVersion: metallb.io/v1beta1\nkind: ServiceBGPStatus\nmetadata: {name: a}\n", skip: "not configuration bgplb converts"},
		{name: "other kinds skipped", in: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: ns}\n", skip: "apps/v1 Deployment ns/d is not a MetalLB object"},
		{name: "wrong type", in: "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: b}\nspec: {myASN: many}\n", err: "BGPPeer b"},
		{name: "list without items", in: "apiVersion: v1\nkind: List\nitems: 3\n", err: "no list of items"},
		{name: "not YAML", in: "a: [b\n", err: "document 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Read(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Pools) != tc.pools || len(cfg.Peers) != tc.peers {
				t.Fatalf("%d pools, %d peers; want %d, %d", len(cfg.Pools), len(cfg.Peers), tc.pools, tc.peers)
			}
			if tc.skip != "" && !strings.Contains(strings.Join(cfg.Skipped, "\n"), tc.skip) {
				t.Fatalf("skipped %q, want a mention of %q", cfg.Skipped, tc.skip)
			}
		})
	}
}

// FuzzRead: whatever the input, reading, converting and writing never
// panic, and every output line is a comment, a YAML line or a separator
// (a value from the input never starts a line of its own).
func FuzzRead(f *testing.F) {
	f.Add("apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec: {addresses: [192.0.2.0/28, 10/8, x]}\n")
	f.Add("apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: \"a\\nkind: Evil\"}\nspec: {myASN: 1, interface: \"x\\ny\", holdTime: 1s}\n")
	f.Add("apiVersion: v1\nkind: List\nitems: [{apiVersion: metallb.io/v1beta1, kind: BGPAdvertisement, metadata: {name: x}, spec: {communities: [large:1:2:3, '1:2']}}]\n")
	f.Add("apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: p}\nspec: {receiveInterval: 0, detectMultiplier: 1000}\n")
	f.Add("{\"kind\":\"SecretList\",\"items\":[]}")
	f.Add("---\n- 1\n")
	f.Fuzz(func(t *testing.T, in string) {
		cfg, err := Read(strings.NewReader(in))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := Write(&buf, Convert(cfg)); err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
			if line == "" || line == "---" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, " ") ||
				strings.HasPrefix(line, "- ") || yamlTopKey(line) {
				continue
			}
			t.Fatalf("unexpected output line %q", line)
		}
	})
}

// yamlTopKey reports whether a line is one of the top-level keys Write prints.
func yamlTopKey(line string) bool {
	for _, k := range []string{"apiVersion:", "kind:", "metadata:", "spec:", "stringData:", "type:"} {
		if strings.HasPrefix(line, k) {
			return true
		}
	}
	return false
}
