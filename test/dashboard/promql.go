// Package dashboard checks bgplb's Grafana dashboard
// (charts/bgplb/dashboards/bgplb.json) against the metrics the code
// registers: every metric a panel or variable queries must be one bgplb's
// processes export.
package dashboard

import (
	"strings"
	"unicode"
)

// MetricNames returns the metric names a PromQL expression selects, in
// order of appearance, without duplicates: bare selectors (`up`,
// `x{a="b"}`, `x[5m]`) and `{__name__="x"}`. Function, aggregation and
// keyword names, label names (in matchers, by/without/on/ignoring/group_*
// lists), strings, numbers, durations and Grafana variables ($x, ${x}) are
// not metrics. It is a small lexer, not a full parser: enough for
// dashboards, and it never fails (what it cannot read it skips).
func MetricNames(expr string) []string {
	toks := lex(expr)
	var names []string
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t.kind == punct && t.text == "{":
			// Label matchers: only __name__="x" names a metric.
			end := matching(toks, i, "{", "}")
			for j := i + 1; j+2 < end; j++ {
				if toks[j].kind == ident && toks[j].text == "__name__" && toks[j+1].text == "=" && toks[j+2].kind == str {
					add(toks[j+2].text)
				}
			}
			i = end
		case t.kind == punct && t.text == "[":
			i = matching(toks, i, "[", "]")
		case t.kind == ident && labelListKeywords[t.text]:
			// by (a, b), on (c), group_left (d): label names, not metrics.
			if i+1 < len(toks) && toks[i+1].text == "(" {
				i = matching(toks, i+1, "(", ")")
			}
		case t.kind == ident:
			if keywords[t.text] || aggregations[t.text] {
				continue
			}
			if i+1 < len(toks) && toks[i+1].text == "(" {
				continue // a function call
			}
			add(t.text)
		}
	}
	return names
}

type kind int

const (
	ident kind = iota
	str
	number
	variable
	punct
)

type token struct {
	kind kind
	text string
}

// matching returns the index of the token closing the bracket opened at
// toks[open], or the last index if it is never closed.
func matching(toks []token, open int, opener, closer string) int {
	depth := 0
	for i := open; i < len(toks); i++ {
		if toks[i].kind != punct {
			continue
		}
		switch toks[i].text {
		case opener:
			depth++
		case closer:
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return len(toks) - 1
}

// lex splits a PromQL expression into tokens.
func lex(s string) []token {
	var toks []token
	rs := []rune(s)
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			i++
		case r == '#': // a comment, to the end of the line
			for i < len(rs) && rs[i] != '\n' {
				i++
			}
		case r == '"' || r == '\'' || r == '`':
			j := i + 1
			var b strings.Builder
			for j < len(rs) && rs[j] != r {
				if rs[j] == '\\' && r != '`' && j+1 < len(rs) {
					j++
				}
				b.WriteRune(rs[j])
				j++
			}
			toks = append(toks, token{str, b.String()})
			i = j + 1
		case r == '$':
			j := i + 1
			if j < len(rs) && rs[j] == '{' {
				for j < len(rs) && rs[j] != '}' {
					j++
				}
				j++
			} else {
				for j < len(rs) && isIdentRune(rs[j], false) {
					j++
				}
			}
			toks = append(toks, token{variable, string(rs[i:min(j, len(rs))])})
			i = j
		case isDigit(r) || (r == '.' && i+1 < len(rs) && isDigit(rs[i+1])):
			// Numbers and durations: 0.99, 1e3, 0x1f, 5m, 1h30m.
			j := i
			for j < len(rs) && (isIdentRune(rs[j], false) || rs[j] == '.') {
				j++
			}
			toks = append(toks, token{number, string(rs[i:j])})
			i = j
		case isIdentRune(r, true):
			j := i
			for j < len(rs) && isIdentRune(rs[j], false) {
				j++
			}
			toks = append(toks, token{ident, string(rs[i:j])})
			i = j
		default:
			// Operators of two characters matter only as "=" after __name__;
			// "=~" and "!=" must not read as "=".
			if i+1 < len(rs) && strings.ContainsRune("=!<>", r) && strings.ContainsRune("=~", rs[i+1]) {
				toks = append(toks, token{punct, string(rs[i : i+2])})
				i += 2
				continue
			}
			toks = append(toks, token{punct, string(r)})
			i++
		}
	}
	return toks
}

// isDigit is an ASCII digit: PromQL numbers are ASCII, and a Unicode digit
// that is not would stall the lexer (a fuzz finding).
func isDigit(r rune) bool { return r >= '0' && r <= '9' }

// isIdentRune says whether r may appear in a metric or label name
// (first: whether it may start one).
func isIdentRune(r rune, first bool) bool {
	if r > unicode.MaxASCII {
		return false
	}
	if r == '_' || r == ':' || unicode.IsLetter(r) {
		return true
	}
	return !first && isDigit(r)
}

var (
	// labelListKeywords are followed by a parenthesized list of label names.
	labelListKeywords = map[string]bool{
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	}
	// keywords are PromQL words that are never metric names.
	keywords = map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
		"inf": true, "Inf": true, "nan": true, "NaN": true,
	}
	// aggregations may be followed by by/without before their parentheses
	// (sum by (le) (x)), so they are recognised by name, not by "(".
	aggregations = map[string]bool{
		"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
		"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
		"limitk": true, "limit_ratio": true,
	}
)
