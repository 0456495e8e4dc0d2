package l2_test

import (
	"fmt"
	"net/netip"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/l2"
)

// The eligibility rules of docs/kinds/l2advertisement.md, each by breaking
// it for the owner: the address moves to another node (condition and
// answers), and comes back when the rule holds again (the election is a
// function of the inputs).
var _ = Describe("Which node owns an address", func() {
	// oneService starts a spec with a pool, an advertisement of it on every
	// node and one Service, and returns the namespace, the address and
	// its owner.
	oneService := func(pool, addrs string) (string, netip.Addr, string) {
		GinkgoHelper()
		ns := newNamespace("elig")
		createPool(pool, addrs, nil)
		createAdv(pool, v1alpha1.L2AdvertisementSpec{IPPools: []string{pool}})
		createService(ns, "web", nil, inPool(pool))
		ip := addressOf(ns, "web")
		return ns, ip, ownerOf(ns, "web", ip)
	}

	// movesAndReturns breaks a rule for the owner, expects the address on
	// another node, restores the rule and expects the owner back.
	movesAndReturns := func(ns string, ip netip.Addr, owner string, breakRule, restore func()) {
		GinkgoHelper()
		DeferCleanup(restore) // idempotent: the next specs need all three nodes
		breakRule()
		ownerOf(ns, "web", ip, owner)
		restore()
		expectOwner(ns, "web", ip, owner)
	}

	It("needs the node Ready", func() {
		ns, ip, owner := oneService("el-ready", "198.51.100.24/29")
		movesAndReturns(ns, ip, owner,
			func() { setNodeReady(owner, false) },
			func() { setNodeReady(owner, true) })
	})

	It("needs the node not labelled exclude-from-external-load-balancers", func() {
		ns, ip, owner := oneService("el-excl", "198.51.100.32/29")
		movesAndReturns(ns, ip, owner,
			func() { setNodeLabel(owner, excludeLabel, "true") },
			func() { removeNodeLabel(owner, excludeLabel) })
	})

	It("needs the node's speaker alive: its addresses move when its heartbeats stop", func() {
		ns, ip, owner := oneService("el-alive", "198.51.100.40/29")
		movesAndReturns(ns, ip, owner,
			func() { nodes[owner].stop() },
			func() { nodes[owner].start() })
	})

	It("needs the announcing interface up on the node", func() {
		ns, ip, owner := oneService("el-link", "198.51.100.48/29")
		// The owner's eth0 loses its carrier: its speaker tells its peers
		// in its next heartbeat.
		movesAndReturns(ns, ip, owner,
			func() { nodes[owner].setLinks(nil) },
			func() { nodes[owner].setLinks(upLinks()) })
	})

	It("moves the addresses of a deleted Node", func() {
		ns, ip, owner := oneService("el-del", "198.51.100.56/29")
		movesAndReturns(ns, ip, owner,
			func() {
				Expect(k8s.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: owner}})).To(Succeed())
				Eventually(func() bool {
					return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Name: owner}, &corev1.Node{}))
				}).Should(BeTrue())
			},
			func() {
				if apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Name: owner}, &corev1.Node{})) {
					createNode(nodes[owner])
				}
			})
	})

	It("takes only the nodes an L2Advertisement's nodeSelector selects", func() {
		ns := newNamespace("elig")
		createPool("el-sel", "198.51.100.64/29", nil)
		const key = "l2.test/announce"
		setNodeLabel("node-c", key, "yes")
		DeferCleanup(removeNodeLabel, "node-c", key)
		createAdv("el-sel", v1alpha1.L2AdvertisementSpec{IPPools: []string{"el-sel"},
			NodeSelector: &metav1.LabelSelector{MatchLabels: map[string]string{key: "yes"}}})
		var ips []netip.Addr
		for i := range 4 {
			name := fmt.Sprintf("web-%d", i)
			createService(ns, name, nil, inPool("el-sel"))
			ips = append(ips, addressOf(ns, name))
		}
		for i, ip := range ips {
			expectOwner(ns, fmt.Sprintf("web-%d", i), ip, "node-c")
		}
		// The label moves to node-a: so do the addresses.
		setNodeLabel("node-a", key, "yes")
		DeferCleanup(removeNodeLabel, "node-a", key)
		removeNodeLabel("node-c", key)
		for i, ip := range ips {
			expectOwner(ns, fmt.Sprintf("web-%d", i), ip, "node-a")
		}
	})

	It("answers on the interfaces the L2Advertisement names, on nodes where they are up", func() {
		ns := newNamespace("elig")
		createPool("el-ifs", "198.51.100.72/29", nil)
		createAdv("el-ifs", v1alpha1.L2AdvertisementSpec{IPPools: []string{"el-ifs"}, Interfaces: []v1alpha1.InterfaceName{"eth1"}})
		nodes["node-b"].setLinks(append(upLinks(), l2.Link{Name: "eth1"}))
		DeferCleanup(func() { nodes["node-b"].setLinks(upLinks()) })
		createService(ns, "web", nil, inPool("el-ifs"))
		ip := addressOf(ns, "web")
		Eventually(l2Condition(ns, "web")).Should(Equal(fmt.Sprintf("True/Announced: %s on node-b (eth1)", ip)))
		Eventually(answering(ip)).Should(Equal([]string{"node-b eth1"}))
	})

	It("with externalTrafficPolicy Local, takes only nodes with a ready endpoint", func() {
		ns := newNamespace("elig")
		createPool("el-local", "198.51.100.80/29", nil)
		createAdv("el-local", v1alpha1.L2AdvertisementSpec{IPPools: []string{"el-local"}})
		createService(ns, "web", []string{"node-b"}, inPool("el-local"), localTraffic())
		ip := addressOf(ns, "web")
		expectOwner(ns, "web", ip, "node-b")
		// The pod moves to node-c.
		setEndpoints(ns, "web", []string{"node-c"}, true)
		expectOwner(ns, "web", ip, "node-c")
		// Ready on node-a only; node-c's endpoint is not ready.
		setEndpoints(ns, "web", []string{"node-a"}, true)
		expectOwner(ns, "web", ip, "node-a")
	})
})
