package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/test/envtest/framework"
)

// Overlay is the kustomization that installs bgplb: config/default with
// only the image changed (BgplbImage).
func Overlay() string { return filepath.Join(framework.RepoRoot(), "test", "cluster", "overlay") }

// InstallBgplb runs `kubectl apply -k` of the test overlay of
// config/default, exactly what a user runs, and waits until the CRDs are
// established, the controller Deployment and the speaker DaemonSet are
// rolled out and a controller holds the leader lease.
func (c *Cluster) InstallBgplb(ctx context.Context) error {
	if _, err := c.Kubectl(ctx, "apply", "--server-side", "-k", Overlay()); err != nil {
		return err
	}
	if _, err := c.Kubectl(ctx, "wait", "--for=condition=Established", "crd",
		"-l", "app.kubernetes.io/part-of=bgplb", "--timeout=60s"); err != nil {
		return err
	}
	for _, w := range []string{"deployment/bgplb-controller", "daemonset/bgplb-speaker"} {
		if _, err := c.Kubectl(ctx, "-n", "bgplb-system", "rollout", "status", w, "--timeout=3m"); err != nil {
			return err
		}
	}
	return waitUntil(ctx, time.Minute, func() error {
		_, err := c.LeaderPod(ctx)
		return err
	})
}

// LeaderPod returns the name of the controller pod holding the leader lease.
func (c *Cluster) LeaderPod(ctx context.Context) (string, error) {
	l, err := c.Clientset.CoordinationV1().Leases("bgplb-system").Get(ctx, "bgplb-controller.bgplb.io", metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
		return "", fmt.Errorf("lease %s has no holder", l.Name)
	}
	// controller-runtime's identity is "<hostname>_<uuid>"; a pod's hostname is its name.
	return strings.SplitN(*l.Spec.HolderIdentity, "_", 2)[0], nil
}

// ApplyKustomize runs kubectl apply -k dir.
func (c *Cluster) ApplyKustomize(ctx context.Context, dir string) (string, error) {
	return c.Kubectl(ctx, "apply", "-k", dir)
}

// ApplyYAML runs kubectl apply -f with body.
func (c *Cluster) ApplyYAML(ctx context.Context, body string) (string, error) {
	f, err := os.CreateTemp(c.Dir, "apply-*.yaml")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(body); err != nil {
		f.Close()
		return "", err
	}
	f.Close()
	return c.Kubectl(ctx, "apply", "-f", f.Name())
}

// BackendManifest is a namespace (PodSecurity restricted), a Deployment of
// the backend image (replicas spread over the nodes, one per node while
// replicas <= nodes) and a dual-stack LoadBalancer Service on port 80.
func BackendManifest(ns, name string, replicas int) string {
	return BackendManifestWith(ns, name, Backend{Replicas: replicas})
}

// Backend shapes BackendManifestWith.
type Backend struct {
	Replicas int
	// Local sets the Service's externalTrafficPolicy to Local.
	Local bool
	// Nodes, when set, confines the pods to these nodes (node affinity on
	// kubernetes.io/hostname).
	Nodes []string
	// Pool, when set, asks for addresses of this IPPool (the
	// bgplb.io/ip-pool annotation on the Service).
	Pool string
}

// BackendManifestWith is BackendManifest with the options of b.
func BackendManifestWith(ns, name string, b Backend) string {
	policy := "Cluster"
	if b.Local {
		policy = "Local"
	}
	affinity := ""
	if len(b.Nodes) > 0 {
		affinity = fmt.Sprintf(`
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
              - matchExpressions:
                  - {key: kubernetes.io/hostname, operator: In, values: [%s]}`, strings.Join(b.Nodes, ", "))
	}
	annotations := ""
	if b.Pool != "" {
		annotations = fmt.Sprintf("\n  annotations: {bgplb.io/ip-pool: %s}", b.Pool)
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %[1]s
  labels:
    pod-security.kubernetes.io/enforce: restricted
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[2]s
  namespace: %[1]s
spec:
  replicas: %[3]d
  selector:
    matchLabels: {app: %[2]s}
  template:
    metadata:
      labels: {app: %[2]s}
    spec:
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: DoNotSchedule
          labelSelector:
            matchLabels: {app: %[2]s}%[5]s
      securityContext:
        runAsNonRoot: true
        seccompProfile: {type: RuntimeDefault}
      terminationGracePeriodSeconds: 5
      containers:
        - name: backend
          image: %[4]s
          ports:
            - {name: http, containerPort: 8080}
          env:
            - name: POD_NAME
              valueFrom: {fieldRef: {fieldPath: metadata.name}}
            - name: NODE_NAME
              valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
            - name: POD_IP
              valueFrom: {fieldRef: {fieldPath: status.podIP}}
          readinessProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 2
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
---
apiVersion: v1
kind: Service
metadata:
  name: %[2]s
  namespace: %[1]s%[7]s
spec:
  type: LoadBalancer
  externalTrafficPolicy: %[6]s
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv4, IPv6]
  selector: {app: %[2]s}
  ports:
    - {name: http, port: 80, targetPort: http}
`, ns, name, b.Replicas, BackendImage, affinity, policy, annotations)
}

// ServiceAddresses waits until Service ns/name has want external addresses
// and returns them sorted (IPv4 first).
func (c *Cluster) ServiceAddresses(ctx context.Context, ns, name string, want int, timeout time.Duration) ([]netip.Addr, error) {
	var addrs []netip.Addr
	err := waitUntil(ctx, timeout, func() error {
		svc, err := c.Clientset.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		addrs = addrs[:0]
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if a, err := netip.ParseAddr(in.IP); err == nil {
				addrs = append(addrs, a)
			}
		}
		if len(addrs) < want {
			return fmt.Errorf("service %s/%s has %d of %d addresses", ns, name, len(addrs), want)
		}
		return nil
	})
	slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
	return addrs, err
}

// NodeOf names the node owning address a on a router LAN ("" if none),
// link-local IPv6 next hops included.
func (c *Cluster) NodeOf(a netip.Addr) string { return c.Lab.NodeOf(a) }

// WaitRoutes waits until every router has a kernel route to addr with one
// next hop per node, and returns the next hops per router.
func (c *Cluster) WaitRoutes(ctx context.Context, addr netip.Addr, timeout time.Duration) (map[string][]netip.Addr, error) {
	out := map[string][]netip.Addr{}
	p := netip.PrefixFrom(addr, addr.BitLen())
	err := waitUntil(ctx, timeout, func() error {
		for _, r := range c.Lab.Routers() {
			hops, err := r.KernelRoutes(p)
			if err != nil {
				return err
			}
			out[r.Name] = hops
			if len(hops) != len(c.Nodes) {
				return fmt.Errorf("%s routes %s via %v", r.Name, p, hops)
			}
		}
		return nil
	})
	return out, err
}

// serviceAndSlices reads Service ns/name and its EndpointSlices.
func (c *Cluster) serviceAndSlices(ctx context.Context, ns, name string) (*corev1.Service, *discoveryv1.EndpointSliceList, error) {
	svc, err := c.Clientset.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, nil, err
	}
	eps, err := c.Clientset.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
	if err != nil {
		return nil, nil, err
	}
	return svc, eps, nil
}

// WaitEndpoints waits until Service ns/name's EndpointSlices list want
// ready endpoints in every family the Service has.
func (c *Cluster) WaitEndpoints(ctx context.Context, ns, name string, want int, timeout time.Duration) error {
	return waitUntil(ctx, timeout, func() error {
		svc, eps, err := c.serviceAndSlices(ctx, ns, name)
		if err != nil {
			return err
		}
		ready := map[string]int{}
		for _, s := range eps.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					ready[string(s.AddressType)]++
				}
			}
		}
		for _, f := range svc.Spec.IPFamilies {
			if ready[string(f)] < want {
				return fmt.Errorf("service %s/%s: %d of %d ready %s endpoints", ns, name, ready[string(f)], want, f)
			}
		}
		return nil
	})
}

// WaitProxied waits until kube-proxy on every node has programmed Service
// ns/name: its load-balancer addresses and every ready endpoint appear in
// the node's NAT rules of that family. The routers may route an address a
// moment before that: bgplb announces what the controller allocated,
// kube-proxy syncs its rules at most once a second (longer when busy), and
// a node without the rules answers with ICMP unreachable.
func (c *Cluster) WaitProxied(ctx context.Context, ns, name string, timeout time.Duration) error {
	return waitUntil(ctx, timeout, func() error {
		svc, eps, err := c.serviceAndSlices(ctx, ns, name)
		if err != nil {
			return err
		}
		want := map[bool][]string{} // IPv6? -> strings the rules must hold
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if a, err := netip.ParseAddr(in.IP); err == nil {
				want[a.Is6()] = append(want[a.Is6()], " "+a.String()+"/")
			}
		}
		for _, s := range eps.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready == nil || !*e.Conditions.Ready {
					continue
				}
				for _, ip := range e.Addresses {
					for _, p := range s.Ports {
						if a, err := netip.ParseAddr(ip); err == nil && p.Port != nil {
							want[a.Is6()] = append(want[a.Is6()], "--to-destination "+netip.AddrPortFrom(a, uint16(*p.Port)).String())
						}
					}
				}
			}
		}
		for _, n := range c.Nodes {
			for v6, needles := range want {
				save := "iptables-save"
				if v6 {
					save = "ip6tables-save"
				}
				out, err := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+n.Lab.Netns, save, "-t", "nat").CombinedOutput()
				if err != nil {
					return fmt.Errorf("%s on %s: %w: %s", save, n.Name, err, out)
				}
				for _, s := range needles {
					if !strings.Contains(string(out), s) {
						return fmt.Errorf("kube-proxy on %s has no rule with %q for %s/%s yet", n.Name, strings.TrimSpace(s), ns, name)
					}
				}
			}
		}
		return nil
	})
}
