package frrk8s

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	frrv1beta1 "github.com/metallb/frr-k8s/api/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/bgp"
)

var opts = Options{NodeName: "node-a", Namespace: "frr-k8s-system", NodeSelector: map[string]string{"kubernetes.io/hostname": "node-a"}}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }
func ptr[T any](v T) *T         { return &v }
func dur(d time.Duration) *metav1.Duration {
	return &metav1.Duration{Duration: d}
}

// baseNeighbor is what a peer with only an address and ASN becomes: the
// bgp package's defaults made explicit, nothing received.
func baseNeighbor(address string, asn uint32) frrv1beta1.Neighbor {
	return frrv1beta1.Neighbor{
		ASN: asn, Address: address,
		HoldTime: dur(90 * time.Second), KeepaliveTime: dur(30 * time.Second), ConnectTime: dur(5 * time.Second),
		ToAdvertise: frrv1beta1.Advertise{Allowed: frrv1beta1.AllowedOutPrefixes{Mode: frrv1beta1.AllowRestricted}},
		ToReceive:   frrv1beta1.Receive{Allowed: frrv1beta1.AllowedInPrefixes{Mode: frrv1beta1.AllowRestricted}},
	}
}

func TestRender(t *testing.T) {
	gshut := uint32(0xFFFF0000)
	lp := uint32(200)
	v4 := bgp.Peer{Name: "rtr-a", Address: addr("192.0.2.10"), ASN: 65001, LocalASN: 64512}
	ibgp := bgp.Peer{Name: "rtr-b", Address: addr("192.0.2.11"), ASN: 64512, LocalASN: 64512}
	v6 := bgp.Peer{Name: "rtr-6", Address: addr("2001:db8::10"), ASN: 65002, LocalASN: 64512}

	tests := []struct {
		name    string
		st      bgp.State
		want    frrv1beta1.BGPConfig
		secrets map[string]string
		sent    map[string]int
		err     string
	}{{
		name: "no peers: no router, bgplb claims no ASN",
		st:   bgp.State{ASN: 64512, RouterID: addr("192.0.2.1"), Paths: []bgp.Path{}},
		want: frrv1beta1.BGPConfig{},
		sent: map[string]int{},
	}, {
		name: "peers of both families get the prefixes of their family, in prefix order; attributes per peer",
		st: bgp.State{ASN: 64512, RouterID: addr("192.0.2.1"), Peers: []bgp.Peer{v4, ibgp, v6}, Paths: []bgp.Path{
			{Prefix: pfx("198.51.100.7/32"), Peers: map[string]bgp.Attributes{"rtr-a": {}, "rtr-b": {LocalPref: &lp}}},
			{Prefix: pfx("198.51.100.0/28"), Peers: map[string]bgp.Attributes{
				"rtr-a": {Communities: []uint32{65000<<16 | 1, gshut}, LargeCommunities: []bgp.LargeCommunity{{GlobalAdmin: 64512, LocalData1: 1, LocalData2: 2}}},
				"rtr-b": {Communities: []uint32{gshut}, LocalPref: &lp},
			}},
			{Prefix: pfx("2001:db8:5::1/128"), Peers: map[string]bgp.Attributes{"rtr-6": {LocalPref: &lp}}},
		}},
		want: frrv1beta1.BGPConfig{Routers: []frrv1beta1.Router{{
			ASN: 64512, ID: "192.0.2.1",
			Prefixes: []string{"198.51.100.0/28", "198.51.100.7/32", "2001:db8:5::1/128"},
			Neighbors: []frrv1beta1.Neighbor{
				func() frrv1beta1.Neighbor {
					n := baseNeighbor("192.0.2.10", 65001)
					n.ToAdvertise.Allowed.Prefixes = []string{"198.51.100.0/28", "198.51.100.7/32"}
					n.ToAdvertise.PrefixesWithCommunity = []frrv1beta1.CommunityPrefixes{
						{Community: "65000:1", Prefixes: []string{"198.51.100.0/28"}},
						{Community: "65535:0", Prefixes: []string{"198.51.100.0/28"}},
						{Community: "large:64512:1:2", Prefixes: []string{"198.51.100.0/28"}},
					}
					return n
				}(),
				func() frrv1beta1.Neighbor {
					n := baseNeighbor("192.0.2.11", 64512)
					n.ToAdvertise.Allowed.Prefixes = []string{"198.51.100.0/28", "198.51.100.7/32"}
					n.ToAdvertise.PrefixesWithCommunity = []frrv1beta1.CommunityPrefixes{{Community: "65535:0", Prefixes: []string{"198.51.100.0/28"}}}
					n.ToAdvertise.PrefixesWithLocalPref = []frrv1beta1.LocalPrefPrefixes{{LocalPref: 200, Prefixes: []string{"198.51.100.0/28", "198.51.100.7/32"}}}
					return n
				}(),
				func() frrv1beta1.Neighbor {
					// eBGP: the local preference is not sent (as with GoBGP).
					n := baseNeighbor("2001:db8::10", 65002)
					n.ToAdvertise.Allowed.Prefixes = []string{"2001:db8:5::1/128"}
					return n
				}(),
			},
		}}},
		sent: map[string]int{"rtr-a": 2, "rtr-b": 2, "rtr-6": 1},
	}, {
		name: "session settings: port, source, timers, multihop, password Secret, BFD profile, graceful restart",
		st: bgp.State{ASN: 64512, RouterID: addr("192.0.2.1"), Peers: []bgp.Peer{{
			Name: "rtr-x", Address: addr("192.0.2.20"), ASN: 65010, LocalASN: 64512, Port: 1790, SourceAddress: addr("192.0.2.1"),
			HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, ConnectRetryTime: 1500 * time.Millisecond,
			EBGPMultihopTTL: 4, Password: "s3cret", GracefulRestart: bgp.GracefulRestart{Enabled: true, RestartTime: time.Minute},
			BFD: bgp.BFD{Enabled: true, MinRx: 100 * time.Millisecond, Multiplier: 5},
		}}},
		want: frrv1beta1.BGPConfig{
			Routers: []frrv1beta1.Router{{ASN: 64512, ID: "192.0.2.1", Neighbors: []frrv1beta1.Neighbor{func() frrv1beta1.Neighbor {
				n := baseNeighbor("192.0.2.20", 65010)
				n.Port, n.SourceAddress = ptr(uint16(1790)), "192.0.2.1"
				n.HoldTime, n.KeepaliveTime, n.ConnectTime = dur(9*time.Second), dur(3*time.Second), dur(2*time.Second)
				n.EBGPMultiHop, n.EnableGracefulRestart = true, true
				n.PasswordSecret = frrv1beta1.SecretReference{Name: "bgplb-node-a-rtr-x", Namespace: "frr-k8s-system"}
				n.BFDProfile = "bgplb-rtr-x"
				return n
			}()}}},
			BFDProfiles: []frrv1beta1.BFDProfile{{Name: "bgplb-rtr-x", ReceiveInterval: ptr(uint32(100)), TransmitInterval: ptr(uint32(300)), DetectMultiplier: ptr(uint32(5))}},
		},
		secrets: map[string]string{"bgplb-node-a-rtr-x": "s3cret"},
		sent:    map[string]int{"rtr-x": 0},
	}, {
		name: "TTL 1 and iBGP are not multihop",
		st: bgp.State{ASN: 64512, Peers: []bgp.Peer{
			{Name: "a", Address: addr("192.0.2.30"), ASN: 65001, EBGPMultihopTTL: 1},
			{Name: "b", Address: addr("192.0.2.31"), ASN: 64512, EBGPMultihopTTL: 5},
		}},
		want: frrv1beta1.BGPConfig{Routers: []frrv1beta1.Router{{ASN: 64512, Neighbors: []frrv1beta1.Neighbor{
			baseNeighbor("192.0.2.30", 65001), baseNeighbor("192.0.2.31", 64512),
		}}}},
		sent: map[string]int{"a": 0, "b": 0},
	}, {
		name: "what frr-k8s cannot express is left out and reported; the rest is rendered",
		st: bgp.State{ASN: 64512, Peers: []bgp.Peer{
			{Name: "other-as", Address: addr("192.0.2.40"), ASN: 65001, LocalASN: 64999},
			{Name: "high-port", Address: addr("192.0.2.41"), ASN: 65001, Port: 20000},
			{Name: "fast-bfd", Address: addr("192.0.2.42"), ASN: 65001, BFD: bgp.BFD{Enabled: true, MinTx: 5 * time.Millisecond}},
			{Name: "ok", Address: addr("192.0.2.43"), ASN: 65001},
		}, Paths: []bgp.Path{{Prefix: pfx("198.51.100.9/32"), Peers: map[string]bgp.Attributes{"other-as": {}, "ok": {}}}}},
		want: frrv1beta1.BGPConfig{Routers: []frrv1beta1.Router{{ASN: 64512, Prefixes: []string{"198.51.100.9/32"}, Neighbors: []frrv1beta1.Neighbor{func() frrv1beta1.Neighbor {
			n := baseNeighbor("192.0.2.43", 65001)
			n.ToAdvertise.Allowed.Prefixes = []string{"198.51.100.9/32"}
			return n
		}()}}}},
		sent: map[string]int{"ok": 1},
		err:  "other-as|localASN 64999|high-port|16384|fast-bfd|10ms",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Render(tc.st, opts)
			if tc.err == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			for _, want := range strings.Split(tc.err, "|") {
				if want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
					t.Errorf("error %v does not mention %q", err, want)
				}
			}
			if d := cmp.Diff(tc.want, got.Spec.BGP); d != "" {
				t.Errorf("BGP config (-want +got):\n%s", d)
			}
			if d := cmp.Diff(opts.NodeSelector, got.Spec.NodeSelector.MatchLabels); d != "" {
				t.Errorf("node selector (-want +got):\n%s", d)
			}
			if tc.secrets == nil {
				tc.secrets = map[string]string{}
			}
			if d := cmp.Diff(tc.secrets, got.Secrets); d != "" {
				t.Errorf("secrets (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.sent, got.Peers); d != "" {
				t.Errorf("prefixes per peer (-want +got):\n%s", d)
			}
		})
	}
}

// TestRenderDrain: the drain the speaker decides (GRACEFUL_SHUTDOWN on
// every path, then no paths) reaches FRR as a community, then as nothing
// to advertise, with the sessions kept.
func TestRenderDrain(t *testing.T) {
	peer := bgp.Peer{Name: "rtr-a", Address: addr("192.0.2.10"), ASN: 65001}
	draining := bgp.State{ASN: 64512, Peers: []bgp.Peer{peer}, Paths: []bgp.Path{
		{Prefix: pfx("198.51.100.7/32"), Peers: map[string]bgp.Attributes{"rtr-a": {Communities: []uint32{0xFFFF0000}}}},
	}}
	got, err := Render(draining, opts)
	if err != nil {
		t.Fatal(err)
	}
	adv := got.Spec.BGP.Routers[0].Neighbors[0].ToAdvertise
	if d := cmp.Diff([]frrv1beta1.CommunityPrefixes{{Community: "65535:0", Prefixes: []string{"198.51.100.7/32"}}}, adv.PrefixesWithCommunity); d != "" {
		t.Errorf("draining (-want +got):\n%s", d)
	}
	withdrawn := draining
	withdrawn.Paths = []bgp.Path{}
	got, err = Render(withdrawn, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := got.Spec.BGP.Routers[0]
	if len(r.Neighbors) != 1 || len(r.Prefixes) != 0 || len(r.Neighbors[0].ToAdvertise.Allowed.Prefixes) != 0 {
		t.Errorf("withdrawn: want the session and no prefixes, got %+v", r)
	}
}

func TestObjectNames(t *testing.T) {
	if got := ConfigName("node-a"); got != "bgplb-node-a" {
		t.Errorf("ConfigName = %q", got)
	}
	long := strings.Repeat("n", 250)
	a, b := SecretName(long, "peer-1"), SecretName(long, "peer-2")
	if len(a) > 253 || len(b) > 253 || a == b {
		t.Errorf("long names must stay within 253 characters and distinct: %d %d equal=%v", len(a), len(b), a == b)
	}
}
