// Package cluster builds a real-node Kubernetes cluster on one machine for
// bgplb's demo and e2e specs: the netns lab (test/lab) provides the network
// (two FRR routers, node namespaces on both routers' LANs, a client), and
// this package adds a control plane (etcd, kube-apiserver with
// service-account signing, Node+RBAC authorization and NodeRestriction,
// kube-controller-manager, kube-scheduler) on the lab's management bridge
// and, in every node namespace, containerd, kubelet and kube-proxy
// (v1.37.2, built from source by hack/cluster-assets.sh).
//
// Pods get addresses from a bridge CNI per node: 198.19.N.0/24 and
// 2001:db8:244:N::/64 on node nN, routed between nodes and from the host
// over the management bridge. Service cluster IPs come from 198.18.0.0/16
// and 2001:db8:96::/108. Images are OCI tarballs imported into every node's
// containerd (no registry): bgplb's, a pause image and a backend.
//
// Every process is started through the lab (recorded in its run dir, killed
// by PID after a crash). Stop deletes pods through the API first, then
// stops kube-proxy, kubelets, containers and containerd, the control plane,
// unmounts everything under the cluster dir, removes the nodes' cgroups (v1
// and unified) and the shared host paths the kubelet and containerd create;
// the next Start does the same for whatever a crashed run left.
package cluster
