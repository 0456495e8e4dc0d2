package speaker

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp"
)

// Benchmarks. Run e.g.:
//
//	go test ./controllers/speaker/ -run '^$' -bench ServiceChange -benchtime 150000x
//
// BenchmarkCompute is the full recomputation a node-wide change costs;
// BenchmarkServiceChange is what one Service change costs: it should not
// grow with the number of Services.

// BenchmarkCompute measures one full recomputation of a node's desired
// state, which a node-wide change (peer, advertisement, pool, Node, Secret,
// drain phase) costs: it grows with the number of Services.
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
				in.Allocations = append(in.Allocations, alloc(addrAt(i), "p1", key))
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

// BenchmarkServiceChange measures the node reconciler's run after one
// Service change, on top of n Services: the Service's EndpointSlice is
// flipped to not ready (its route is withdrawn) or back (announced again)
// in the reconciler's factStore, as the reflector would (the store marks
// the Service dirty), and the run that follows recomputes that Service and
// hands the change to a real bgp.Speaker (embedded GoBGP; its peers never
// come up, so only the speaker's own work is measured).
func BenchmarkServiceChange(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			h := newBenchNode(b, n)
			ctx := logf.IntoContext(context.Background(), logr.Discard())
			req := ctrl.Request{NamespacedName: types.NamespacedName{Name: thisNode}}
			// Start from a collected heap, so that the measurement does not
			// pay for the setup's garbage; run long enough (-benchtime
			// 150000x) for the collections the changes cause to be counted.
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU(b)
			i := 0
			for b.Loop() {
				j := (i / 2) % n
				ready := i%2 == 1
				if err := h.slices.Update(benchSlice(j, ready)); err != nil {
					b.Fatal(err)
				}
				if _, err := h.r.Reconcile(ctx, req); err != nil {
					b.Fatal(err)
				}
				if want := n - 1 + i%2; h.r.table.size() != want {
					b.Fatalf("change %d: %d paths, want %d", i, h.r.table.size(), want)
				}
				i++
			}
			b.StopTimer()
			// The machine is shared: CPU time is steadier than wall time.
			b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(i), "cpu-ns/op")
			if i%2 == 1 { // leave every Service ready for the next size
				_ = h.slices.Update(benchSlice((i/2)%n, true))
			}
		})
	}
}

type benchNode struct {
	r *NodeReconciler
	// slices is where the EndpointSlices' reflector writes: the store
	// marks the changed Service dirty, as in the speaker.
	slices sink[*discoveryv1.EndpointSlice]
}

// newBenchNode fills in-memory stores with n Services, their EndpointSlices
// and IPAllocations, applies the full state to a real speaker, and returns
// a reconciler over them whose next runs are per-Service.
func newBenchNode(b *testing.B, n int) *benchNode {
	b.Helper()
	keyFunc := toolscache.MetaNamespaceKeyFunc
	dirty := &dirtySet{}
	st := stores{
		allocations: toolscache.NewStore(keyFunc),
		byService:   newAllocationIndex(),
		factStore:   newFactStore(thisNode, dirty.markService),
	}
	services, slices := servicesInto(st.factStore), slicesInto(st.factStore)
	w := base()
	// Loopback peers on a port where nothing listens.
	w.peers = []v1alpha1.BGPPeer{
		peer("r1", "127.0.0.200", 65001, 64512, benchPort),
		peer("r6", "::1", 65001, 64512, benchPort),
	}
	w.advs = []v1alpha1.BGPAdvertisement{adv("a", communities("65000:1")), adv("b", toPeers("r1"), localPref(200))}
	in := w.inputs()
	in.Allocations = nil
	for i := range n {
		key := types.NamespacedName{Namespace: "bench", Name: benchName(i)}
		s := svc(key.String())
		a := alloc(addrAt(i), "p1", key.String())
		es := benchSlice(i, true)
		for _, err := range []error{services.Add(s), slices.Add(es), st.allocations.Add(a)} {
			if err != nil {
				b.Fatal(err)
			}
		}
		st.byService.update(nil, a)
		in.Allocations = append(in.Allocations, a)
		in.Services[key] = s
		in.EndpointSlices[key] = []*discoveryv1.EndpointSlice{es}
	}
	d := Compute(in)
	spk, err := bgp.New(bgp.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = spk.Stop(context.Background(), false) })
	if err := spk.Apply(context.Background(), d.State); err != nil {
		b.Fatal(err)
	}
	r := &NodeReconciler{NodeName: thisNode, BGP: spk, Now: time.Now, hub: newViewHub(), stores: st, dirty: dirty}
	r.table, r.applied, r.lastASN = d.table, true, d.State.ASN
	r.view = nodeView{Peers: d.Peers, Announced: len(d.State.Paths)}
	return &benchNode{r: r, slices: slices}
}

func benchPort(p *v1alpha1.BGPPeer) {
	p.Spec.Port = 9
	p.Spec.ConnectRetryTime = &metav1.Duration{Duration: time.Minute}
}

func benchName(i int) string { return fmt.Sprintf("svc-%06d", i) }

func benchSlice(i int, ready bool) *discoveryv1.EndpointSlice {
	name := benchName(i)
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: name + "-1",
			Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			NodeName:   ptr.To("node-b"),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)},
		}},
	}
}

// processCPU is the CPU time the process (every goroutine, GoBGP's and
// the garbage collector's included) has used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// addrAt is the i-th address of 198.18.0.0/15 (131,072 addresses: enough
// for 100,000 Services; the benchmarking range, no traffic is sent).
func addrAt(i int) string {
	return netip.AddrFrom4([4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)}).String()
}
