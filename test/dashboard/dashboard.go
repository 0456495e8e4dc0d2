package dashboard

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// Query is one PromQL query of a dashboard and the metrics it selects.
type Query struct {
	// Where names the panel (by title) or the variable it belongs to.
	Where   string
	Expr    string
	Metrics []string
}

type dashboardJSON struct {
	Panels     []panelJSON `json:"panels"`
	Templating struct {
		List []variableJSON `json:"list"`
	} `json:"templating"`
}

type panelJSON struct {
	Title   string                  `json:"title"`
	Targets []struct{ Expr string } `json:"targets"`
	// Panels of a collapsed row.
	Panels []panelJSON `json:"panels"`
}

type variableJSON struct {
	Name  string          `json:"name"`
	Type  string          `json:"type"`
	Query json.RawMessage `json:"query"`
}

// Queries returns every PromQL query of a Grafana dashboard: the panels'
// targets (rows' nested panels included) and the query variables.
func Queries(dashboard []byte) ([]Query, error) {
	var d dashboardJSON
	if err := json.Unmarshal(dashboard, &d); err != nil {
		return nil, fmt.Errorf("reading the dashboard: %w", err)
	}
	var out []Query
	var walk func([]panelJSON)
	walk = func(ps []panelJSON) {
		for _, p := range ps {
			for _, t := range p.Targets {
				if strings.TrimSpace(t.Expr) != "" {
					out = append(out, Query{Where: "panel " + p.Title, Expr: t.Expr, Metrics: MetricNames(t.Expr)})
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, err := variableQuery(v.Query)
		if err != nil {
			return nil, fmt.Errorf("variable %s: %w", v.Name, err)
		}
		out = append(out, Query{Where: "variable " + v.Name, Expr: q, Metrics: variableMetrics(q)})
	}
	return out, nil
}

// variableQuery reads a variable's query: a string (older Grafana) or an
// object with a "query" string.
func variableQuery(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var o struct{ Query string }
	if err := json.Unmarshal(raw, &o); err != nil {
		return "", fmt.Errorf("reading its query: %w", err)
	}
	return o.Query, nil
}

var grafanaFunc = regexp.MustCompile(`^\s*(label_values|query_result|label_names|metrics)\s*\((.*)\)\s*$`)

// variableMetrics returns the metrics a Grafana Prometheus variable query
// selects: label_values(expr, label) and query_result(expr) hold PromQL;
// label_values(label), label_names() and metrics(regex) select none.
func variableMetrics(q string) []string {
	m := grafanaFunc.FindStringSubmatch(q)
	if m == nil {
		return MetricNames(q)
	}
	switch args := m[2]; m[1] {
	case "query_result":
		return MetricNames(args)
	case "label_values":
		if i := strings.LastIndex(args, ","); i >= 0 {
			return MetricNames(args[:i])
		}
	}
	return nil
}
