package chart

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The chart's default render and config/default are the same objects:
// same set (kind, namespace, name), same content, except Helm's own labels
// and one thing Helm cannot do: it installs crds/ as they are, without the
// app.kubernetes.io/part-of label kustomize adds to every object.
func TestDefaultRenderMatchesKustomize(t *testing.T) {
	matchKustomize(t, "default")
}

// bgpBackend=frr-k8s renders what config/frr-k8s (config/default plus the
// component config/components/frr-k8s) does: the speaker's flags, no host
// network, no added capability, and its RBAC in frr-k8s-system.
func TestFRRK8sRenderMatchesKustomize(t *testing.T) {
	got := matchKustomize(t, "frr-k8s", "--set", "bgpBackend=frr-k8s")
	// Guard against both sides losing the component alike.
	for _, kind := range []string{"Role", "RoleBinding"} {
		if o := find(t, got, kind, "bgplb-speaker-frr-k8s"); str(o, "metadata", "namespace") != "frr-k8s-system" {
			t.Errorf("%s bgplb-speaker-frr-k8s in namespace %q", kind, str(o, "metadata", "namespace"))
		}
	}
	find(t, got, "ClusterRole", "bgplb-speaker-frr-k8s")
	find(t, got, "ClusterRoleBinding", "bgplb-speaker-frr-k8s")
	spk := find(t, got, "DaemonSet", "bgplb-speaker")
	if !slices.Contains(args(spk), "--bgp-backend=frr-k8s") || get(spk, "spec", "template", "spec", "hostNetwork") != false {
		t.Errorf("speaker args %q, hostNetwork %v", args(spk), get(spk, "spec", "template", "spec", "hostNetwork"))
	}
}

// matchKustomize compares the chart rendered with args to config/<overlay>
// and returns the chart's objects.
func matchKustomize(t *testing.T, overlay string, args ...string) []obj {
	t.Helper()
	want := byKey(t, kustomize(t, overlay))
	rendered := render(t, args...)
	got := byKey(t, rendered)
	if len(want) < 15 {
		t.Fatalf("config/%s built only %d objects: %v", overlay, len(want), keys(want))
	}
	for _, k := range keys(want) {
		if _, ok := got[k]; !ok {
			t.Errorf("config/%s has %s, the chart does not", overlay, k)
		}
	}
	for _, k := range keys(got) {
		if _, ok := want[k]; !ok {
			t.Errorf("the chart renders %s, config/%s does not", k, overlay)
		}
	}
	for _, k := range keys(want) {
		w, g := want[k], got[k]
		if g == nil {
			continue
		}
		if w.kind() == "CustomResourceDefinition" {
			dropLabels(w, "app.kubernetes.io/part-of")
		} else {
			labels, _ := get(g, "metadata", "labels").(map[string]any)
			for _, l := range helmLabels {
				if labels[l] == nil {
					t.Errorf("%s: no Helm label %s", k, l)
				}
			}
		}
		dropLabels(g, helmLabels...)
		for _, d := range diff(k, map[string]any(w), map[string]any(g)) {
			t.Error(d)
		}
	}
	return rendered
}

// The CRDs in charts/bgplb/crds are byte for byte the generated ones
// (make chart-sync copies them; this says so when someone forgot).
func TestCRDsAreTheGeneratedFiles(t *testing.T) {
	gen, err := os.ReadDir(repoRoot + "/config/crd/bases")
	if err != nil {
		t.Fatal(err)
	}
	inChart, err := os.ReadDir(chartDir + "/crds")
	if err != nil {
		t.Fatal(err)
	}
	if len(gen) != len(inChart) {
		t.Errorf("%d generated CRDs, %d in the chart: run make chart-sync", len(gen), len(inChart))
	}
	for _, f := range gen {
		a, err := os.ReadFile(repoRoot + "/config/crd/bases/" + f.Name())
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(chartDir + "/crds/" + f.Name())
		if err != nil || string(a) != string(b) {
			t.Errorf("charts/bgplb/crds/%s differs from config/crd/bases (or is missing): run make chart-sync", f.Name())
		}
	}
	for _, pair := range [][2]string{
		{"/config/rbac/controller/role.yaml", "/files/rbac/controller-role.yaml"},
		{"/config/rbac/speaker/role.yaml", "/files/rbac/speaker-role.yaml"},
		{"/config/components/frr-k8s/rbac.yaml", "/files/rbac/frr-k8s-rbac.yaml"},
	} {
		a, errA := os.ReadFile(repoRoot + pair[0])
		b, errB := os.ReadFile(chartDir + pair[1])
		if errA != nil || errB != nil || string(a) != string(b) {
			t.Errorf("charts/bgplb%s differs from %s: run make chart-sync", pair[1], pair[0])
		}
	}
}

// find returns the rendered object of a kind and name, failing if absent.
func find(t *testing.T, objs []obj, kind, name string) obj {
	t.Helper()
	for _, o := range objs {
		if o.kind() == kind && o.name() == name {
			return o
		}
	}
	t.Fatalf("no %s %s rendered", kind, name)
	return nil
}

func has(objs []obj, kind string) bool {
	return slices.ContainsFunc(objs, func(o obj) bool { return o.kind() == kind })
}

// container returns the first container of a workload.
func container(o obj) map[string]any {
	cs, _ := get(o, "spec", "template", "spec", "containers").([]any)
	if len(cs) == 0 {
		return nil
	}
	c, _ := cs[0].(map[string]any)
	return c
}

func args(o obj) []string {
	var out []string
	for _, a := range container(o)["args"].([]any) {
		out = append(out, a.(string))
	}
	return out
}

func portsOf(o obj) map[string]any {
	out := map[string]any{}
	for _, p := range container(o)["ports"].([]any) {
		m := p.(map[string]any)
		out[m["name"].(string)] = m["containerPort"]
	}
	return out
}

func equalJSON(a, b any) bool { return len(diff("", a, b)) == 0 }

// Every value in hack/helm/testdata/all-options.yaml lands where it should.
func TestEveryValue(t *testing.T) {
	objs := render(t, "-f", "testdata/all-options.yaml")
	ctrl := find(t, objs, "Deployment", "bgplb-controller")
	spk := find(t, objs, "DaemonSet", "bgplb-speaker")

	t.Run("image", func(t *testing.T) {
		for _, w := range []obj{ctrl, spk} {
			c := container(w)
			if c["image"] != "registry.example/bgplb:v9.9.9" || c["imagePullPolicy"] != "Always" {
				t.Errorf("%s: image %v, pull policy %v", w.name(), c["image"], c["imagePullPolicy"])
			}
			if s := get(w, "spec", "template", "spec", "imagePullSecrets"); !equalJSON(s, []any{map[string]any{"name": "regcred"}}) {
				t.Errorf("%s: imagePullSecrets %v", w.name(), s)
			}
		}
	})
	t.Run("namespace.create=false renders no Namespace", func(t *testing.T) {
		if has(objs, "Namespace") {
			t.Error("Namespace rendered")
		}
	})
	t.Run("defaultClass, log, extraArgs, metrics ports reach both binaries", func(t *testing.T) {
		wantC := []string{"controller", "--leader-elect", "--metrics-bind-address=:9443", "--health-probe-bind-address=:8081",
			"--zap-encoder=console", "--zap-log-level=debug", "--default-class=false", "--workers=32"}
		if got := args(ctrl); !slices.Equal(got, wantC) {
			t.Errorf("controller args %q, want %q", got, wantC)
		}
		wantS := []string{"speaker", "--metrics-bind-address=:9472", "--health-probe-bind-address=:7473",
			"--zap-encoder=console", "--zap-log-level=debug", "--default-class=false", "--l2-heartbeat-port=7948",
			"--bgp-backend=frr-k8s", "--frr-k8s-namespace=frr-system", "--drain-time=60s"}
		if got := args(spk); !slices.Equal(got, wantS) {
			t.Errorf("speaker args %q, want %q", got, wantS)
		}
		if p := portsOf(ctrl)["metrics"]; p != float64(9443) {
			t.Errorf("controller metrics port %v", p)
		}
		if p := portsOf(spk)["l2-heartbeat"]; p != float64(7948) {
			t.Errorf("speaker l2-heartbeat port %v", p)
		}
		if p := portsOf(spk)["metrics"]; p != float64(9472) {
			t.Errorf("speaker metrics port %v", p)
		}
		svc := find(t, objs, "Service", "bgplb-speaker-metrics")
		if p := get(svc, "spec", "ports").([]any)[0].(map[string]any)["port"]; p != float64(9472) {
			t.Errorf("speaker metrics Service port %v", p)
		}
	})
	t.Run("bgpBackend=frr-k8s: the speaker's RBAC in frrK8s.namespace, bound to its ServiceAccount", func(t *testing.T) {
		for _, kind := range []string{"Role", "RoleBinding"} {
			if ns := str(find(t, objs, kind, "bgplb-speaker-frr-k8s"), "metadata", "namespace"); ns != "frr-system" {
				t.Errorf("%s bgplb-speaker-frr-k8s in namespace %q, want frr-system", kind, ns)
			}
		}
		for _, kind := range []string{"RoleBinding", "ClusterRoleBinding"} {
			want := []any{map[string]any{"kind": "ServiceAccount", "name": "bgplb-speaker", "namespace": namespace}}
			if s := get(find(t, objs, kind, "bgplb-speaker-frr-k8s"), "subjects"); !equalJSON(want, s) {
				t.Errorf("%s bgplb-speaker-frr-k8s subjects %v", kind, s)
			}
		}
		ps := get(spk, "spec", "template", "spec").(map[string]any)
		if ps["hostNetwork"] != false || ps["dnsPolicy"] != "ClusterFirst" {
			t.Errorf("speaker hostNetwork %v, dnsPolicy %v", ps["hostNetwork"], ps["dnsPolicy"])
		}
		if add := get(container(spk), "securityContext", "capabilities", "add"); !equalJSON([]any{}, add) {
			t.Errorf("speaker adds capabilities %v", add)
		}
	})
	t.Run("controller pod settings", func(t *testing.T) {
		if r := get(ctrl, "spec", "replicas"); r != float64(3) {
			t.Errorf("replicas %v", r)
		}
		ps := get(ctrl, "spec", "template", "spec").(map[string]any)
		checkPod(t, ctrl, ps, "system-cluster-critical", map[string]any{"node-role.kubernetes.io/control-plane": ""}, "control")
		if get(ps, "affinity", "podAntiAffinity") != nil || get(ps, "affinity", "nodeAffinity") == nil {
			t.Errorf("controller affinity not replaced: %v", ps["affinity"])
		}
		if !equalJSON(container(ctrl)["resources"], map[string]any{
			"requests": map[string]any{"cpu": "200m", "memory": "128Mi"}, "limits": map[string]any{"memory": "1Gi"}}) {
			t.Errorf("controller resources %v", container(ctrl)["resources"])
		}
	})
	t.Run("speaker pod settings", func(t *testing.T) {
		ps := get(spk, "spec", "template", "spec").(map[string]any)
		checkPod(t, spk, ps, "", map[string]any{"bgplb.io/speaker": "true"}, "edge")
		if tol := ps["tolerations"].([]any); len(tol) != 1 || tol[0].(map[string]any)["key"] != "dedicated" {
			t.Errorf("speaker tolerations %v", tol)
		}
		if get(ps, "affinity", "nodeAffinity") == nil {
			t.Errorf("speaker affinity %v", ps["affinity"])
		}
		if !equalJSON(container(spk)["resources"], map[string]any{
			"requests": map[string]any{"cpu": "100m", "memory": "96Mi"}, "limits": map[string]any{"memory": "256Mi"}}) {
			t.Errorf("speaker resources %v", container(spk)["resources"])
		}
	})
	t.Run("commonLabels and commonAnnotations on every rendered object but the CRDs", func(t *testing.T) {
		for _, o := range objs {
			if o.kind() == "CustomResourceDefinition" {
				continue
			}
			if l := str(o, "metadata", "labels", "owner"); l != "net-team" {
				t.Errorf("%s: label owner=%q", o.key(), l)
			}
			if a := str(o, "metadata", "annotations", "example.com/ticket"); a != "NET-1" {
				t.Errorf("%s: annotation example.com/ticket=%q", o.key(), a)
			}
		}
	})
	t.Run("ServiceMonitors and PodMonitors, with the node relabeling first", func(t *testing.T) {
		for _, kind := range []string{"ServiceMonitor", "PodMonitor"} {
			for _, c := range []string{"controller", "speaker"} {
				m := find(t, objs, kind, "bgplb-"+c)
				if str(m, "metadata", "labels", "release") != "prometheus" {
					t.Errorf("%s %s: labels %v", kind, c, get(m, "metadata", "labels"))
				}
				if str(m, "spec", "selector", "matchLabels", "app.kubernetes.io/component") != c {
					t.Errorf("%s %s: selector %v", kind, c, get(m, "spec", "selector"))
				}
				eps := "endpoints"
				if kind == "PodMonitor" {
					eps = "podMetricsEndpoints"
				}
				ep := get(m, "spec", eps).([]any)[0].(map[string]any)
				rl := ep["relabelings"].([]any)
				if len(rl) != 2 || rl[0].(map[string]any)["targetLabel"] != "node" || rl[1].(map[string]any)["targetLabel"] != "cluster" {
					t.Errorf("%s %s: relabelings %v", kind, c, rl)
				}
				if ep["interval"] != "30s" || ep["scrapeTimeout"] != "10s" {
					t.Errorf("%s %s: interval %v timeout %v", kind, c, ep["interval"], ep["scrapeTimeout"])
				}
				if kind == "PodMonitor" && get(ep, "authorization", "credentials", "name") != "prometheus-token" {
					t.Errorf("PodMonitor %s: authorization %v", c, ep["authorization"])
				}
			}
		}
	})
	t.Run("the Grafana dashboard ConfigMap carries the dashboard file", func(t *testing.T) {
		cm := find(t, objs, "ConfigMap", "bgplb-grafana-dashboard")
		if str(cm, "metadata", "namespace") != "monitoring" || str(cm, "metadata", "labels", "grafana_dashboard") != "1" ||
			str(cm, "metadata", "annotations", "grafana_folder") != "Networking" {
			t.Errorf("dashboard ConfigMap metadata %v", cm["metadata"])
		}
		file, err := os.ReadFile(chartDir + "/dashboards/bgplb.json")
		if err != nil {
			t.Fatal(err)
		}
		if got := str(cm, "data", "bgplb.json"); strings.TrimSpace(got) != strings.TrimSpace(string(file)) {
			t.Errorf("ConfigMap data differs from dashboards/bgplb.json (%d vs %d bytes)", len(got), len(file))
		}
	})
}

// checkPod checks the pod-level values shared by both workloads.
func checkPod(t *testing.T, w obj, ps map[string]any, priority string, nodeSelector map[string]any, tier string) {
	t.Helper()
	if p, _ := ps["priorityClassName"].(string); p != priority {
		t.Errorf("%s: priorityClassName %q, want %q", w.name(), p, priority)
	}
	if !reflect.DeepEqual(ps["nodeSelector"], nodeSelector) {
		t.Errorf("%s: nodeSelector %v", w.name(), ps["nodeSelector"])
	}
	if str(w, "spec", "template", "metadata", "labels", "tier") != tier {
		t.Errorf("%s: pod labels %v", w.name(), get(w, "spec", "template", "metadata", "labels"))
	}
	if get(w, "spec", "template", "metadata", "annotations") == nil {
		t.Errorf("%s: no pod annotations", w.name())
	}
	// Selectors never change with values (they are immutable).
	if sel := get(w, "spec", "selector", "matchLabels").(map[string]any); len(sel) != 2 {
		t.Errorf("%s: selector %v", w.name(), sel)
	}
}

// metrics.enabled=false turns the endpoints off and renders no Service or
// monitor that would scrape nothing, even with the monitors asked for.
func TestMetricsDisabled(t *testing.T) {
	objs := render(t, "--set", "metrics.enabled=false", "--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.podMonitor.enabled=true")
	for _, kind := range []string{"ServiceMonitor", "PodMonitor", "Service"} {
		if has(objs, kind) {
			t.Errorf("%s rendered with metrics off", kind)
		}
	}
	for _, w := range []obj{find(t, objs, "Deployment", "bgplb-controller"), find(t, objs, "DaemonSet", "bgplb-speaker")} {
		if !slices.Contains(args(w), "--metrics-bind-address=0") {
			t.Errorf("%s args %q", w.name(), args(w))
		}
		if _, ok := portsOf(w)["metrics"]; ok {
			t.Errorf("%s still declares a metrics port", w.name())
		}
	}
}

// Values the chart must refuse, with a message naming the problem, rather
// than render something that does not do what was asked.
func TestRefused(t *testing.T) {
	cases := []struct {
		name, ns string
		args     []string
		want     string
	}{
		{"another namespace", "default", nil, "must be installed in the namespace bgplb-system"},
		{"an unknown backend", namespace, []string{"--set", "bgpBackend=bird"}, "bgpBackend"},
		{"a bad frr-k8s namespace", namespace, []string{"--set", "bgpBackend=frr-k8s", "--set", "frrK8s.namespace=FRR_K8s"}, "frrK8s"},
		{"a misspelt key", namespace, []string{"--set", "controller.replica=3"}, "replica"},
		{"an unknown log format", namespace, []string{"--set", "log.format=xml"}, "format"},
		{"a bad log level", namespace, []string{"--set", "log.level=verbose"}, "level"},
		{"negative replicas", namespace, []string{"--set", "controller.replicas=-1"}, "replicas"},
		{"a port out of range", namespace, []string{"--set", "metrics.speakerPort=70000"}, "speakerPort"},
		{"a bad pull policy", namespace, []string{"--set", "image.pullPolicy=Sometimes"}, "pullPolicy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, err := template(t, c.ns, c.args...)
			if err == nil {
				t.Fatalf("rendered; want an error mentioning %q", c.want)
			}
			if msg := errText(err, stderr); !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not mention %q", msg, c.want)
			}
		})
	}
}
