package dashboard

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	// The packages whose init registers bgplb's metrics with
	// controller-runtime's registry, the one both binaries serve (with
	// controller-runtime's own: reconcile, workqueue, REST client, Go and
	// process collectors).
	_ "github.com/bgplb/bgplb/controllers/ipam"
	_ "github.com/bgplb/bgplb/controllers/speaker"
)

var dashboardFile = filepath.Join("..", "..", "charts", "bgplb", "dashboards", "bgplb.json")

// registered says whether a metric of that name is registered with
// controller-runtime's registry. The registry has no list of names, so it
// asks the registry itself: registering a gauge of the same name with a
// help text no real metric has fails exactly when the name is taken.
func registered(name string) (bool, error) {
	probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "bgplb dashboard test probe"})
	err := metrics.Registry.Register(probe)
	if err == nil {
		metrics.Registry.Unregister(probe)
		return false, nil
	}
	if are := (prometheus.AlreadyRegisteredError{}); errors.As(err, &are) ||
		strings.Contains(err.Error(), "previously registered descriptor with the same fully-qualified name") {
		return true, nil
	}
	return false, fmt.Errorf("asking the registry about %q: %w", name, err)
}

// gatheredTypes returns the type of each metric the registry gathers now
// (metrics without labels, and vectors that have series).
func gatheredTypes(t *testing.T) map[string]dto.MetricType {
	t.Helper()
	fams, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]dto.MetricType{}
	for _, f := range fams {
		out[f.GetName()] = f.GetType()
	}
	return out
}

// unknown returns, for each query, the metric names it selects that no
// registered metric provides: a name must be registered as it is, or be
// the _bucket, _sum or _count series of a registered histogram or summary.
// The registry tells a metric's type only for what it gathers now: a
// vector without series yet (most gauges here) is known by name only, so
// a _bucket suffix on one is accepted when its base name is registered.
func unknown(t *testing.T, qs []Query) []string {
	t.Helper()
	types := gatheredTypes(t)
	var out []string
	for _, q := range qs {
		for _, name := range q.Metrics {
			ok, err := registered(name)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				if ty, known := types[name]; known && (ty == dto.MetricType_HISTOGRAM || ty == dto.MetricType_SUMMARY) {
					out = append(out, fmt.Sprintf("%s: %s is a %s; query its _bucket, _sum or _count series", q.Where, name, ty))
				}
				continue
			}
			base, suffix := splitSuffix(name)
			if suffix != "" {
				if ok, err := registered(base); err != nil {
					t.Fatal(err)
				} else if ok {
					if ty, known := types[base]; known && !hasSeries(ty, suffix) {
						out = append(out, fmt.Sprintf("%s: %s is a %s, it has no %s series", q.Where, base, ty, suffix))
					}
					continue
				}
			}
			out = append(out, fmt.Sprintf("%s: %s is not a metric bgplb exports (query %q)", q.Where, name, q.Expr))
		}
	}
	return out
}

// hasSeries says whether a metric of that type has series with that suffix.
func hasSeries(ty dto.MetricType, suffix string) bool {
	switch ty {
	case dto.MetricType_HISTOGRAM:
		return true
	case dto.MetricType_SUMMARY:
		return suffix != "_bucket"
	default:
		return false
	}
}

func splitSuffix(name string) (base, suffix string) {
	for _, s := range []string{"_bucket", "_sum", "_count"} {
		if strings.HasSuffix(name, s) {
			return strings.TrimSuffix(name, s), s
		}
	}
	return name, ""
}

func readDashboard(t *testing.T) []Query {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	qs, err := Queries(b)
	if err != nil {
		t.Fatal(err)
	}
	return qs
}

// Every metric the dashboard queries is one bgplb registers.
func TestDashboardQueriesOnlyExportedMetrics(t *testing.T) {
	qs := readDashboard(t)
	if len(qs) < 15 {
		t.Fatalf("only %d queries read from the dashboard", len(qs))
	}
	for _, u := range unknown(t, qs) {
		t.Error(u)
	}
	for _, q := range qs {
		if len(q.Metrics) == 0 && !strings.HasPrefix(q.Where, "variable") {
			t.Errorf("%s: no metric read from %q", q.Where, q.Expr)
		}
	}
}

// The dashboard shows what issue 16 asks for: pool usage per family,
// allocation failures by reason, sessions per node and peer, announced
// prefixes, reconcile latency and BFD state.
func TestDashboardCoversTheSystem(t *testing.T) {
	qs := readDashboard(t)
	want := map[string]*regexp.Regexp{
		"pool usage per family":            regexp.MustCompile(`bgplb_ipam_pool_addresses\{state="allocated".*by \(pool, family\)`),
		"allocation failures by reason":    regexp.MustCompile(`by \(reason\).*bgplb_ipam_allocation_failures_total`),
		"sessions per node and peer":       regexp.MustCompile(`by \(node, peer\).*bgplb_speaker_session_up`),
		"announced prefixes":               regexp.MustCompile(`bgplb_speaker_announced_prefixes`),
		"speaker reconcile latency":        regexp.MustCompile(`histogram_quantile\(.*bgplb_speaker_reconcile_duration_seconds_bucket`),
		"allocation latency":               regexp.MustCompile(`histogram_quantile\(.*bgplb_ipam_allocation_duration_seconds_bucket`),
		"BFD state per node and peer":      regexp.MustCompile(`by \(node, peer\).*bgplb_speaker_bfd_up`),
		"controller-runtime reconcile p99": regexp.MustCompile(`controller_runtime_reconcile_time_seconds_bucket`),
	}
	for what, re := range want {
		if !slices.ContainsFunc(qs, func(q Query) bool { return re.MatchString(q.Expr) }) {
			t.Errorf("no query shows %s (%s)", what, re)
		}
	}
}

// The check fails on a panel querying a metric bgplb does not export:
// misspelt, another project's, a histogram series of a counter, a
// histogram by its bare name.
func TestUnknownMetricsAreCaught(t *testing.T) {
	dash := []byte(`{
	  "panels": [
	    {"title": "ok", "targets": [{"expr": "sum by (le) (rate(bgplb_speaker_reconcile_duration_seconds_bucket[5m]))"}]},
	    {"title": "typo", "targets": [{"expr": "max by (node, peer) (bgplb_speaker_sessions_up)"}]},
	    {"type": "row", "title": "row", "panels": [
	      {"title": "metallb", "targets": [{"expr": "metallb_bgp_session_up == 0"}]}
	    ]},
	    {"title": "suffix on a counter", "targets": [{"expr": "rate(bgplb_speaker_paths_added_total_bucket[5m])"}]},
	    {"title": "bare histogram", "targets": [{"expr": "bgplb_speaker_reconcile_duration_seconds"}]}
	  ],
	  "templating": {"list": [
	    {"name": "node", "type": "query", "query": {"query": "label_values(bgplb_speaker_sesion_up, node)"}},
	    {"name": "peer", "type": "query", "query": "label_values(bgplb_speaker_session_up, peer)"}
	  ]}
	}`)
	qs, err := Queries(dash)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(unknown(t, qs), "\n")
	for _, want := range []string{
		"panel typo: bgplb_speaker_sessions_up is not",
		"panel metallb: metallb_bgp_session_up is not",
		"panel suffix on a counter: bgplb_speaker_paths_added_total is a COUNTER, it has no _bucket series",
		"panel bare histogram: bgplb_speaker_reconcile_duration_seconds is a HISTOGRAM",
		"variable node: bgplb_speaker_sesion_up is not",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("not reported: %q\nreported:\n%s", want, got)
		}
	}
	for _, ok := range []string{"panel ok:", "variable peer:"} {
		if strings.Contains(got, ok) {
			t.Errorf("a good query reported (%s):\n%s", ok, got)
		}
	}
}

var metricNameCases = []struct {
	expr string
	want []string
}{
	{`up`, []string{"up"}},
	{`sum by (le) (rate(x_bucket{a="b", c=~"$d"}[$__rate_interval]))`, []string{"x_bucket"}},
	{`sum(rate(a_total[5m])) by (node) / ignoring (state) group_left (pool) b`, []string{"a_total", "b"}},
	{`count(s == 0) or vector(0)`, []string{"s"}},
	{`{__name__="by_name", job!="x"}`, []string{"by_name"}},
	{`{__name__=~"regex.*"}`, nil},
	{`histogram_quantile(0.99, sum without (pod) (rate(h_bucket[1h30m] offset 5m)))`, []string{"h_bucket"}},
	{`max_over_time(g[10m:1m]) > bool 1e3 and on (a) h`, []string{"g", "h"}},
	{`topk(5, m{l="sum(x)"}) # trailing comment with fake_metric`, []string{"m"}},
	{`a + a * ${b} - 0x1f`, []string{"a"}},
	{`rate(ns:recorded:rate5m[5m])`, []string{"ns:recorded:rate5m"}},
	{``, nil},
}

func TestMetricNames(t *testing.T) {
	for _, c := range metricNameCases {
		if got := MetricNames(c.expr); !slices.Equal(got, c.want) {
			t.Errorf("MetricNames(%q) = %q, want %q", c.expr, got, c.want)
		}
	}
}

func TestVariableMetrics(t *testing.T) {
	for q, want := range map[string][]string{
		"label_values(bgplb_ipam_pool_addresses, pool)": {"bgplb_ipam_pool_addresses"},
		`label_values(x{job="a, b"}, node)`:             {"x"},
		"label_values(node)":                            nil,
		"query_result(topk(3, sum by (pool) (y)))":      {"y"},
		"label_names()":                                 nil,
		"metrics(bgplb_.*)":                             nil,
	} {
		if got := variableMetrics(q); !slices.Equal(got, want) {
			t.Errorf("variableMetrics(%q) = %q, want %q", q, got, want)
		}
	}
}

var metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

// MetricNames reads any text without panicking and returns only valid,
// distinct metric names.
func FuzzMetricNames(f *testing.F) {
	for _, c := range metricNameCases {
		f.Add(c.expr)
	}
	if b, err := os.ReadFile(dashboardFile); err == nil {
		if qs, err := Queries(b); err == nil {
			for _, q := range qs {
				f.Add(q.Expr)
			}
		}
	}
	f.Add(`{__name__="`)
	f.Add(`sum by (`)
	f.Add(`${unclosed`)
	f.Fuzz(func(t *testing.T, expr string) {
		names := MetricNames(expr)
		seen := map[string]bool{}
		for _, n := range names {
			if !metricName.MatchString(n) && !strings.Contains(expr, `__name__`) {
				t.Errorf("MetricNames(%q) returned %q, not a metric name", expr, n)
			}
			if seen[n] {
				t.Errorf("MetricNames(%q) returned %q twice", expr, n)
			}
			seen[n] = true
		}
	})
}
