package install_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/test/envtest/framework"
)

// helmTemplate renders charts/bgplb with the Helm of hack/helm/go.mod (the
// one `make lint-chart` uses), as `helm template --include-crds` does for a
// GitOps tool.
func helmTemplate(args ...string) []*unstructured.Unstructured {
	full := append([]string{"tool", "-modfile=hack/helm/go.mod", "helm", "template", "bgplb", "charts/bgplb",
		"--namespace", "bgplb-system", "--include-crds"}, args...)
	cmd := exec.Command("go", full...)
	cmd.Dir = framework.RepoRoot()
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+GinkgoT().TempDir(), "HELM_CACHE_HOME="+GinkgoT().TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	Expect(cmd.Run()).To(Succeed(), "helm template: %s", errb.String())
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

// applyAll server-side applies objects as Helm 4 does (Namespace first),
// under one field manager, and returns how many of each kind it applied.
func applyAll(objs []*unstructured.Unstructured, owner string) map[string]int {
	kinds := map[string]int{}
	for _, first := range []bool{true, false} {
		for _, o := range objs {
			if (o.GetKind() == "Namespace") != first {
				continue
			}
			Expect(k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner(owner), client.ForceOwnership)).
				To(Succeed(), "server-side apply of %s %s", o.GetKind(), o.GetName())
			kinds[o.GetKind()]++
		}
	}
	return kinds
}

func keyOf(o *unstructured.Unstructured) string {
	return o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
}

var _ = Describe("The Helm chart (charts/bgplb)", Ordered, func() {
	const owner = "helm"

	AfterAll(func() {
		// Leave the default install behind for the other specs.
		applyAll(helmTemplate(), owner)
	})

	It("is accepted by the API server with its defaults, and installs the objects config/default does", func() {
		objs := helmTemplate()
		kinds := applyAll(objs, owner)
		generated, err := filepath.Glob(filepath.Join(framework.RepoRoot(), "config", "crd", "bases", "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(kinds["CustomResourceDefinition"]).To(Equal(len(generated)), "every generated CRD")
		for _, k := range []string{"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Deployment", "DaemonSet", "Service"} {
			Expect(kinds).To(HaveKey(k), "the chart should install a %s", k)
		}
		var fromChart, fromKustomize []string
		for _, o := range objs {
			fromChart = append(fromChart, keyOf(o))
			// Each is on the server, with Helm's labels.
			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(o.GroupVersionKind())
			Expect(k8s.Get(ctx, types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}, got)).To(Succeed(), keyOf(o))
			if o.GetKind() != "CustomResourceDefinition" {
				Expect(got.GetLabels()).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "Helm"), keyOf(o))
			}
		}
		for _, o := range render() {
			fromKustomize = append(fromKustomize, keyOf(o))
		}
		Expect(fromChart).To(ConsistOf(fromKustomize))
	})

	It("is accepted with every value set, and the server holds what the values say", func() {
		objs := helmTemplate("-f", filepath.Join("hack", "helm", "testdata", "all-options.yaml"),
			// The monitors need the Prometheus Operator's CRDs, which this
			// API server does not have; the dashboard goes where a namespace exists.
			"--set", "metrics.serviceMonitor.enabled=false", "--set", "metrics.podMonitor.enabled=false",
			"--set", "grafanaDashboard.namespace=bgplb-system",
			// The metrics Services and the speaker's ports may also be owned
			// by the kustomize spec's field manager (specs run in random
			// order): a second port entry under the same name would be
			// invalid. hack/helm checks the ports.
			"--set", "metrics.controllerPort=8443", "--set", "metrics.speakerPort=7472",
			"--set", "speaker.l2HeartbeatPort=7947")
		// all-options.yaml picks bgpBackend frr-k8s with frrK8s.namespace
		// frr-system, which frr-k8s would have created; the chart does not.
		const frrNS = "frr-system"
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: frrNS}}
		Expect(client.IgnoreAlreadyExists(k8s.Create(ctx, ns))).To(Succeed())
		kinds := applyAll(objs, owner)
		Expect(kinds).NotTo(HaveKey("Namespace"))
		Expect(kinds).To(HaveKeyWithValue("ConfigMap", 1))

		role := &rbacv1.Role{}
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: frrNS, Name: "bgplb-speaker-frr-k8s"}, role)).To(Succeed())
		Expect(role.Rules).To(ContainElement(HaveField("Resources", ConsistOf("frrconfigurations"))))
		binding := &rbacv1.RoleBinding{}
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: frrNS, Name: "bgplb-speaker-frr-k8s"}, binding)).To(Succeed())
		Expect(binding.Subjects).To(ConsistOf(rbacv1.Subject{Kind: "ServiceAccount", Name: "bgplb-speaker", Namespace: "bgplb-system"}))
		Expect(k8s.Get(ctx, types.NamespacedName{Name: "bgplb-speaker-frr-k8s"}, &rbacv1.ClusterRole{})).To(Succeed())
		Expect(k8s.Get(ctx, types.NamespacedName{Name: "bgplb-speaker-frr-k8s"}, &rbacv1.ClusterRoleBinding{})).To(Succeed())

		var d appsv1.Deployment
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: "bgplb-system", Name: "bgplb-controller"}, &d)).To(Succeed())
		Expect(*d.Spec.Replicas).To(BeEquivalentTo(3))
		c := d.Spec.Template.Spec.Containers[0]
		Expect(c.Image).To(Equal("registry.example/bgplb:v9.9.9"))
		Expect(c.ImagePullPolicy).To(Equal(corev1.PullAlways))
		Expect(c.Args).To(ContainElements("--default-class=false", "--zap-log-level=debug", "--workers=32"))
		Expect(d.Spec.Template.Spec.PriorityClassName).To(Equal("system-cluster-critical"))
		Expect(d.Labels).To(HaveKeyWithValue("owner", "net-team"))

		var ds appsv1.DaemonSet
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: "bgplb-system", Name: "bgplb-speaker"}, &ds)).To(Succeed())
		ps := ds.Spec.Template.Spec
		Expect(ps.NodeSelector).To(Equal(map[string]string{"bgplb.io/speaker": "true"}))
		Expect(ps.Tolerations).To(HaveLen(1))
		Expect(ps.Containers[0].Args).To(ContainElements("--default-class=false", "--zap-encoder=console", "--drain-time=60s",
			"--bgp-backend=frr-k8s", "--frr-k8s-namespace="+frrNS))
		Expect(ps.HostNetwork).To(BeFalse())
		Expect(ps.DNSPolicy).To(Equal(corev1.DNSClusterFirst))
		Expect(ps.Containers[0].SecurityContext.Capabilities.Add).To(BeEmpty())
		Expect(ps.Containers[0].Resources.Limits.Memory().String()).To(Equal("256Mi"))

		cm := &unstructured.Unstructured{}
		cm.SetGroupVersionKind(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"})
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: "bgplb-system", Name: "bgplb-grafana-dashboard"}, cm)).To(Succeed())
		Expect(cm.GetLabels()).To(HaveKeyWithValue("grafana_dashboard", "1"))
	})
})
