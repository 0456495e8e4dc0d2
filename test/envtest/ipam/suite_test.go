// Package ipam_test runs the IPAM controller in-process against a real
// kube-apiserver and etcd and checks what a user sees: addresses in Service
// status, conditions, events, IPAllocations and pool status.
package ipam_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controllers/ipam"
	"github.com/bgplb/bgplb/test/envtest/framework"
)

var (
	env *framework.Env
	k8s client.Client
	ctx = context.Background()

	// controller is the in-process controller the specs run against.
	controller *runningController
)

func debugLevel() int8 {
	if os.Getenv("BGPLB_TEST_DEBUG") != "" {
		return 1
	}
	return 0
}

func TestIPAM(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(20 * time.Second)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	RunSpecs(t, "IPAM controller (envtest)")
}

var _ = BeforeSuite(func() {
	// BGPLB_TEST_DEBUG=1 shows the controllers' V(1) lines (every write).
	ctrl.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.Level(zapcore.Level(-debugLevel()))))
	var err error
	// The framework's API server is dual-stack, so PreferDualStack and
	// RequireDualStack Services get both families of cluster IPs.
	env, err = framework.Start(framework.Options{})
	Expect(err).NotTo(HaveOccurred())
	k8s = env.Client
	controller = startController(ipam.Options{DefaultClass: true})
})

var _ = AfterSuite(func() {
	if controller != nil {
		controller.stop()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

// runningController is a manager running the IPAM controllers in-process.
type runningController struct {
	cancel context.CancelFunc
	done   chan struct{}
}

var starts atomic.Int32

// startController starts a manager with the IPAM controllers, as
// `bgplb controller` does, and waits until it serves.
func startController(opts ipam.Options) *runningController {
	GinkgoHelper()
	cfg := *env.Config
	cfg.QPS, cfg.Burst = 500, 1000
	mgr, err := ctrl.NewManager(&cfg, ctrl.Options{
		Scheme:                 framework.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// The same controllers are started many times in one process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		Logger:     ctrl.Log.WithName(fmt.Sprintf("manager-%d", starts.Add(1))),
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(ipam.Setup(mgr, opts)).To(Succeed())
	c, cancel := context.WithCancel(ctx)
	rc := &runningController{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer GinkgoRecover()
		defer close(rc.done)
		Expect(mgr.Start(c)).To(Succeed())
	}()
	return rc
}

// stop cancels the manager and waits until it has stopped.
func (rc *runningController) stop() {
	rc.cancel()
	<-rc.done
}

// withController runs the specs of a container against a controller
// started with other options, and restores the default one afterwards.
func withController(opts ipam.Options) {
	BeforeAll(func() {
		controller.stop()
		controller = startController(opts)
	})
	AfterAll(func() {
		controller.stop()
		controller = startController(ipam.Options{DefaultClass: true})
	})
}

// --- objects ---

var nsCount atomic.Int32

// newNamespace creates a namespace for one spec.
func newNamespace(lbls ...string) string {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   fmt.Sprintf("ipam-%d-%d", GinkgoParallelProcess(), nsCount.Add(1)),
		Labels: kv(lbls...),
	}}
	Expect(k8s.Create(ctx, ns)).To(Succeed())
	specNamespaces = append(specNamespaces, ns.Name)
	return ns.Name
}

func kv(pairs ...string) map[string]string {
	if len(pairs) == 0 {
		return nil
	}
	m := map[string]string{}
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return m
}

// poolOpt changes a pool before it is created.
type poolOpt func(*v1alpha1.IPPool)

func autoAssign(b bool) poolOpt { return func(p *v1alpha1.IPPool) { p.Spec.AutoAssign = ptr.To(b) } }
func avoidBuggy() poolOpt       { return func(p *v1alpha1.IPPool) { p.Spec.AvoidBuggyIPs = true } }
func allocateTo(at v1alpha1.AllocateTo) poolOpt {
	return func(p *v1alpha1.IPPool) { p.Spec.AllocateTo = &at }
}

// createPool creates a pool and, at the end of the spec, deletes it and
// waits until it is gone (the spec's Services are deleted before, by
// DeferCleanup order).
func createPool(name string, addrs []string, opts ...poolOpt) *v1alpha1.IPPool {
	GinkgoHelper()
	p := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, a := range addrs {
		p.Spec.Addresses = append(p.Spec.Addresses, v1alpha1.AddressRange(a))
	}
	for _, o := range opts {
		o(p)
	}
	Expect(k8s.Create(ctx, p)).To(Succeed())
	DeferCleanup(func() {
		// Services of the spec go first, wherever their cleanup was
		// registered, so the next spec starts with no address held.
		deleteSpecServices()
		deletePoolAndWait(name)
	})
	// Wait until the controller knows the pool, so specs that create several
	// pools and then Services see all of them used.
	Eventually(func() int64 { return getPool(name).Status.ObservedGeneration }).Should(Equal(p.Generation))
	return p
}

// specNamespaces are the namespaces created by the running spec.
var specNamespaces []string

var _ = BeforeEach(func() { specNamespaces = nil })

// deleteSpecServices deletes the Services of the running spec and waits
// until their addresses are released.
func deleteSpecServices() {
	GinkgoHelper()
	for _, ns := range specNamespaces {
		var list corev1.ServiceList
		Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
		for _, s := range list.Items {
			Expect(client.IgnoreNotFound(k8s.Delete(ctx, &s))).To(Succeed())
		}
	}
	Eventually(func() []string {
		var list v1alpha1.IPAllocationList
		Expect(k8s.List(ctx, &list)).To(Succeed())
		var left []string
		for _, a := range list.Items {
			for _, s := range a.Spec.Services {
				if slices.Contains(specNamespaces, s.Namespace) {
					left = append(left, a.Spec.Address+" "+s.Namespace+"/"+s.Name)
				}
			}
		}
		return left
	}, time.Minute).Should(BeEmpty(), "addresses of deleted Services should be released")
}

func deletePoolAndWait(name string) {
	GinkgoHelper()
	p := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}}
	Expect(client.IgnoreNotFound(k8s.Delete(ctx, p))).To(Succeed())
	Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Name: name}, &v1alpha1.IPPool{}))
	}).Should(BeTrue(), "pool %s should go", name)
}

// svcOpt changes a Service before it is created.
type svcOpt func(*corev1.Service)

func class(c string) svcOpt { return func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr.To(c) } }
func clusterIP() svcOpt {
	return func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeClusterIP
		s.Spec.LoadBalancerClass, s.Spec.AllocateLoadBalancerNodePorts = nil, nil
	}
}
func annotate(k, v string) svcOpt {
	return func(s *corev1.Service) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[k] = v
	}
}
func labelled(k, v string) svcOpt {
	return func(s *corev1.Service) {
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels[k] = v
	}
}
func lbIP(ip string) svcOpt { return func(s *corev1.Service) { s.Spec.LoadBalancerIP = ip } }
func families(policy corev1.IPFamilyPolicy, fams ...corev1.IPFamily) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.IPFamilyPolicy = &policy
		s.Spec.IPFamilies = fams
	}
}
func ports(ps ...int32) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.Ports = nil
		for _, p := range ps {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{
				Name: fmt.Sprintf("p%d", p), Port: p, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(p)})
		}
	}
}
func udp() svcOpt {
	return func(s *corev1.Service) {
		for i := range s.Spec.Ports {
			s.Spec.Ports[i].Protocol = corev1.ProtocolUDP
		}
	}
}
func localTraffic() svcOpt {
	return func(s *corev1.Service) {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
}
func selector(k, v string) svcOpt { return func(s *corev1.Service) { s.Spec.Selector = kv(k, v) } }

// newService builds a LoadBalancer Service with class bgplb.io/bgp and port 80/TCP.
func newService(ns, name string, opts ...svcOpt) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			LoadBalancerClass:             ptr.To(v1alpha1.LoadBalancerClass),
			AllocateLoadBalancerNodePorts: ptr.To(false),
			Selector:                      kv("app", name),
		},
	}
	ports(80)(s)
	for _, o := range opts {
		o(s)
	}
	return s
}

// createService creates a Service and deletes it at the end of the spec.
func createService(ns, name string, opts ...svcOpt) *corev1.Service {
	GinkgoHelper()
	s := newService(ns, name, opts...)
	Expect(k8s.Create(ctx, s)).To(Succeed())
	DeferCleanup(func() {
		deleteServiceAndWaitReleased(s.Namespace, s.Name)
	})
	return s
}

// deleteServiceAndWaitReleased deletes a Service and waits until no
// IPAllocation names it.
func deleteServiceAndWaitReleased(ns, name string) {
	GinkgoHelper()
	Expect(client.IgnoreNotFound(k8s.Delete(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}))).To(Succeed())
	Eventually(func() []string { return allocationsOf(ns, name) }).Should(BeEmpty(), "addresses of %s/%s should be released", ns, name)
}

func getService(ns, name string) *corev1.Service {
	GinkgoHelper()
	s := &corev1.Service{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s)).To(Succeed())
	return s
}

// ingressIPs returns the addresses in a Service's status.
func ingressIPs(ns, name string) func() []string {
	return func() []string {
		s := &corev1.Service{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
			return []string{"error: " + err.Error()}
		}
		out := []string{}
		for _, in := range s.Status.LoadBalancer.Ingress {
			out = append(out, in.IP)
		}
		return out
	}
}

// condition returns the bgplb.io/AddressAllocated condition as "Status/Reason".
func condition(ns, name string) func() string {
	return func() string {
		c := allocatedCondition(ns, name)
		if c == nil {
			return "<none>"
		}
		return string(c.Status) + "/" + c.Reason
	}
}

func allocatedCondition(ns, name string) *metav1.Condition {
	s := &corev1.Service{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		return nil
	}
	return meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionAddressAllocated)
}

func conditionMessage(ns, name string) func() string {
	return func() string {
		if c := allocatedCondition(ns, name); c != nil {
			return c.Message
		}
		return ""
	}
}

// allocationsOf lists the addresses whose IPAllocation names the Service.
func allocationsOf(ns, name string) []string {
	GinkgoHelper()
	out, err := framework.AllocationsOf(ctx, k8s, ns, name)
	Expect(err).NotTo(HaveOccurred())
	return out
}

func getAllocation(addr string) (*v1alpha1.IPAllocation, error) {
	a := &v1alpha1.IPAllocation{}
	err := k8s.Get(ctx, client.ObjectKey{Name: v1alpha1.AllocationName(addr)}, a)
	return a, err
}

// eventsFor returns "Type/Reason: note" of the events about an object.
func eventsFor(ns, name string) func() []string {
	return func() []string {
		evs, err := framework.EventsAbout(ctx, k8s, ns, "", name)
		if err != nil {
			return []string{"error: " + err.Error()}
		}
		out := []string{}
		for _, e := range evs {
			out = append(out, e.Type+"/"+e.Reason+": "+e.Note)
		}
		return out
	}
}

func getPool(name string) *v1alpha1.IPPool {
	GinkgoHelper()
	p := &v1alpha1.IPPool{}
	Expect(k8s.Get(ctx, client.ObjectKey{Name: name}, p)).To(Succeed())
	return p
}

// poolCondition returns a pool condition as "Status/Reason".
func poolCondition(name, typ string) func() string {
	return func() string {
		p := &v1alpha1.IPPool{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: name}, p); err != nil {
			return "error: " + err.Error()
		}
		c := meta.FindStatusCondition(p.Status.Conditions, typ)
		if c == nil {
			return "<none>"
		}
		return string(c.Status) + "/" + c.Reason
	}
}

func updateService(ns, name string, change func(*corev1.Service)) {
	GinkgoHelper()
	Expect(framework.Update(ctx, k8s, client.ObjectKey{Namespace: ns, Name: name}, &corev1.Service{}, change)).To(Succeed())
}

func updatePool(name string, change func(*v1alpha1.IPPool)) {
	GinkgoHelper()
	Expect(framework.Update(ctx, k8s, client.ObjectKey{Name: name}, &v1alpha1.IPPool{}, change)).To(Succeed())
}

// setIngress writes a Service's status as another controller or a backup
// restore would.
func setIngress(ns, name string, ips ...string) {
	GinkgoHelper()
	s := getService(ns, name)
	s.Status.LoadBalancer.Ingress = nil
	for _, ip := range ips {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	Expect(k8s.Status().Update(ctx, s)).To(Succeed())
}
