package l2mode

import (
	"fmt"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bgplb/bgplb/internal/heartbeat"
	"github.com/bgplb/bgplb/internal/l2election"
)

// BenchmarkComputeElect is the CPU of one L2 run (every address
// recomputed) at n addresses on 50 nodes.
func BenchmarkComputeElect(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			in := base()
			in.Nodes = nil
			in.Peers = map[string]heartbeat.Peer{}
			for i := 0; i < 50; i++ {
				name := fmt.Sprintf("n%d", i)
				in.Nodes = append(in.Nodes, node(name, true, nil))
				if name != in.Self {
					in.Peers[name] = alive(lanLink)
				}
			}
			in.Allocations = nil
			in.Services = map[types.NamespacedName]*corev1.Service{}
			in.Slices = map[types.NamespacedName][]*discoveryv1.EndpointSlice{}
			for i := 0; i < n; i++ {
				name := fmt.Sprintf("svc-%d", i)
				ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
				if i >= 256 {
					ip = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00, 14: byte(i >> 8), 15: byte(i)})
				}
				in.Allocations = append(in.Allocations, alloc(ip.String(), "lan", name))
				key := types.NamespacedName{Namespace: "default", Name: name}
				in.Services[key] = svc(name, false)
				in.Slices[key] = []*discoveryv1.EndpointSlice{slice("n3", "n7")}
			}
			b.ResetTimer()
			for range b.N {
				d := Compute(in)
				owners := l2election.Elect(d.Nodes, d.Addresses)
				if len(owners) != n {
					b.Fatalf("%d owners", len(owners))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/run")
		})
	}
}
