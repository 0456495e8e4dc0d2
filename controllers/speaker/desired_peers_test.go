package speaker

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp"
)

func TestComputePeers(t *testing.T) {
	secret := func(name string, data map[string]string) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: v1alpha1.InstallNamespace, Name: name}, Data: map[string][]byte{}}
		for k, v := range data {
			s.Data[k] = []byte(v)
		}
		return s
	}
	cases := []struct {
		name      string
		edit      func(w *world)
		wantPeers []string
		wantProbs []string
		wantASN   uint32
		check     func(t *testing.T, d Desired)
	}{
		{name: "peer without node selector selects every node", edit: func(w *world) {},
			wantPeers: []string{"r1"}, wantASN: 65000},
		{name: "peer node selector", edit: func(w *world) {
			w.node.Labels = map[string]string{"rack": "r1"}
			w.peers = []v1alpha1.BGPPeer{
				peer("tor-r1", "198.51.100.1", 65001, 65000, peerNodeSelector(map[string]string{"rack": "r1"})),
				peer("tor-r2", "198.51.100.2", 65001, 65000, peerNodeSelector(map[string]string{"rack": "r2"})),
			}
		}, wantPeers: []string{"tor-r1"}, wantASN: 65000},
		{name: "invalid node selector is a problem", edit: func(w *world) {
			w.peers = []v1alpha1.BGPPeer{peer("r1", "198.51.100.1", 65001, 65000, func(p *v1alpha1.BGPPeer) {
				p.Spec.NodeSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Bogus"}}}
			})}
		}, wantProbs: []string{"BGPPeer/r1:InvalidNodeSelector"}},
		{name: "all fields reach the bgp peer", edit: func(w *world) {
			w.peers = []v1alpha1.BGPPeer{peer("r1", "198.51.100.1", 4200000001, 4200000000, func(p *v1alpha1.BGPPeer) {
				s := &p.Spec
				s.Port = 1179
				s.SourceAddress = "192.0.2.1"
				s.HoldTime = &metav1.Duration{Duration: 9 * time.Second}
				s.KeepaliveTime = &metav1.Duration{Duration: 3 * time.Second}
				s.ConnectRetryTime = &metav1.Duration{Duration: 2 * time.Second}
				s.EBGPMultihop = ptr.To[int32](4)
				s.GracefulRestart = &v1alpha1.GracefulRestart{Enabled: true, RestartTime: &metav1.Duration{Duration: 60 * time.Second}}
				s.BFD = &v1alpha1.BFD{Enabled: true, MinReceiveInterval: &metav1.Duration{Duration: 100 * time.Millisecond},
					MinTransmitInterval: &metav1.Duration{Duration: 200 * time.Millisecond}, DetectMultiplier: ptr.To[int32](5)}
			})}
		}, wantPeers: []string{"r1"}, wantASN: 4200000000, check: func(t *testing.T, d Desired) {
			got := d.State.Peers[0]
			got.Profiles = nil
			want := bgp.Peer{
				Name: "r1", Address: netip.MustParseAddr("198.51.100.1"), ASN: 4200000001, LocalASN: 4200000000,
				Port: 1179, SourceAddress: netip.MustParseAddr("192.0.2.1"),
				HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, ConnectRetryTime: 2 * time.Second,
				EBGPMultihopTTL: 4,
				GracefulRestart: bgp.GracefulRestart{Enabled: true, RestartTime: 60 * time.Second},
				BFD:             bgp.BFD{Enabled: true, MinRx: 100 * time.Millisecond, MinTx: 200 * time.Millisecond, Multiplier: 5},
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("peer = %+v\nwant   %+v", got, want)
			}
		}},
		{name: "hold time alone gets its keepalive from EffectiveTimers (issue #10)", edit: func(w *world) {
			w.peers[0].Spec.HoldTime = &metav1.Duration{Duration: 9 * time.Second}
		}, wantPeers: []string{"r1"}, wantASN: 65000, check: func(t *testing.T, d Desired) {
			if p := d.State.Peers[0]; p.HoldTime != 9*time.Second || p.KeepaliveTime != 3*time.Second {
				t.Errorf("timers %v/%v, want 9s/3s", p.HoldTime, p.KeepaliveTime)
			}
		}},
		{name: "no timers get the defaults", edit: func(w *world) {}, wantPeers: []string{"r1"}, wantASN: 65000, check: func(t *testing.T, d Desired) {
			if p := d.State.Peers[0]; p.HoldTime != 90*time.Second || p.KeepaliveTime != 30*time.Second {
				t.Errorf("timers %v/%v, want 90s/30s", p.HoldTime, p.KeepaliveTime)
			}
		}},
		{name: "disabled graceful restart and BFD stay off", edit: func(w *world) {
			w.peers[0].Spec.GracefulRestart = &v1alpha1.GracefulRestart{Enabled: false, RestartTime: &metav1.Duration{Duration: time.Minute}}
			w.peers[0].Spec.BFD = &v1alpha1.BFD{Enabled: false}
		}, wantPeers: []string{"r1"}, wantASN: 65000, check: func(t *testing.T, d Desired) {
			p := d.State.Peers[0]
			if p.GracefulRestart.Enabled || p.BFD.Enabled {
				t.Errorf("GR/BFD enabled: %+v %+v", p.GracefulRestart, p.BFD)
			}
		}},
		{name: "password from the Secret (default key)", edit: func(w *world) {
			w.peers[0] = peer("r1", "198.51.100.1", 65001, 65000, withPassword("r1-auth", ""))
			w.secrets = []*corev1.Secret{secret("r1-auth", map[string]string{"password": "s3cret"})}
		}, wantPeers: []string{"r1"}, wantASN: 65000, check: func(t *testing.T, d Desired) {
			if d.State.Peers[0].Password != "s3cret" {
				t.Errorf("password = %q", d.State.Peers[0].Password)
			}
		}},
		{name: "password from a named key", edit: func(w *world) {
			w.peers[0] = peer("r1", "198.51.100.1", 65001, 65000, withPassword("r1-auth", "md5"))
			w.secrets = []*corev1.Secret{secret("r1-auth", map[string]string{"md5": "k3y", "password": "no"})}
		}, wantPeers: []string{"r1"}, wantASN: 65000, check: func(t *testing.T, d Desired) {
			if d.State.Peers[0].Password != "k3y" {
				t.Errorf("password = %q", d.State.Peers[0].Password)
			}
		}},
		{name: "missing password Secret: peer left out and reported, others unaffected", edit: func(w *world) {
			w.peers = []v1alpha1.BGPPeer{
				peer("r1", "198.51.100.1", 65001, 65000, withPassword("absent", "")),
				peer("r2", "198.51.100.2", 65001, 65000),
			}
		}, wantPeers: []string{"r2"}, wantProbs: []string{"BGPPeer/r1:PasswordSecretNotFound"}, wantASN: 65000,
			check: func(t *testing.T, d Desired) {
				if len(d.Peers) != 2 || d.Peers[0].Name != "r1" || d.Peers[0].Problem == nil || d.Peers[1].Problem != nil {
					t.Errorf("intents = %+v", d.Peers)
				}
				if got := summary(d); !reflect.DeepEqual(got, paths{"192.0.2.10/32": {"r2": ""}}) {
					t.Errorf("paths = %v", got)
				}
			}},
		{name: "Secret without the key", edit: func(w *world) {
			w.peers[0] = peer("r1", "198.51.100.1", 65001, 65000, withPassword("r1-auth", ""))
			w.secrets = []*corev1.Secret{secret("r1-auth", map[string]string{"other": "x"})}
		}, wantProbs: []string{"BGPPeer/r1:PasswordKeyNotFound"}},
		{name: "password longer than TCP-MD5 allows", edit: func(w *world) {
			w.peers[0] = peer("r1", "198.51.100.1", 65001, 65000, withPassword("r1-auth", ""))
			w.secrets = []*corev1.Secret{secret("r1-auth", map[string]string{"password": strings.Repeat("x", 81)})}
		}, wantProbs: []string{"BGPPeer/r1:InvalidPassword"}},
		{name: "two peers with one address: the second is reported", edit: func(w *world) {
			w.peers = []v1alpha1.BGPPeer{peer("b", "198.51.100.1", 65001, 65000), peer("a", "198.51.100.1", 65002, 65000)}
		}, wantPeers: []string{"a"}, wantProbs: []string{"BGPPeer/b:DuplicateAddress"}, wantASN: 65000},
		{name: "global ASN: the first peer's localASN", edit: func(w *world) {
			w.peers = []v1alpha1.BGPPeer{peer("b", "198.51.100.2", 65001, 64999), peer("a", "198.51.100.1", 65001, 64998)}
		}, wantPeers: []string{"a", "b"}, wantASN: 64998, check: func(t *testing.T, d Desired) {
			if d.State.Peers[0].LocalASN != 64998 || d.State.Peers[1].LocalASN != 64999 {
				t.Errorf("per-peer local ASNs: %+v", d.State.Peers)
			}
		}},
		{name: "global ASN: the previous one is kept while a peer uses it", edit: func(w *world) {
			w.peers = []v1alpha1.BGPPeer{peer("b", "198.51.100.2", 65001, 64999), peer("a", "198.51.100.1", 65001, 64998)}
			w.prevASN = 64999
		}, wantPeers: []string{"a", "b"}, wantASN: 64999},
		{name: "global ASN: the previous one is replaced when no peer uses it", edit: func(w *world) {
			w.prevASN = 64512
		}, wantPeers: []string{"r1"}, wantASN: 65000},
		{name: "no peers left: previous ASN kept so the removal can be applied", edit: func(w *world) {
			w.peers = nil
			w.prevASN = 65000
		}, wantASN: 65000},
		{name: "no peers ever: nothing to run", edit: func(w *world) { w.peers = nil }, wantASN: 0,
			check: func(t *testing.T, d Desired) {
				if d.State.RouterID.IsValid() {
					t.Errorf("router ID %v without ASN", d.State.RouterID)
				}
			}},
		{name: "profiles: one per advertisement reaching the peer", edit: func(w *world) {
			w.peers = append(w.peers, peer("r2", "198.51.100.2", 65001, 65000))
			w.advs = []v1alpha1.BGPAdvertisement{
				adv("a", communities("65000:1")),
				adv("b", toPeers("r2"), communities("65000:2")),
			}
		}, wantPeers: []string{"r1", "r2"}, wantASN: 65000, check: func(t *testing.T, d Desired) {
			var got []string
			for _, p := range d.State.Peers {
				for _, a := range p.Profiles {
					got = append(got, p.Name+":"+attrString(a))
				}
			}
			want := []string{"r1:c=65000:1", "r2:c=65000:1", "r2:c=65000:2"}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("profiles = %v, want %v", got, want)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := base()
			tc.edit(&w)
			d := Compute(w.inputs())
			if got := peerNames(d); !reflect.DeepEqual(got, tc.wantPeers) {
				t.Errorf("peers = %v, want %v", got, tc.wantPeers)
			}
			if got := problemReasons(d); !reflect.DeepEqual(got, tc.wantProbs) {
				t.Errorf("problems = %v, want %v", got, tc.wantProbs)
			}
			if d.State.ASN != tc.wantASN {
				t.Errorf("ASN = %d, want %d", d.State.ASN, tc.wantASN)
			}
			if tc.check != nil {
				tc.check(t, d)
			}
		})
	}
}

func TestRouterID(t *testing.T) {
	addr := func(typ corev1.NodeAddressType, a string) corev1.NodeAddress {
		return corev1.NodeAddress{Type: typ, Address: a}
	}
	cases := []struct {
		name  string
		addrs []corev1.NodeAddress
		want  string
	}{
		{"InternalIP", []corev1.NodeAddress{addr(corev1.NodeHostName, "n"), addr(corev1.NodeExternalIP, "203.0.113.1"), addr(corev1.NodeInternalIP, "192.0.2.7")}, "192.0.2.7"},
		{"IPv4 InternalIP after an IPv6 one", []corev1.NodeAddress{addr(corev1.NodeInternalIP, "2001:db8::7"), addr(corev1.NodeInternalIP, "192.0.2.8")}, "192.0.2.8"},
		{"fallback: any IPv4 address", []corev1.NodeAddress{addr(corev1.NodeInternalIP, "2001:db8::7"), addr(corev1.NodeExternalIP, "203.0.113.9")}, "203.0.113.9"},
		{"IPv4-mapped IPv6 counts as IPv4", []corev1.NodeAddress{addr(corev1.NodeInternalIP, "::ffff:192.0.2.9")}, "192.0.2.9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := RouterID(node(nil, tc.addrs...)); got.String() != tc.want {
				t.Errorf("RouterID = %v, want %s", got, tc.want)
			}
		})
	}
	t.Run("IPv6-only: stable, IPv4, distinct per node", func(t *testing.T) {
		a := node(nil, addr(corev1.NodeInternalIP, "2001:db8::1"))
		b := a.DeepCopy()
		b.Name = "node-b"
		ida, idb := RouterID(a), RouterID(b)
		if !ida.Is4() || ida != RouterID(a.DeepCopy()) || ida == idb || ida.IsUnspecified() {
			t.Errorf("router IDs %v %v", ida, idb)
		}
	})
}

// ---- drain ---------------------------------------------------------------

func TestComputeDrain(t *testing.T) {
	excluded := map[string]string{corev1.LabelNodeExcludeBalancers: ""}
	cases := []struct {
		name        string
		labels      map[string]string
		drainAt     time.Time
		now         time.Time
		wantPhase   DrainPhase
		wantPaths   paths
		wantRequeue time.Duration
	}{
		{"not excluded", nil, time.Time{}, t0, DrainNone, paths{"192.0.2.10/32": {"r1": "c=65000:1"}}, 0},
		{"just excluded: GRACEFUL_SHUTDOWN added, drain starts now", excluded, time.Time{}, t0, DrainGracefulShutdown,
			paths{"192.0.2.10/32": {"r1": "c=65000:1,graceful-shutdown"}}, 30 * time.Second},
		{"within the drain time", excluded, t0, t0.Add(20 * time.Second), DrainGracefulShutdown,
			paths{"192.0.2.10/32": {"r1": "c=65000:1,graceful-shutdown"}}, 10 * time.Second},
		{"drain time over: withdrawn", excluded, t0, t0.Add(30 * time.Second), DrainWithdrawn, paths{}, 0},
		{"long after", excluded, t0, t0.Add(time.Hour), DrainWithdrawn, paths{}, 0},
		{"label value does not matter", map[string]string{corev1.LabelNodeExcludeBalancers: "true"}, t0, t0, DrainGracefulShutdown,
			paths{"192.0.2.10/32": {"r1": "c=65000:1,graceful-shutdown"}}, 30 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := base()
			w.node.Labels = tc.labels
			w.advs = []v1alpha1.BGPAdvertisement{adv("a", communities("65000:1"))}
			w.drainAt, w.now = tc.drainAt, tc.now
			d := Compute(w.inputs())
			if d.Phase != tc.wantPhase {
				t.Errorf("phase = %q, want %q", d.Phase, tc.wantPhase)
			}
			if got := summary(d); !reflect.DeepEqual(got, tc.wantPaths) {
				t.Errorf("paths = %v, want %v", got, tc.wantPaths)
			}
			if d.RequeueAfter != tc.wantRequeue {
				t.Errorf("requeue after %v, want %v", d.RequeueAfter, tc.wantRequeue)
			}
			if len(d.State.Peers) != 1 {
				t.Errorf("sessions must stay up while draining: peers %v", peerNames(d))
			}
			if tc.wantPhase == DrainGracefulShutdown {
				if prof := d.State.Peers[0].Profiles; len(prof) != 1 || !strings.Contains(attrString(prof[0]), "graceful-shutdown") {
					t.Errorf("profiles not drained: %v", prof)
				}
			}
		})
	}
	t.Run("zero drain time withdraws at once", func(t *testing.T) {
		w := base()
		w.node.Labels = excluded
		w.drain = 0
		if d := Compute(w.inputs()); d.Phase != DrainWithdrawn || len(d.State.Paths) != 0 {
			t.Errorf("phase %q paths %v", d.Phase, summary(d))
		}
	})
}

func TestNextDrainSince(t *testing.T) {
	later := t0.Add(time.Minute)
	cases := []struct {
		name                             string
		excluded                         bool
		remembered, persisted, now, want time.Time
	}{
		{"not excluded forgets", false, t0, t0, later, time.Time{}},
		{"remembered wins", true, t0, t0.Add(-time.Hour), later, t0},
		{"restart resumes the persisted drain", true, time.Time{}, t0, later, t0},
		{"persisted in the future is ignored", true, time.Time{}, later.Add(time.Hour), later, later},
		{"new drain starts now", true, time.Time{}, time.Time{}, later, later},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := NextDrainSince(tc.excluded, tc.remembered, tc.persisted, tc.now); !got.Equal(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
