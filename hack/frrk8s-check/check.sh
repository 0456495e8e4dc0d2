#!/usr/bin/env bash
# Does the installed FRR accept what frr-k8s renders from bgplb's
# FRRConfiguration? Renders a sample (main.go), converts it with frr-k8s's
# own code and template (a scratch copy of the pinned module with one
# exported helper added, under a temp dir; nothing of frr-k8s is copied into
# this repository), and runs frr-reload.py --test on the result (Debian:
# frr-pythontools). Needs no daemons, namespaces or root.
set -euo pipefail
cd "$(dirname "$0")/../.."
reload=${FRR_RELOAD:-/usr/lib/frr/frr-reload.py}
[ -x "$reload" ] || { echo "need $reload (apt-get install frr-pythontools)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go run ./hack/frrk8s-check > "$tmp/frrconfiguration.yaml"
src=$(go list -m -f '{{.Dir}}' github.com/metallb/frr-k8s)
cp -r "$src" "$tmp/frr-k8s" && chmod -R u+w "$tmp/frr-k8s"
cat > "$tmp/frr-k8s/internal/frr/zz_bgplb_export.go" <<'GO'
package frr

// TemplateConfigForBGPLB exposes the template rendering for bgplb's check.
func TemplateConfigForBGPLB(c *Config) (string, error) { return templateConfig(c) }
GO
cat > "$tmp/frr-k8s/internal/controller/zz_bgplb_test.go" <<'GO'
package controller

import (
	"os"
	"testing"

	"github.com/metallb/frr-k8s/api/v1beta1"
	"github.com/metallb/frr-k8s/internal/frr"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

func TestBGPLBRender(t *testing.T) {
	b, err := os.ReadFile(os.Getenv("BGPLB_CFG"))
	if err != nil {
		t.Fatal(err)
	}
	var c v1beta1.FRRConfiguration
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	secrets := map[string]corev1.Secret{}
	for _, r := range c.Spec.BGP.Routers {
		for _, n := range r.Neighbors {
			if n.PasswordSecret.Name != "" {
				secrets[n.PasswordSecret.Name] = corev1.Secret{Type: corev1.SecretTypeBasicAuth, Data: map[string][]byte{"password": []byte("s3cret")}}
			}
		}
	}
	cfg, err := apiToFRR(ClusterResources{FRRConfigs: []v1beta1.FRRConfiguration{c}, PasswordSecrets: secrets}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Hostname = "node-a" // the controller sets it from its node
	out, err := frr.TemplateConfigForBGPLB(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(os.Getenv("BGPLB_OUT"), []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}
GO
(cd "$tmp/frr-k8s" && BGPLB_CFG="$tmp/frrconfiguration.yaml" BGPLB_OUT="$tmp/frr.conf" go test ./internal/controller/ -run TestBGPLBRender -count=1 >/dev/null)
frr=$(dpkg-query -W -f '${Version}' frr 2>/dev/null || echo unknown)
printf 'frr version %s\n!\nend\n' "${frr%%-*}" > "$tmp/running.conf"
echo "frr-k8s rendered $(wc -l < "$tmp/frr.conf") lines of FRR configuration"
if "$reload" --test --input "$tmp/running.conf" "$tmp/frr.conf" > "$tmp/reload.out" 2>&1; then
	echo "frr-reload.py --test: accepted by FRR $frr"
else
	grep -iE 'error|%' "$tmp/reload.out" >&2
	echo "frr-reload.py --test: REJECTED by FRR $frr" >&2
	exit 1
fi
