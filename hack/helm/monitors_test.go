package chart

import (
	"bytes"
	"encoding/json"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
)

// The ServiceMonitors and PodMonitors decode into the Prometheus Operator's
// own Go types with unknown fields refused: no misspelt or misplaced field
// that the operator would silently drop. (The envtest API server has no
// Prometheus Operator CRDs to apply them to; this is the check we have.)
func TestMonitorsAreValidPrometheusOperatorObjects(t *testing.T) {
	objs := render(t, "-f", "testdata/all-options.yaml")
	n := 0
	for _, o := range objs {
		var into any
		switch o.kind() {
		case "ServiceMonitor":
			into = &monitoringv1.ServiceMonitor{}
		case "PodMonitor":
			into = &monitoringv1.PodMonitor{}
		default:
			continue
		}
		n++
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(into); err != nil {
			t.Errorf("%s: not a valid %s: %v", o.key(), o.kind(), err)
			continue
		}
		switch m := into.(type) {
		case *monitoringv1.ServiceMonitor:
			ep := m.Spec.Endpoints[0]
			if ep.Port != "https-metrics" || ep.Scheme == nil || *ep.Scheme != "HTTPS" && *ep.Scheme != "https" {
				t.Errorf("%s: endpoint %+v", o.key(), ep)
			}
			if len(ep.RelabelConfigs) == 0 || ep.RelabelConfigs[0].TargetLabel != "node" {
				t.Errorf("%s: relabelings %+v", o.key(), ep.RelabelConfigs)
			}
		case *monitoringv1.PodMonitor:
			ep := m.Spec.PodMetricsEndpoints[0]
			if ep.Port == nil || *ep.Port != "metrics" || ep.Authorization == nil {
				t.Errorf("%s: endpoint %+v", o.key(), ep)
			}
		}
	}
	if n != 4 {
		t.Errorf("%d monitors rendered, want 2 ServiceMonitors and 2 PodMonitors", n)
	}
}
