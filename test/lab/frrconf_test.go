package lab

import (
	"net/netip"
	"strings"
	"testing"
)

func testRouterConfig() RouterConfig {
	return RouterConfig{
		Hostname: "r1",
		ASN:      64501,
		RouterID: netip.MustParseAddr("192.0.2.1"),
		BFD:      DefaultBFDProfile(),
		PeerGroups: []PeerGroup{
			{Name: "nodes4", RemoteASN: 64512, ListenRanges: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/26")}, BFD: true},
			{Name: "nodes6", RemoteASN: 64512, ListenRanges: []netip.Prefix{netip.MustParsePrefix("2001:db8:1::/64")}, BFD: true},
		},
	}
}

func TestRenderBGPD(t *testing.T) {
	tests := []struct {
		name   string
		change func(*RouterConfig)
		want   []string
		absent []string
	}{
		{
			name: "default eBGP with dynamic neighbors",
			want: []string{
				"frr defaults datacenter\n",
				"router bgp 64501\n",
				" bgp router-id 192.0.2.1\n",
				" no bgp ebgp-requires-policy\n",
				" neighbor nodes4 remote-as 64512\n",
				" neighbor nodes4 bfd profile lab\n",
				" bgp listen range 192.0.2.0/26 peer-group nodes4\n",
				" bgp listen range 2001:db8:1::/64 peer-group nodes6\n",
				" address-family ipv4 unicast\n  maximum-paths 16\n  maximum-paths ibgp 16\n  neighbor nodes4 activate\n  neighbor nodes4 route-map LAB-DENY-ALL out\n exit-address-family\n",
				" address-family ipv6 unicast\n  maximum-paths 16\n  maximum-paths ibgp 16\n  neighbor nodes6 activate\n",
				"route-map LAB-DENY-ALL deny 10\n",
			},
			absent: []string{"password", "graceful-restart", "timers"},
		},
		{
			name: "iBGP, password, GR, timers, explicit neighbor, sends routes",
			change: func(c *RouterConfig) {
				c.ASN = 64512
				c.GracefulRestart = true
				c.StalePathTime = 30
				c.SendRoutes = true
				c.MaximumPaths = 4
				c.PeerGroups[0].Password = "s3cret"
				c.PeerGroups[0].HoldTime = 3
				c.PeerGroups[1].RemoteASN = 0
				c.PeerGroups[1].Neighbors = []netip.Addr{netip.MustParseAddr("2001:db8:1::11")}
				c.PeerGroups[1].ListenRanges = nil
			},
			want: []string{
				" neighbor nodes4 remote-as internal\n",
				" neighbor nodes4 password s3cret\n",
				" neighbor nodes4 timers 1 3\n",
				" bgp graceful-restart\n",
				" bgp graceful-restart stalepath-time 30\n",
				" neighbor nodes6 remote-as external\n",
				" neighbor 2001:db8:1::11 peer-group nodes6\n",
				"  maximum-paths ibgp 4\n",
			},
			absent: []string{"LAB-DENY-ALL", "listen range 2001"},
		},
		{
			name:   "BFD off",
			change: func(c *RouterConfig) { c.PeerGroups[0].BFD, c.PeerGroups[1].BFD = false, false },
			absent: []string{" bfd"},
		},
		{
			name: "families override",
			change: func(c *RouterConfig) {
				c.PeerGroups = c.PeerGroups[:1]
				c.PeerGroups[0].Families = []Family{IPv4Unicast, IPv6Unicast}
			},
			want: []string{" address-family ipv6 unicast\n  maximum-paths 16\n  maximum-paths ibgp 16\n  neighbor nodes4 activate\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testRouterConfig()
			if tt.change != nil {
				tt.change(&c)
			}
			got, err := RenderBGPD(c)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in:\n%s", w, got)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(got, a) {
					t.Errorf("unexpected %q in:\n%s", a, got)
				}
			}
		})
	}
}

func TestRenderBFDDAndZebra(t *testing.T) {
	c := testRouterConfig()
	got, err := RenderBFDD(c)
	if err != nil {
		t.Fatal(err)
	}
	want := "bfd\n profile lab\n  detect-multiplier 3\n  receive-interval 300\n  transmit-interval 300\n exit\nexit\n"
	if !strings.Contains(got, want) || !strings.HasPrefix(got, "frr defaults datacenter\n") {
		t.Errorf("bfdd.conf:\n%s\nwant it to contain\n%s", got, want)
	}
	z, err := RenderZebra(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(z, "ip forwarding\nipv6 forwarding\n") {
		t.Errorf("zebra.conf:\n%s", z)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*RouterConfig)
		errHas string
	}{
		{"zero asn", func(c *RouterConfig) { c.ASN = 0 }, "asn 0"},
		{"v6 router id", func(c *RouterConfig) { c.RouterID = netip.MustParseAddr("2001:db8::1") }, "router-id"},
		{"password with space", func(c *RouterConfig) { c.PeerGroups[0].Password = "a b" }, "password"},
		{"password with newline", func(c *RouterConfig) { c.PeerGroups[0].Password = "a\nrouter bgp 1" }, "password"},
		{"bad group name", func(c *RouterConfig) { c.PeerGroups[0].Name = "x y" }, "peer group name"},
		{"duplicate group", func(c *RouterConfig) { c.PeerGroups[1].Name = "nodes4" }, "defined twice"},
		{"no peers", func(c *RouterConfig) { c.PeerGroups[0].ListenRanges = nil }, "no listen range"},
		{"bfd without profile", func(c *RouterConfig) { c.BFD = BFDProfile{} }, "no BFD profile"},
		{"extra line with newline", func(c *RouterConfig) { c.ExtraBGP = []string{"a\nb"} }, "spans lines"},
		{"unknown family", func(c *RouterConfig) { c.PeerGroups[0].Families = []Family{"l2vpn"} }, "unknown family"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testRouterConfig()
			tt.change(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.errHas)
			}
			if _, err := RenderBGPD(c); err == nil {
				t.Fatal("RenderBGPD accepted an invalid config")
			}
		})
	}
	c := testRouterConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
}

func TestParseRoutes(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  []string
		nhids []int
	}{
		{"none", `[]`, nil, nil},
		{"single", `[{"dst":"203.0.113.10","gateway":"192.0.2.11","dev":"lan","protocol":"bgp"}]`, []string{"192.0.2.11"}, nil},
		{"multipath", `[{"dst":"203.0.113.10","protocol":"bgp","nexthops":[{"gateway":"192.0.2.11","dev":"lan","weight":1},{"gateway":"192.0.2.12","dev":"lan","weight":1}]}]`, []string{"192.0.2.11", "192.0.2.12"}, nil},
		{"nexthop object", `[{"dst":"203.0.113.10","nhid":31,"protocol":"bgp"}]`, nil, []int{31}},
		{"v6", `[{"dst":"2001:db8:ffff::10","nhid":7,"gateway":"2001:db8:1::11","dev":"lan"}]`, []string{"2001:db8:1::11"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ids, err := ParseRoutes([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			var gs []string
			for _, a := range got {
				gs = append(gs, a.String())
			}
			if strings.Join(gs, ",") != strings.Join(tt.want, ",") || len(ids) != len(tt.nhids) {
				t.Fatalf("got %v %v, want %v %v", gs, ids, tt.want, tt.nhids)
			}
		})
	}
	if _, _, err := ParseRoutes([]byte(`[{"gateway":"not-an-ip"}]`)); err == nil {
		t.Fatal("bad gateway accepted")
	}
	gw, members, err := ParseNexthops([]byte(`[{"id":31,"group":[{"id":29},{"id":30}]}]`))
	if err != nil || len(gw) != 0 || len(members) != 2 {
		t.Fatalf("group: %v %v %v", gw, members, err)
	}
	gw, _, err = ParseNexthops([]byte(`[{"id":29,"gateway":"192.0.2.11","dev":"lan"}]`))
	if err != nil || len(gw) != 1 || gw[0].String() != "192.0.2.11" {
		t.Fatalf("plain: %v %v", gw, err)
	}
}

// FuzzParseRoutes: the parsers must never panic on what ip prints.
func FuzzParseRoutes(f *testing.F) {
	f.Add([]byte(`[{"dst":"203.0.113.10","nexthops":[{"gateway":"192.0.2.11"}]}]`))
	f.Add([]byte(`[{"nhid":3}]`))
	f.Add([]byte(`[{"id":3,"group":[{"id":1}]}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		gw, _, err := ParseRoutes(b)
		for _, a := range gw {
			if err == nil && !a.IsValid() {
				t.Fatalf("invalid address returned for %q", b)
			}
		}
		_, _, _ = ParseNexthops(b)
	})
}
