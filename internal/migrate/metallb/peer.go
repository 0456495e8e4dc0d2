package metallb

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// DefaultNamespace is where MetalLB is usually installed; a passwordSecret
// without a namespace is looked up in the peer's namespace, else here.
const DefaultNamespace = "metallb-system"

// passwordKey is the Secret key both MetalLB and bgplb read the password from.
const passwordKey = "password"

// ebgpMultihopTTL is the TTL MetalLB's ebgpMultiHop: true amounts to (FRR's
// "ebgp-multihop" without a TTL).
const ebgpMultihopTTL = 255

// peerContext holds what converting peers looks up.
type peerContext struct {
	cfg     *Config
	bfd     map[string]*BFDProfile
	emitted map[string]bool // Secrets already written, by name
}

func newPeerContext(cfg *Config) *peerContext {
	pc := &peerContext{cfg: cfg, bfd: map[string]*BFDProfile{}, emitted: map[string]bool{}}
	for i := range cfg.BFDProfiles {
		pc.bfd[cfg.BFDProfiles[i].Name] = &cfg.BFDProfiles[i]
	}
	return pc
}

// convert returns the bgplb BGPPeer for a MetalLB peer, preceded by the
// Secret holding its password when there is one to write.
func (pc *peerContext) convert(p *BGPPeer) []Item {
	it := Item{Comments: []string{"From MetalLB BGPPeer " + source(p.ObjectMeta)}}
	note := func(format string, args ...any) { it.Comments = append(it.Comments, fmt.Sprintf(format, args...)) }
	disable := func(format string, args ...any) {
		it.Disabled = true
		note("DISABLED, finish by hand: "+format, args...)
	}
	s := &p.Spec
	out := &v1alpha1.BGPPeer{ObjectMeta: objectMeta(p.ObjectMeta)}
	out.APIVersion, out.Kind = v1alpha1.GroupVersion.String(), "BGPPeer"
	spec := &out.Spec
	spec.Address = s.Address
	if s.Address == "" {
		disable("spec.interface %q (unnumbered BGP): bgplb peers with an address only; set spec.address", s.Interface)
	} else if s.Interface != "" {
		note("spec.interface %q not mapped: bgplb peers with spec.address and lets the kernel pick the interface", s.Interface)
	}
	spec.LocalASN = int64(s.MyASN)
	if s.LocalASN != 0 {
		spec.LocalASN = int64(s.LocalASN)
		note("spec.localASN %d (MetalLB's local-as for this session) becomes spec.localASN, the AS the nodes open the session with; MetalLB's myASN %d is not used",
			s.LocalASN, s.MyASN)
	}
	switch {
	case s.ASN != 0:
		spec.ASN = int64(s.ASN)
	case s.DynamicASN == "internal":
		spec.ASN = spec.LocalASN
		note("spec.dynamicASN internal: written as spec.asn %d (iBGP, the peer's AS is the nodes' own)", spec.ASN)
	case s.DynamicASN != "":
		disable("spec.dynamicASN %q: bgplb needs the peer's AS number; set spec.asn", s.DynamicASN)
	default:
		disable("neither spec.peerASN nor spec.dynamicASN is set; set spec.asn")
	}
	if s.Port != 0 {
		spec.Port = int32(s.Port)
	}
	spec.SourceAddress = s.SrcAddress
	pc.timers(s, spec, note)
	if s.RouterID != "" {
		note("spec.routerID %q not mapped: each node uses its own IPv4 InternalIP as router ID (one ID for all nodes would clash at the router)", s.RouterID)
	}
	spec.NodeSelector = firstSelector(s.NodeSelectors, "spec.nodeSelectors", "nodeSelector", "fewer nodes peer with this router than under MetalLB", note)
	if s.EnableGracefulRestart {
		spec.GracefulRestart = &v1alpha1.GracefulRestart{Enabled: true}
	}
	if s.EBGPMultiHop {
		spec.EBGPMultihop = ptr.To[int32](ebgpMultihopTTL)
		note("spec.ebgpMultiHop true: written as spec.ebgpMultihop %d (the TTL FRR uses for it)", ebgpMultihopTTL)
	}
	if s.VRFName != "" {
		disable("spec.vrf %q: bgplb's sessions run in the nodes' default VRF only", s.VRFName)
	}
	if s.DisableMP {
		note("spec.disableMP: nothing to map, bgplb always sends each address family over sessions of that family")
	}
	if s.DualStackAddressFamily {
		note("spec.dualStackAddressFamily not mapped: bgplb sends IPv4 routes to IPv4 peers and IPv6 routes to IPv6 peers only; add a BGPPeer for the other family's address")
	}
	pc.bfdFor(s, spec, note)
	secret := pc.password(p, spec, note)
	it.Object = out
	if secret != nil {
		return []Item{*secret, it}
	}
	return []Item{it}
}

// timers maps hold, keepalive and connect times into bgplb's ranges.
func (pc *peerContext) timers(s *BGPPeerSpec, spec *v1alpha1.BGPPeerSpec, note func(string, ...any)) {
	if s.HoldTime != nil {
		if d := s.HoldTime.Duration; d < 3*time.Second || d > 65535*time.Second {
			note("spec.holdTime %s not mapped: bgplb takes 3s to 65535s (a hold time of 0, no keepalives, is not supported); bgplb's default 90s applies", d)
		} else {
			spec.HoldTime = &metav1.Duration{Duration: d}
		}
	}
	if s.KeepaliveTime != nil {
		d := s.KeepaliveTime.Duration
		switch {
		case d < time.Second || d > 21845*time.Second:
			note("spec.keepaliveTime %s not mapped: bgplb takes 1s to 21845s", d)
		case spec.HoldTime != nil && d >= spec.HoldTime.Duration:
			note("spec.keepaliveTime %s not mapped: it must be shorter than the hold time %s", d, spec.HoldTime.Duration)
		default:
			spec.KeepaliveTime = &metav1.Duration{Duration: d}
		}
	}
	if s.ConnectTime != nil {
		d := s.ConnectTime.Duration
		if d < time.Second || d > 600*time.Second {
			note("spec.connectTime %s not mapped: bgplb's connectRetryTime takes 1s to 600s; its default 5s applies", d)
		} else {
			spec.ConnectRetryTime = &metav1.Duration{Duration: d}
		}
	}
}

// bfdFor writes the settings of the peer's BFD profile into spec.bfd.
func (pc *peerContext) bfdFor(s *BGPPeerSpec, spec *v1alpha1.BGPPeerSpec, note func(string, ...any)) {
	if s.BFDProfile == "" {
		return
	}
	spec.BFD = &v1alpha1.BFD{Enabled: true}
	prof := pc.bfd[s.BFDProfile]
	if prof == nil {
		note("spec.bfdProfile %q: no such BFDProfile in the input; BFD is on with bgplb's defaults (300ms, x3)", s.BFDProfile)
		return
	}
	ms := func(field string, v *uint32) *metav1.Duration {
		if v == nil {
			return nil
		}
		if *v < 10 || *v > 60000 {
			note("BFDProfile %s %s %dms not mapped: bgplb takes 10ms to 60s; its default 300ms applies", prof.Name, field, *v)
			return nil
		}
		return &metav1.Duration{Duration: time.Duration(*v) * time.Millisecond}
	}
	ps := &prof.Spec
	spec.BFD.MinReceiveInterval = ms("spec.receiveInterval", ps.ReceiveInterval)
	spec.BFD.MinTransmitInterval = ms("spec.transmitInterval", ps.TransmitInterval)
	if m := ps.DetectMultiplier; m != nil {
		if *m < 2 || *m > 255 {
			note("BFDProfile %s spec.detectMultiplier %d not mapped: bgplb takes 2 to 255; its default 3 applies", prof.Name, *m)
		} else {
			spec.BFD.DetectMultiplier = ptr.To(int32(*m)) //nolint:gosec // bounded above
		}
	}
	if ps.EchoMode != nil && *ps.EchoMode || ps.EchoInterval != nil {
		note("BFDProfile %s echo mode (spec.echoMode, spec.echoInterval) not mapped: bgplb's BFD sends no echo packets", prof.Name)
	}
	if ps.PassiveMode != nil && *ps.PassiveMode {
		note("BFDProfile %s spec.passiveMode not mapped: bgplb's BFD is always active (it starts the session)", prof.Name)
	}
	if ps.MinimumTTL != nil {
		note("BFDProfile %s spec.minimumTtl %d not mapped: bgplb runs single-hop BFD only (TTL 255 required)", prof.Name, *ps.MinimumTTL)
	}
}

// password sets the peer's passwordSecretRef and returns the Secret to
// write in bgplb-system, if the password is known.
func (pc *peerContext) password(p *BGPPeer, spec *v1alpha1.BGPPeerSpec, note func(string, ...any)) *Item {
	s := &p.Spec
	if s.Password != "" && s.PasswordSecret.Name != "" {
		note("both spec.password and spec.passwordSecret are set: the Secret is used")
	}
	switch {
	case s.PasswordSecret.Name != "":
		ref := s.PasswordSecret
		ns := ref.Namespace
		if ns == "" {
			ns = p.Namespace
		}
		if ns == "" {
			ns = DefaultNamespace
		}
		spec.PasswordSecretRef = &v1alpha1.SecretKeyReference{Name: ref.Name, Key: passwordKey}
		sec, ok := pc.cfg.Secrets[ns+"/"+ref.Name]
		if !ok || len(sec.Data[passwordKey]) == 0 {
			note("spec.passwordSecret %s/%s: Secret not in the input; copy it into %s:", ns, ref.Name, v1alpha1.InstallNamespace)
			note("  kubectl get secret -n %s %s -o jsonpath='{.data.password}' | base64 -d | kubectl create secret generic -n %s %s --from-file=password=/dev/stdin",
				ns, ref.Name, v1alpha1.InstallNamespace, ref.Name)
			return nil
		}
		return pc.secret(ref.Name, string(sec.Data[passwordKey]), fmt.Sprintf("copy of Secret %s/%s (key %s), for BGPPeer %s", ns, ref.Name, passwordKey, p.Name))
	case s.Password != "":
		name := p.Name + "-bgp-password"
		spec.PasswordSecretRef = &v1alpha1.SecretKeyReference{Name: name, Key: passwordKey}
		note("spec.password: bgplb reads passwords from Secrets only; written to Secret %s/%s", v1alpha1.InstallNamespace, name)
		return pc.secret(name, s.Password, fmt.Sprintf("the clear-text spec.password of MetalLB BGPPeer %s; store this file as you store secrets", source(p.ObjectMeta)))
	}
	return nil
}

// secret is the Secret item for a password, written once per name.
func (pc *peerContext) secret(name, password, why string) *Item {
	if pc.emitted[name] {
		return nil
	}
	pc.emitted[name] = true
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: v1alpha1.InstallNamespace, Name: name},
		Type:       corev1.SecretTypeOpaque,
		StringData: map[string]string{passwordKey: password},
	}
	sec.APIVersion, sec.Kind = "v1", "Secret"
	return &Item{Comments: []string{"BGP password: " + why}, Object: sec}
}
