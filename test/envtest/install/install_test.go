package install_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authzv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/test/envtest/framework"
)

var (
	env *framework.Env
	k8s client.Client
	ctx = context.Background()
)

func TestInstall(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Install and RBAC (envtest)")
}

var _ = BeforeSuite(func() {
	var err error
	env, err = framework.Start(framework.Options{})
	Expect(err).NotTo(HaveOccurred())
	k8s = env.Client
})

var _ = AfterSuite(func() {
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

// render runs the kustomize built into kubectl on config/default, the way a
// user installs bgplb (kubectl apply -k config/default).
func render() []*unstructured.Unstructured {
	kubectl := filepath.Join(env.BinaryAssetsDirectory, "kubectl")
	cmd := exec.Command(kubectl, "kustomize", filepath.Join(framework.RepoRoot(), "config", "default"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	Expect(cmd.Run()).To(Succeed(), "kubectl kustomize: %s", errb.String())
	dec := yaml.NewYAMLOrJSONDecoder(&out, 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			break
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	return objs
}

type access struct {
	verb, group, resource, subresource, namespace string
}

func can(user string, a access) bool {
	sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User:   user,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:bgplb-system", "system:authenticated"},
		ResourceAttributes: &authzv1.ResourceAttributes{
			Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.subresource, Namespace: a.namespace,
		},
	}}
	Expect(k8s.Create(ctx, sar)).To(Succeed())
	return sar.Status.Allowed
}

const (
	controllerSA = "system:serviceaccount:bgplb-system:bgplb-controller"
	speakerSA    = "system:serviceaccount:bgplb-system:bgplb-speaker"
)

var _ = Describe("The rendered install (config/default)", Ordered, func() {
	BeforeAll(func() {
		objs := render()
		Expect(len(objs)).To(BeNumerically(">", 10))
		kinds := map[string]int{}
		// Namespace first, then the rest, as kubectl apply would.
		for _, first := range []bool{true, false} {
			for _, o := range objs {
				if (o.GetKind() == "Namespace") != first {
					continue
				}
				o.SetManagedFields(nil)
				Expect(k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner("install-test"), client.ForceOwnership)).
					To(Succeed(), "server-side apply of %s %s", o.GetKind(), o.GetName())
				kinds[o.GetKind()]++
			}
		}
		for _, k := range []string{"Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Deployment", "DaemonSet", "Service"} {
			Expect(kinds).To(HaveKey(k), "the install should contain a %s", k)
		}
		Expect(kinds["CustomResourceDefinition"]).To(Equal(6))
	})

	It("runs the controller with 2 replicas, probes and a locked-down container", func() {
		for _, o := range render() {
			if o.GetKind() != "Deployment" {
				continue
			}
			replicas, _, _ := unstructured.NestedFieldNoCopy(o.Object, "spec", "replicas")
			Expect(replicas).To(BeNumerically("==", 2))
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			c := cs[0].(map[string]any)
			Expect(c).To(HaveKey("livenessProbe"))
			Expect(c).To(HaveKey("readinessProbe"))
			Expect(c["args"]).To(ContainElement("--leader-elect"))
			sc := c["securityContext"].(map[string]any)
			Expect(sc["readOnlyRootFilesystem"]).To(BeTrue())
			Expect(sc["allowPrivilegeEscalation"]).To(BeFalse())
			Expect(sc["capabilities"]).To(HaveKeyWithValue("drop", ContainElement("ALL")))
		}
	})

	It("runs the speaker with NET_BIND_SERVICE and NET_RAW (L2 mode's ARP/NDP sockets) only, and L2 heartbeats on", func() {
		n := 0
		for _, o := range render() {
			if o.GetKind() != "DaemonSet" {
				continue
			}
			n++
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			c := cs[0].(map[string]any)
			Expect(c["args"]).To(ContainElement("--l2-heartbeat-port=7947"))
			sc := c["securityContext"].(map[string]any)
			caps := sc["capabilities"].(map[string]any)
			Expect(caps["drop"]).To(ConsistOf("ALL"))
			Expect(caps["add"]).To(ConsistOf("NET_BIND_SERVICE", "NET_RAW"))
			Expect(sc["allowPrivilegeEscalation"]).To(BeFalse())
		}
		Expect(n).To(Equal(1))
	})

	DescribeTable("the controller's service account",
		func(a access, allowed bool) {
			Expect(can(controllerSA, a)).To(Equal(allowed), "%+v", a)
		},
		Entry("watches Services", access{verb: "watch", resource: "services"}, true),
		Entry("patches Service status", access{verb: "patch", resource: "services", subresource: "status", namespace: "default"}, true),
		Entry("creates events", access{verb: "create", resource: "events", namespace: "default"}, true),
		Entry("creates IPAllocations", access{verb: "create", group: "bgplb.io", resource: "ipallocations"}, true),
		Entry("deletes IPAllocations", access{verb: "delete", group: "bgplb.io", resource: "ipallocations"}, true),
		Entry("patches IPPool status", access{verb: "patch", group: "bgplb.io", resource: "ippools", subresource: "status"}, true),
		Entry("uses its Lease", access{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: "bgplb-system"}, true),
		Entry("checks metrics scrapers' tokens", access{verb: "create", group: "authentication.k8s.io", resource: "tokenreviews"}, true),
		Entry("checks metrics scrapers' access", access{verb: "create", group: "authorization.k8s.io", resource: "subjectaccessreviews"}, true),
		Entry("cannot write a Service's spec", access{verb: "update", resource: "services", namespace: "default"}, false),
		Entry("cannot patch a Service's spec", access{verb: "patch", resource: "services", namespace: "default"}, false),
		Entry("cannot delete Services", access{verb: "delete", resource: "services", namespace: "default"}, false),
		Entry("cannot read Secrets", access{verb: "get", resource: "secrets", namespace: "default"}, false),
		Entry("watches BGPNodeStatuses", access{verb: "watch", group: "bgplb.io", resource: "bgpnodestatuses"}, true),
		Entry("patches BGPPeer status", access{verb: "patch", group: "bgplb.io", resource: "bgppeers", subresource: "status"}, true),
		Entry("reads Secrets in bgplb-system (BGPPeer passwords, for their Valid condition)", access{verb: "watch", resource: "secrets", namespace: "bgplb-system"}, true),
		Entry("cannot list Secrets cluster-wide", access{verb: "list", resource: "secrets"}, false),
		Entry("cannot write Secrets in bgplb-system", access{verb: "update", resource: "secrets", namespace: "bgplb-system"}, false),
		Entry("cannot write BGPPeers", access{verb: "update", group: "bgplb.io", resource: "bgppeers"}, false),
		Entry("cannot write BGPNodeStatus", access{verb: "patch", group: "bgplb.io", resource: "bgpnodestatuses", subresource: "status"}, false),
		Entry("cannot use Leases elsewhere", access{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: "kube-system"}, false),
	)

	DescribeTable("the speaker's service account",
		func(a access, allowed bool) {
			Expect(can(speakerSA, a)).To(Equal(allowed), "%+v", a)
		},
		Entry("watches Nodes", access{verb: "watch", resource: "nodes"}, true),
		Entry("watches Services", access{verb: "watch", resource: "services"}, true),
		Entry("watches EndpointSlices", access{verb: "watch", group: "discovery.k8s.io", resource: "endpointslices"}, true),
		Entry("watches IPAllocations", access{verb: "watch", group: "bgplb.io", resource: "ipallocations"}, true),
		Entry("watches BGPPeers", access{verb: "watch", group: "bgplb.io", resource: "bgppeers"}, true),
		Entry("watches BGPAdvertisements", access{verb: "watch", group: "bgplb.io", resource: "bgpadvertisements"}, true),
		Entry("reads Secrets in bgplb-system", access{verb: "get", resource: "secrets", namespace: "bgplb-system"}, true),
		Entry("writes BGPNodeStatus", access{verb: "create", group: "bgplb.io", resource: "bgpnodestatuses"}, true),
		Entry("patches BGPNodeStatus status", access{verb: "patch", group: "bgplb.io", resource: "bgpnodestatuses", subresource: "status"}, true),
		Entry("checks metrics scrapers' tokens", access{verb: "create", group: "authentication.k8s.io", resource: "tokenreviews"}, true),
		Entry("cannot write BGPPeer status (the controller's)", access{verb: "patch", group: "bgplb.io", resource: "bgppeers", subresource: "status"}, false),
		Entry("cannot use Leases", access{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: "bgplb-system"}, false),
		Entry("cannot read Secrets in other namespaces", access{verb: "get", resource: "secrets", namespace: "default"}, false),
		Entry("cannot list Secrets cluster-wide", access{verb: "list", resource: "secrets"}, false),
		Entry("cannot create IPAllocations", access{verb: "create", group: "bgplb.io", resource: "ipallocations"}, false),
		Entry("cannot delete IPAllocations", access{verb: "delete", group: "bgplb.io", resource: "ipallocations"}, false),
		Entry("cannot write Service spec", access{verb: "update", resource: "services", namespace: "default"}, false),
		// L2 mode: the node answering ARP/NDP for a Service's address
		// records it in the Service's bgplb.io/L2Announced condition.
		Entry("patches Service status (the L2Announced condition)", access{verb: "patch", resource: "services", subresource: "status", namespace: "default"}, true),
		Entry("cannot update Service status", access{verb: "update", resource: "services", subresource: "status", namespace: "default"}, false),
		Entry("watches L2Advertisements", access{verb: "watch", group: "bgplb.io", resource: "l2advertisements"}, true),
		Entry("cannot write L2Advertisements", access{verb: "update", group: "bgplb.io", resource: "l2advertisements"}, false),
		Entry("cannot write BGPPeer spec", access{verb: "update", group: "bgplb.io", resource: "bgppeers"}, false),
		Entry("cannot write IPPools", access{verb: "update", group: "bgplb.io", resource: "ippools"}, false),
	)
})

func init() {
	// Keep kubectl from reading a user's kubeconfig: kustomize needs none.
	_ = os.Setenv("KUBECONFIG", os.DevNull)
}
