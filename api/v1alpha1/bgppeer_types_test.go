package v1alpha1

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestEffectiveTimers(t *testing.T) {
	d := func(s string) *metav1.Duration {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return &metav1.Duration{Duration: v}
	}
	for _, tc := range []struct {
		name                  string
		hold, keepalive       *metav1.Duration
		wantHold, wantKeepalv time.Duration
	}{
		{"neither", nil, nil, 90 * time.Second, 30 * time.Second},
		{"hold only", d("9s"), nil, 9 * time.Second, 3 * time.Second},
		{"hold only, minimum", d("3s"), nil, 3 * time.Second, time.Second},
		{"hold only, third rounds down", d("5s"), nil, 5 * time.Second, time.Second},
		{"hold only, 240s", d("240s"), nil, 240 * time.Second, 80 * time.Second},
		{"hold only, maximum", d("65535s"), nil, 65535 * time.Second, 21845 * time.Second},
		{"hold only, fraction rounds hold up first", d("5500ms"), nil, 6 * time.Second, 2 * time.Second},
		{"keepalive only, 1s", nil, d("1s"), 90 * time.Second, time.Second},
		{"keepalive only, 30s", nil, d("30s"), 90 * time.Second, 30 * time.Second},
		{"keepalive only, 60s keeps 3 per hold", nil, d("60s"), 180 * time.Second, 60 * time.Second},
		{"keepalive only, 90s", nil, d("90s"), 270 * time.Second, 90 * time.Second},
		{"keepalive only, maximum", nil, d("21845s"), 65535 * time.Second, 21845 * time.Second},
		{"keepalive only, fraction rounds down", nil, d("1500ms"), 90 * time.Second, time.Second},
		{"both", d("9s"), d("3s"), 9 * time.Second, 3 * time.Second},
		{"both, keepalive above a third", d("9s"), d("8s"), 9 * time.Second, 8 * time.Second},
		{"both, shortest", d("3s"), d("1s"), 3 * time.Second, time.Second},
		// Admission compares the values as written (8.4s < 8.5s); rounding
		// keepalive down and hold up keeps them apart.
		{"both, fractions stay apart", d("8500ms"), d("8400ms"), 9 * time.Second, 8 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := BGPPeerSpec{HoldTime: tc.hold, KeepaliveTime: tc.keepalive}
			hold, keepalive := s.EffectiveTimers()
			if hold != tc.wantHold || keepalive != tc.wantKeepalv {
				t.Errorf("EffectiveTimers() = %v, %v; want %v, %v", hold, keepalive, tc.wantHold, tc.wantKeepalv)
			}
			if keepalive >= hold || keepalive < time.Second {
				t.Errorf("keepalive %v must be at least 1s and below hold %v", keepalive, hold)
			}
		})
	}
}
