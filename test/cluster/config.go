package cluster

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// Address plan of the real-node cluster (documentation and benchmark ranges
// only, see DESIGN.md).
var (
	// ServiceCIDR4 and ServiceCIDR6 are the Services' cluster IP ranges; the
	// first address of each is the kubernetes Service (in the API server's
	// serving certificate).
	ServiceCIDR4 = netip.MustParsePrefix("198.18.0.0/16")
	ServiceCIDR6 = netip.MustParsePrefix("2001:db8:96::/108")
	// PodCIDR4 and PodCIDR6 hold every node's pod range (see NodePodCIDRs).
	PodCIDR4 = netip.MustParsePrefix("198.19.0.0/16")
	PodCIDR6 = netip.MustParsePrefix("2001:db8:244::/48")
)

// NodePodCIDRs returns node i's (1-based) pod ranges: 198.19.i.0/24 and
// 2001:db8:244:i::/64.
func NodePodCIDRs(i int) (netip.Prefix, netip.Prefix) {
	return netip.MustParsePrefix(fmt.Sprintf("198.19.%d.0/24", i)),
		netip.MustParsePrefix(fmt.Sprintf("2001:db8:244:%x::/64", i))
}

// firstIP returns the first usable address of p (the kubernetes Service).
func firstIP(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }

// kubeconfig writes a kubeconfig for server using the cluster CA and the
// client certificate pair name.crt/name.key.
func (c *Cluster) writeKubeconfig(path, name string) error {
	body := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: bgplb
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: %s
  user:
    client-certificate: %s
    client-key: %s
contexts:
- name: bgplb
  context: {cluster: bgplb, user: %s}
current-context: bgplb
`, c.Server, c.pki.path("ca.crt"), name, c.pki.path(name+".crt"), c.pki.path(name+".key"), name)
	return os.WriteFile(path, []byte(body), 0o600)
}

// containerdConfig is node's containerd 1.6 config: everything under the
// node's dir (root, state, socket, runc state, pod network namespaces),
// cgroupfs, the pause image we build, and restrict_oom_score_adj (root here
// lacks CAP_SYS_RESOURCE; without it every sandbox fails with "can't get
// final child's PID from pipe: EOF").
func (n *Node) containerdConfig(pause string) string {
	d := n.Dir
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = %[5]q
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
          Root = %[6]q
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = %[7]q
      max_conf_num = 1
  [plugins."io.containerd.internal.v1.opt"]
    path = %[8]q
`, filepath.Join(d, "containerd", "root"), filepath.Join(d, "containerd", "state"), n.ContainerdSock(),
		n.ContainerdSock()+".ttrpc", pause, filepath.Join(d, "containerd", "runc"),
		filepath.Join(d, "cni"), filepath.Join(d, "containerd", "opt"))
}

// cniConfig is node's pod network: a bridge (cni0, the pods' gateway) with
// host-local addresses from the node's two pod ranges. No masquerade: pods
// are routed (other nodes and the host have routes to every pod range).
func (n *Node) cniConfig() string {
	type obj = map[string]any
	conf := obj{
		"cniVersion": "1.0.0",
		"name":       "bgplb-cluster",
		"plugins": []obj{
			{
				"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
				"ipam": obj{
					"type":    "host-local",
					"dataDir": filepath.Join(n.Dir, "ipam"),
					"ranges":  [][]obj{{{"subnet": n.PodCIDR4.String()}}, {{"subnet": n.PodCIDR6.String()}}},
					"routes":  []obj{{"dst": "0.0.0.0/0"}, {"dst": "::/0"}},
				},
			},
			{"type": "portmap", "capabilities": obj{"portMappings": true}},
		},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		panic(err) // maps of strings, bools and slices always marshal
	}
	return string(b) + "\n"
}

// kubeletConfig is node's KubeletConfiguration: cgroup v1 allowed,
// cgroupfs with the node's own cgroup root, its own pod log and volume
// plugin dirs (the defaults are shared and each kubelet's GC would delete
// the others' logs), x509 + webhook authentication and webhook
// authorization like a production kubelet, relaxed eviction.
func (n *Node) kubeletConfig(caFile, resolvConf string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /%[1]s
containerRuntimeEndpoint: unix://%[2]s
address: %[3]s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %[4]s}
authorization: {mode: Webhook}
failSwapOn: false
clusterDomain: cluster.local
resolvConf: %[5]s
volumePluginDir: %[6]s
podLogsDir: %[7]s
evictionHard: {memory.available: "100Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 60
nodeStatusUpdateFrequency: 5s
shutdownGracePeriod: 0s
`, cgroupRootName(n.Name), n.ContainerdSock(), n.Mgmt4, caFile, resolvConf,
		filepath.Join(n.Dir, "volume-plugins"), filepath.Join(n.Dir, "pod-logs"))
}

// proxyConfig is node's KubeProxyConfiguration (iptables mode): no global
// sysctls (conntrack sizes left alone), metrics and health on the node's
// own loopback and addresses.
func (n *Node) proxyConfig(kubeconfig string) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: %s}
hostnameOverride: %s
clusterCIDR: %s
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 0.0.0.0:10256
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
`, kubeconfig, n.Name, strings.Join([]string{PodCIDR4.String(), PodCIDR6.String()}, ","))
}

// cgroupRootName is the cgroup (in every hierarchy) holding node's pods.
func cgroupRootName(node string) string { return cgroupPrefix + node }
