package e2e

import (
	"fmt"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// speakerDrainTime is the speaker's --drain-time default (config/speaker
// does not set the flag): how long a node labelled
// node.kubernetes.io/exclude-from-external-load-balancers announces with
// GRACEFUL_SHUTDOWN before it withdraws.
const speakerDrainTime = 30 * time.Second

const excludeLabel = "node.kubernetes.io/exclude-from-external-load-balancers"

// ecmpChange is a span of time in which the spec changed the routers' ECMP
// sets. A router hashes each connection onto one next hop; when the set
// changes, some connections move to another node, which has no conntrack
// entry for them and resets the ones in flight (docs/operations.md,
// "Draining a node"). No other failure is allowed.
type ecmpChange struct {
	what       string
	start, end time.Time
}

// resetSlack is how long after a change a reset may still arrive: the
// request in flight sees it one round trip (on a busy machine, a scheduling
// delay) after the router switched.
const resetSlack = 2 * time.Second

// unexplainedResets returns the resets outside every change (plus slack).
func unexplainedResets(resets []time.Time, changes []ecmpChange) []string {
	var out []string
	for _, t := range resets {
		if !slices.ContainsFunc(changes, func(c ecmpChange) bool { return !t.Before(c.start) && !t.After(c.end.Add(resetSlack)) }) {
			out = append(out, t.Format("15:04:05.000"))
		}
	}
	return out
}

// drainSpecs: taking a node out the documented way (docs/operations.md):
// the exclude label, then kubectl drain; and back with uncordon.
func drainSpecs() {
	It("labelled excluded, the node announces GRACEFUL_SHUTDOWN, then withdraws; kubectl drain evicts its pods; no connection fails but those in flight when an ECMP set changes; uncordon brings it back", func(ctx SpecContext) {
		const node = "n3"
		addrs := hello(ctx)
		DeferCleanup(func(ctx SpecContext) {
			_, _ = cl.Kubectl(ctx, "uncordon", node)
			_, _ = cl.Kubectl(ctx, "label", "node", node, excludeLabel+"-")
		})
		probe := startProbe(addrs, 50*time.Millisecond)
		Eventually(func() int { return probe.Result().OK }).Should(BeNumerically(">=", 20), "the client is answered before the drain")

		By("labelling " + node + " " + excludeLabel)
		kubectlOK(ctx, "label", "node", node, excludeLabel+"=")
		labelled := time.Now()
		// RFC 8326: the router lowers the draining path's preference (FRR
		// sets LOCAL_PREF 0), so the kernel route leaves n3 while its path
		// is still there.
		seen := map[string]time.Duration{}
		Eventually(func(g Gomega) {
			for _, r := range cl.Lab.Routers() {
				for _, a := range addrs {
					key := r.Name + " " + a.String()
					if _, ok := seen[key]; ok {
						continue
					}
					v, err := viewOf(r, a)
					g.Expect(err).NotTo(HaveOccurred())
					g.Expect(v.BGP).To(ContainElement(node), "%s: %s withdrew %s before announcing GRACEFUL_SHUTDOWN", r.Name, node, a)
					gshut := false
					for _, p := range v.Paths {
						if nodeOfHop(p.NextHop) == node {
							gshut = slices.Contains(p.Communities, "graceful-shutdown")
						} else {
							g.Expect(p.Communities).NotTo(ContainElement("graceful-shutdown"), "%s: only %s drains: %+v", r.Name, node, p)
						}
					}
					if gshut && slices.Equal(v.Kernel, []string{"n1", "n2"}) {
						seen[key] = time.Since(labelled)
					}
				}
			}
			g.Expect(seen).To(HaveLen(len(cl.Lab.Routers())*len(addrs)), "routers that moved traffic off %s on GRACEFUL_SHUTDOWN", node)
		}, speakerDrainTime, 100*time.Millisecond).Should(Succeed())
		changes := []ecmpChange{{"GRACEFUL_SHUTDOWN moves traffic off " + node, labelled, time.Now()}}
		fmt.Fprintf(GinkgoWriter, "GRACEFUL_SHUTDOWN seen and %s out of the kernel routes after %v\n", node, seen)

		By("the node withdrawing after the drain time")
		for _, a := range addrs {
			expectRouted(a, "n1", "n2")
		}
		withdrawn := time.Since(labelled)
		fmt.Fprintf(GinkgoWriter, "%s withdrawn %s after the label (drain time %s)\n", node, withdrawn.Round(time.Millisecond), speakerDrainTime)
		AddReportEntry("drain: label -> withdrawn", withdrawn.String())
		Expect(withdrawn).To(BeNumerically(">=", speakerDrainTime-time.Second), "withdrawn before the drain time was over")
		Eventually(func() (string, error) {
			return cl.Kubectl(ctx, "get", "bgpnodestatus", node, "-o", `jsonpath={.status.conditions[?(@.type=="Draining")].reason}`)
		}).Should(Equal("Withdrawn"), "BGPNodeStatus %s says the node is drained", node)

		By("kubectl drain " + node)
		out := kubectlOK(ctx, "drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=2m")
		fmt.Fprintf(GinkgoWriter, "kubectl drain:\n%s", out)
		Eventually(func() ([]string, error) { return readyPodNodes(ctx, helloNS, "app="+helloName) }).ShouldNot(ContainElement(node))
		before := probe.Result().OK
		Eventually(func() int { return probe.Result().OK }).Should(BeNumerically(">=", before+20), "the client keeps being answered")
		for _, a := range addrs {
			counts := answeredBy(ctx, helloNS, "app="+helloName, a, 10)
			Expect(counts).NotTo(HaveKey(node), "%s answered by a pod on the drained %s", a, node)
		}

		By("kubectl uncordon " + node + " and removing the label")
		back := time.Now()
		kubectlOK(ctx, "uncordon", node)
		kubectlOK(ctx, "label", "node", node, excludeLabel+"-")
		for _, a := range addrs {
			expectRouted(a, allNodes()...)
		}
		changes = append(changes, ecmpChange{node + " back in the routes", back, time.Now()})
		for _, a := range addrs {
			for _, r := range cl.Lab.Routers() {
				v, err := viewOf(r, a)
				Expect(err).NotTo(HaveOccurred())
				for _, p := range v.Paths {
					Expect(p.Communities).NotTo(ContainElement("graceful-shutdown"), "%s: %+v", r.Name, p)
				}
			}
		}
		// The replica evicted from n3 was pending (the Deployment spreads
		// one per node); it starts on n3 again.
		Eventually(func() ([]string, error) { return readyPodNodes(ctx, helloNS, "app="+helloName) }).Should(Equal(allNodes()))
		res := probe.Stop()
		report("drain: client connections", res)
		AddReportEntry("drain: connections reset in flight by an ECMP change", len(res.Resets))
		Expect(res.Failed-len(res.Resets)).To(BeZero(), "connections failed, other than by a reset in flight, during the drain:\n%s", strings.Join(res.Errors, "\n"))
		Expect(unexplainedResets(res.Resets, changes)).To(BeEmpty(), "connections reset outside the ECMP changes %+v:\n%s", changes, strings.Join(res.Errors, "\n"))
	}, SpecTimeout(5*time.Minute))
}
