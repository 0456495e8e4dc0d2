package e2e

import (
	"testing"
	"time"
)

// TestSummarize checks how the split-brain spec reads its ARP probes: it
// runs with the unit tests (no cluster needed).
func TestSummarize(t *testing.T) {
	const o, x, y = "o", "x", "y"
	ms := func(d int) time.Duration { return time.Duration(d) * time.Millisecond }
	p := func(at int, macs ...string) arpProbe { return arpProbe{at: ms(at), wait: ms(60), macs: macs} }
	for _, tc := range []struct {
		name                        string
		probes                      []arpProbe
		otherAlone, double, ownerAt time.Duration
		doubles                     int
	}{
		{"clean handover", []arpProbe{p(0, o), p(100, o), p(200), p(300, x), p(400, x)}, ms(300), 0, ms(100), 0},
		{"never handed over", []arpProbe{p(0, o), p(100, o)}, -1, 0, ms(100), 0},
		{"one double probe", []arpProbe{p(0, o), p(100, o, x), p(200, x)}, ms(200), ms(60), ms(100), 1},
		{"doubles apart span both", []arpProbe{p(0, o, x), p(100, x), p(200, o, x), p(300, x)}, ms(100), ms(260), ms(200), 2},
		{"another node, not the owner, doubles", []arpProbe{p(0, o), p(100, x, y)}, ms(100), ms(60), 0, 1},
	} {
		s := summarize(tc.probes, o)
		if s.otherAlone != tc.otherAlone || s.double != tc.double || s.ownerLastSeen != tc.ownerAt || s.doubleProbes != tc.doubles {
			t.Errorf("%s: got otherAlone %v double %v ownerLastSeen %v doubles %d, want %v %v %v %d", tc.name,
				s.otherAlone, s.double, s.ownerLastSeen, s.doubleProbes, tc.otherAlone, tc.double, tc.ownerAt, tc.doubles)
		}
	}
}
