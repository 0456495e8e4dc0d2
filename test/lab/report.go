package lab

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// Helpers the demos (bgplb-lab, bgplb-cluster) print their report with.

// JoinAddrs lists addresses, comma separated.
func JoinAddrs(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// Indent indents every line of a command's output by three spaces.
func Indent(text string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		b.WriteString("   " + l + "\n")
	}
	return b.String()
}

// DescribeCounts prints counts as "key=n" in key order.
func DescribeCounts(counts map[string]int) string {
	var s []string
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		s = append(s, fmt.Sprintf("%s=%d", k, counts[k]))
	}
	return strings.Join(s, " ")
}
