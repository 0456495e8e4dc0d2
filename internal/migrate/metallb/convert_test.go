package metallb

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the converter's output")

func readFixture(t *testing.T, name string) *Config {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := Read(f)
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	return cfg
}

// TestGolden: the whole output for the fixture that sets every field of
// MetalLB's API, reviewed by eye once and pinned (go test -update rewrites it).
func TestGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, Convert(readFixture(t, "full.yaml"))); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "full.golden")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if buf.String() != string(want) {
		t.Fatalf("output differs from %s (go test -update to accept):\n%s", golden, buf.String())
	}
}

// TestFixtureCoversEveryField: every JSON field of the MetalLB types
// (which mirror MetalLB's API field by field) is set in full.yaml.
func TestFixtureCoversEveryField(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, v := range []any{IPAddressPoolSpec{}, ServiceAllocation{}, BGPPeerSpec{}, SecretReference{}, BGPAdvertisementSpec{},
		CommunitySpec{}, CommunityAlias{}, BFDProfileSpec{}, L2AdvertisementSpec{}, PreferredNodeSelector{}} {
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			if !strings.Contains(text, name+":") {
				t.Errorf("%s.%s (%s) is not set in testdata/full.yaml", rt.Name(), rt.Field(i).Name, name)
			}
		}
	}
}

// find returns the converted object of a kind and name, and its item.
func find[T any](t *testing.T, res Result, kind, name string) (*T, Item) {
	t.Helper()
	for _, it := range res.Items {
		if it.Object != nil && it.Object.GetObjectKind().GroupVersionKind().Kind == kind && it.Object.GetName() == name {
			o, ok := any(it.Object).(*T)
			if !ok {
				t.Fatalf("%s %s is a %T", kind, name, it.Object)
			}
			return o, it
		}
	}
	t.Fatalf("no %s %s in the output", kind, name)
	return nil, Item{}
}

func hasComment(it Item, sub string) bool {
	for _, c := range it.Comments {
		if strings.Contains(c, sub) {
			return true
		}
	}
	return false
}

// TestConvertFields checks field by field what users rely on.
func TestConvertFields(t *testing.T) {
	res := Convert(readFixture(t, "full.yaml"))
	for _, tc := range []struct {
		name  string
		check func(t *testing.T) string // returns a failure, or ""
	}{
		{"pool addresses, host bits masked, autoAssign, avoidBuggyIPs, labels", func(t *testing.T) string {
			p, it := find[v1alpha1.IPPool](t, res, "IPPool", "public")
			want := []v1alpha1.AddressRange{"198.51.100.0/26", "198.51.100.70-198.51.100.80", "2001:db8:100::/120", "198.51.100.128/25"}
			if !reflect.DeepEqual(p.Spec.Addresses, want) || !*p.Spec.AutoAssign || !p.Spec.AvoidBuggyIPs || p.Labels["tier"] != "public" ||
				!hasComment(it, "host bits") {
				return "pool public not converted as expected"
			}
			return ""
		}},
		{"serviceAllocation: priority, namespaces, first selector kept with a comment", func(t *testing.T) string {
			p, it := find[v1alpha1.IPPool](t, res, "IPPool", "reserved")
			to := p.Spec.AllocateTo
			if *p.Spec.AutoAssign || to == nil || to.Priority != 10 || !reflect.DeepEqual(to.Namespaces, []string{"web", "api"}) ||
				to.NamespaceSelector.MatchLabels["team"] != "web" || to.ServiceSelector.MatchLabels["exposed"] != "yes" ||
				!hasComment(it, "only the first is kept") {
				return "pool reserved not converted as expected"
			}
			return ""
		}},
		{"unset priority is tried last", func(t *testing.T) string {
			p, _ := find[v1alpha1.IPPool](t, res, "IPPool", "lastresort")
			if p.Spec.AllocateTo.Priority != maxPriority {
				return "priority 0 should become the largest"
			}
			return ""
		}},
		{"peer: ASNs, address, port, timers, GR, multihop, BFD profile, first node selector, password Secret", func(t *testing.T) string {
			p, it := find[v1alpha1.BGPPeer](t, res, "BGPPeer", "tor1")
			s := p.Spec
			if s.Address != "198.51.100.254" || s.ASN != 64500 || s.LocalASN != 64512 || s.Port != 1179 || s.SourceAddress != "198.51.100.1" ||
				s.HoldTime.Duration.String() != "9s" || s.KeepaliveTime.Duration.String() != "3s" || s.ConnectRetryTime.Duration.String() != "10s" ||
				!s.GracefulRestart.Enabled || *s.EBGPMultihop != 255 || s.NodeSelector.MatchLabels["rack"] != "r1" ||
				!s.BFD.Enabled || s.BFD.MinReceiveInterval.Duration.String() != "100ms" || s.BFD.MinTransmitInterval.Duration.String() != "150ms" ||
				*s.BFD.DetectMultiplier != 4 || s.PasswordSecretRef.Name != "tor1-bgp-password" || s.PasswordSecretRef.Key != "password" {
				return "peer tor1 not converted as expected"
			}
			for _, c := range []string{"routerID", "dualStackAddressFamily", "disableMP", "echo mode", "passiveMode", "minimumTtl", "spec.password"} {
				if !hasComment(it, c) {
					return "no comment on " + c
				}
			}
			sec, _ := find[corev1.Secret](t, res, "Secret", "tor1-bgp-password")
			if sec.Namespace != v1alpha1.InstallNamespace || sec.StringData["password"] != "s3cret" {
				return "password Secret wrong"
			}
			return ""
		}},
		{"peer: local-as, dynamic internal, passwordSecret copied, missing BFD profile", func(t *testing.T) string {
			p, it := find[v1alpha1.BGPPeer](t, res, "BGPPeer", "tor2")
			s := p.Spec
			if s.LocalASN != 64513 || s.ASN != 64513 || s.PasswordSecretRef.Name != "tor2-auth" || !s.BFD.Enabled || s.BFD.MinReceiveInterval != nil ||
				!hasComment(it, `"missing"`) {
				return "peer tor2 not converted as expected"
			}
			sec, _ := find[corev1.Secret](t, res, "Secret", "tor2-auth")
			if sec.Namespace != v1alpha1.InstallNamespace || sec.StringData["password"] != "tor2-password" {
				return "copied Secret wrong"
			}
			return ""
		}},
		{"peer that cannot work is disabled, with every reason", func(t *testing.T) string {
			_, it := find[v1alpha1.BGPPeer](t, res, "BGPPeer", "unnumbered")
			for _, c := range []string{"spec.interface", "dynamicASN", "spec.vrf", "holdTime 0s", "keepaliveTime 0s", "connectTime", "kubectl get secret"} {
				if !hasComment(it, c) {
					return "no comment on " + c
				}
			}
			if !it.Disabled {
				return "not disabled"
			}
			return ""
		}},
		{"v1beta1 peer", func(t *testing.T) string {
			p, _ := find[v1alpha1.BGPPeer](t, res, "BGPPeer", "legacy")
			if p.Spec.ASN != 64501 || p.Spec.HoldTime.Duration.String() != "1m30s" || p.Spec.NodeSelector.MatchExpressions[0].Key != "node-role.kubernetes.io/edge" ||
				p.Spec.EBGPMultihop != nil {
				return "peer legacy not converted as expected"
			}
			return ""
		}},
		{"advertisement: pools, selector, peers, nodes, communities via aliases, large, localPref, aggregation", func(t *testing.T) string {
			a, it := find[v1alpha1.BGPAdvertisement](t, res, "BGPAdvertisement", "public")
			s := a.Spec
			if !reflect.DeepEqual(s.IPPools, []string{"public", "reserved"}) || s.IPPoolSelector.MatchLabels["tier"] != "public" ||
				!reflect.DeepEqual(s.Peers, []string{"tor1", "tor2"}) || s.NodeSelector.MatchLabels["rack"] != "r1" ||
				!reflect.DeepEqual(s.Communities, []v1alpha1.Community{"64512:100", "65535:65281"}) ||
				!reflect.DeepEqual(s.LargeCommunities, []v1alpha1.LargeCommunity{"64512:1:2", "1:2:3"}) ||
				*s.LocalPref != 200 || *s.AggregationLength != 32 || *s.AggregationLengthV6 != 128 {
				return "advertisement public not converted as expected"
			}
			for _, c := range []string{"asPathPrepend", "serviceSelectors", `"bogus"`, "ipAddressPoolSelectors"} {
				if !hasComment(it, c) {
					return "no comment on " + c
				}
			}
			return ""
		}},
		{"L2Advertisement: pools, selectors, interfaces; what does not map is said", func(t *testing.T) string {
			for _, it := range res.Items {
				a, ok := it.Object.(*v1alpha1.L2Advertisement)
				if !ok {
					continue
				}
				if !slices.Equal(a.Spec.IPPools, []string{"l2only"}) || a.Spec.IPPoolSelector == nil ||
					a.Spec.IPPoolSelector.MatchLabels["mode"] != "l2" || a.Spec.NodeSelector == nil ||
					a.Spec.NodeSelector.MatchLabels["rack"] != "r3" || !slices.Equal(a.Spec.Interfaces, []v1alpha1.InterfaceName{"eth0"}) {
					return fmt.Sprintf("L2Advertisement spec %+v", a.Spec)
				}
				for _, c := range []string{"spec.serviceSelectors not mapped", "spec.preferredNodeSelectors not mapped"} {
					if !hasComment(it, c) {
						return "no comment on " + c
					}
				}
				return ""
			}
			return "no L2Advertisement"
		}},
		{"Community, BFDProfile, ConfigMap: comments only", func(t *testing.T) string {
			var comm, bfd, skipped bool
			for _, it := range res.Items {
				comm = comm || it.Object == nil && hasComment(it, "Community metallb-system/communities")
				bfd = bfd || it.Object == nil && hasComment(it, "BFDProfile metallb-system/fast")
				skipped = skipped || hasComment(it, "ConfigMap metallb-system/unrelated is not a MetalLB object")
			}
			if !comm || !bfd || !skipped {
				return "a comment-only item is missing"
			}
			return ""
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if msg := tc.check(t); msg != "" {
				t.Fatal(msg)
			}
		})
	}
}

// TestConvertEdgeCases covers conversions the full fixture cannot hold at once.
func TestConvertEdgeCases(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		check    func(res Result) bool
	}{
		{"an L2Advertisement without interfaces says how bgplb picks them", `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: p, namespace: m}
spec: {addresses: [192.0.2.0/28]}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: l, namespace: m}
`, func(res Result) bool {
			_, ok := res.Items[1].Object.(*v1alpha1.L2Advertisement)
			return ok && hasComment(res.Items[1], "spec.interfaces empty")
		}},
		{"same name in two namespaces", `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: p, namespace: a}
spec: {addresses: [192.0.2.0/28]}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: p, namespace: b}
spec: {addresses: [192.0.2.16/28]}
`, func(res Result) bool {
			return len(res.Items) == 2 && res.Items[1].Object == nil && hasComment(res.Items[1], "already takes the name")
		}},
		{"keepalive not below hold time", `
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: p, namespace: m}
spec: {myASN: 1, peerASN: 2, peerAddress: 192.0.2.1, holdTime: 9s, keepaliveTime: 9s}
`, func(res Result) bool {
			p := res.Items[0].Object.(*v1alpha1.BGPPeer)
			return p.Spec.KeepaliveTime == nil && hasComment(res.Items[0], "must be shorter than the hold time")
		}},
		{"one password Secret per name", `
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: a, namespace: m}
spec: {myASN: 1, peerASN: 2, peerAddress: 192.0.2.1, passwordSecret: {name: s}}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: b, namespace: m}
spec: {myASN: 1, peerASN: 2, peerAddress: 192.0.2.2, passwordSecret: {name: s}}
---
apiVersion: v1
kind: Secret
metadata: {name: s, namespace: m}
stringData: {password: x}
`, func(res Result) bool {
			n := 0
			for _, it := range res.Items {
				if _, ok := it.Object.(*corev1.Secret); ok {
					n++
				}
			}
			return n == 1
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Read(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			res := Convert(cfg)
			if !tc.check(res) {
				var buf bytes.Buffer
				_ = Write(&buf, res)
				t.Fatalf("unexpected output:\n%s", buf.String())
			}
		})
	}
}
