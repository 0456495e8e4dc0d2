package api_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/migrate/metallb"
	"github.com/bgplb/bgplb/test/envtest/framework"
)

// The round trip of `bgplb migrate metallb`: what it prints from a MetalLB
// configuration that sets every field of MetalLB's API passes bgplb's
// admission (OpenAPI and CEL), and what it prints disabled would not.
var _ = Describe("bgplb migrate metallb output", func() {
	It("is accepted by the API server, except the objects it disables", func() {
		f, err := os.Open(filepath.Join(framework.RepoRoot(), "internal", "migrate", "metallb", "testdata", "full.yaml"))
		Expect(err).NotTo(HaveOccurred())
		defer f.Close()
		cfg, err := metallb.Read(f)
		Expect(err).NotTo(HaveOccurred())
		res := metallb.Convert(cfg)
		_ = k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.InstallNamespace}})
		kinds := map[string]int{}
		disabled := 0
		for _, it := range res.Items {
			if it.Object == nil {
				continue
			}
			obj := it.Object.DeepCopyObject().(client.Object)
			kind := obj.GetObjectKind().GroupVersionKind().Kind
			err := k8s.Create(ctx, obj, client.DryRunAll)
			if it.Disabled {
				disabled++
				Expect(err).To(HaveOccurred(), "disabled %s %s would have been accepted: it need not be disabled", kind, obj.GetName())
				continue
			}
			Expect(err).NotTo(HaveOccurred(), "%s %s, converted with comments %q", kind, obj.GetName(), it.Comments)
			kinds[kind]++
		}
		Expect(kinds).To(Equal(map[string]int{"IPPool": 4, "BGPPeer": 3, "BGPAdvertisement": 2, "L2Advertisement": 1, "Secret": 2}))
		Expect(disabled).To(Equal(1))
	})
})

// metallbCRD is a schema-less stand-in for one of MetalLB's CRDs: enough
// for the API server to serve the kind at that version.
func metallbCRD(kind, plural string, versions ...string) *unstructured.Unstructured {
	var vs []any
	for i, v := range versions {
		vs = append(vs, map[string]any{"name": v, "served": true, "storage": i == 0,
			"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}})
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": plural + ".metallb.io"},
		"spec": map[string]any{"group": "metallb.io", "scope": "Namespaced",
			"names":    map[string]any{"kind": kind, "listKind": kind + "List", "plural": plural, "singular": strings.ToLower(kind)},
			"versions": vs},
	}}
	return u
}

// Reading MetalLB's objects from a cluster (bgplb migrate metallb without
// -f): the kinds served are read, a missing CRD is reported, and the
// Secret a peer names is fetched and copied into bgplb-system.
var _ = Describe("bgplb migrate metallb from a cluster", func() {
	It("reads MetalLB's objects and the peers' Secrets through the API", func() {
		for _, crd := range []*unstructured.Unstructured{
			metallbCRD("IPAddressPool", "ipaddresspools", "v1beta1"),
			metallbCRD("BGPPeer", "bgppeers", "v1beta2", "v1beta1"),
			metallbCRD("BGPAdvertisement", "bgpadvertisements", "v1beta1"),
		} {
			Expect(k8s.Create(ctx, crd)).To(Succeed())
			DeferCleanup(func() { _ = k8s.Delete(ctx, crd) })
		}
		_ = k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "metallb-system"}})
		objs := `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: live, namespace: metallb-system}
spec: {addresses: [198.51.100.64/28]}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: live-peer, namespace: metallb-system}
spec: {myASN: 64512, peerASN: 64500, peerAddress: 198.51.100.1, passwordSecret: {name: live-auth}}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: live-adv, namespace: metallb-system}
spec: {ipAddressPools: [live]}
`
		Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "metallb-system", Name: "live-auth"},
			Type: corev1.SecretTypeBasicAuth, Data: map[string][]byte{"password": []byte("from-the-cluster")}})).To(Succeed())
		dec := yaml.NewYAMLOrJSONDecoder(strings.NewReader(objs), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); err != nil {
				break
			}
			// The CRDs may take a moment to be served.
			Eventually(func() error { return k8s.Create(ctx, u.DeepCopy()) }).Should(Succeed(), "creating %s", u.GetKind())
		}
		var cfg *metallb.Config
		Eventually(func() error {
			var err error
			cfg, err = metallb.FromCluster(ctx, k8s, "")
			if err == nil && (len(cfg.Pools) != 1 || len(cfg.Peers) != 1 || len(cfg.BGPAdvertisements) != 1) {
				err = fmt.Errorf("read %d pools, %d peers, %d advertisements", len(cfg.Pools), len(cfg.Peers), len(cfg.BGPAdvertisements))
			}
			return err
		}).Should(Succeed())
		Expect(cfg.Skipped).To(ContainElement(ContainSubstring("the cluster serves no Community.metallb.io")))
		var secret *corev1.Secret
		for _, it := range metallb.Convert(cfg).Items {
			if s, ok := it.Object.(*corev1.Secret); ok {
				secret = s
			}
		}
		Expect(secret).NotTo(BeNil())
		Expect(secret.Namespace).To(Equal(v1alpha1.InstallNamespace))
		Expect(secret.StringData).To(HaveKeyWithValue("password", "from-the-cluster"))
	})
})
