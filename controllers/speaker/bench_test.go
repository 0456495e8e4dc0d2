package speaker

import (
	"fmt"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// BenchmarkCompute measures one full recomputation of a node's desired
// state, which the aggregate reconciler does on every change: its cost grows
// with the number of Services, so it bounds how fast changes are picked up.
func BenchmarkCompute(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			w := base()
			w.peers = append(w.peers, peer("r2", "198.51.100.2", 65000, 65000), peer("r6", "2001:db8::1", 65001, 65000))
			w.advs = []v1alpha1.BGPAdvertisement{adv("a", communities("65000:1")), adv("b", toPeers("r2"), localPref(200))}
			in := w.inputs()
			in.Allocations = nil
			for i := range n {
				key := fmt.Sprintf("ns%d/svc%d", i%50, i)
				in.Allocations = append(in.Allocations, alloc(ipAt(i), "p1", key))
				s := svc(key)
				if i%4 == 0 {
					etpLocal(s)
				}
				nn := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
				in.Services[nn] = s
				in.EndpointSlices[nn] = []*discoveryv1.EndpointSlice{slice(readyThere, readyHere)}
			}
			b.ReportAllocs()
			b.ResetTimer()
			var d Desired
			for b.Loop() {
				d = Compute(in)
			}
			if len(d.State.Paths) != n {
				b.Fatalf("%d paths, want %d", len(d.State.Paths), n)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/service")
		})
	}
}

func ipAt(i int) string {
	return fmt.Sprintf("198.18.%d.%d", i/256, i%256)
}
