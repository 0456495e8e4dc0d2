package frrk8s

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"

	"github.com/bgplb/bgplb/bgp"
)

// BenchmarkRender renders a node with n /32 prefixes sent to two IPv4
// peers with one community each, and reports the size of the resulting
// spec as JSON (what each write carries; etcd's limit is 1.5 MiB).
func BenchmarkRender(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("prefixes=%d", n), func(b *testing.B) {
			st := bgp.State{ASN: 64512, RouterID: addr("192.0.2.1"), Peers: []bgp.Peer{
				{Name: "rtr-a", Address: addr("192.0.2.10"), ASN: 65001},
				{Name: "rtr-b", Address: addr("192.0.2.11"), ASN: 65001},
			}}
			attrs := map[string]bgp.Attributes{"rtr-a": {Communities: []uint32{65000<<16 | 100}}, "rtr-b": {Communities: []uint32{65000<<16 | 100}}}
			base := netip.MustParseAddr("198.18.0.0").As4()
			for i := range n {
				a := base
				a[2], a[3] = byte(i>>8), byte(i)
				st.Paths = append(st.Paths, bgp.Path{Prefix: netip.PrefixFrom(netip.AddrFrom4(a), 32), Peers: attrs})
			}
			var size int
			for b.Loop() {
				cfg, err := Render(st, opts)
				if err != nil {
					b.Fatal(err)
				}
				js, err := json.Marshal(cfg.Spec)
				if err != nil {
					b.Fatal(err)
				}
				size = len(js)
			}
			b.ReportMetric(float64(size)/1024, "KiB/object")
		})
	}
}
