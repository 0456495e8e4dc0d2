// Package labcluster runs bgplb for real on the network-namespace lab of
// package lab: a real kube-apiserver and etcd (envtest) serving on the lab's
// management address, the real "bgplb controller" on the host, and a real
// "bgplb speaker" inside every node namespace, each with its own identity
// and the RBAC rules shipped in config/rbac.
//
// No kubelet or kube-proxy runs. Node objects are written by the cluster
// with the nodes' lab addresses; EndpointSlices are written by the cluster
// (SetBackends) standing in for the EndpointSlice controller; and each node
// answers for a Service address itself (Serve), standing in for kube-proxy
// and pods.
//
// With Options.Backend "frr-k8s" the speakers run --bgp-backend=frr-k8s and
// every node namespace also runs real FRR daemons (lab.NodeFRR) and
// frr-k8s's own controller, reloader script and status exporter, built or
// taken from the pinned module (frrk8s.go).
//
// The e2e suite (test/e2e), "bgplb-lab demo" (make demo-lab) and the announcement
// benchmark (test/bench/announce) all start their cluster here. Helpers
// read what the routers see: BGP paths and sessions from FRR's JSON, BFD
// peers, kernel routes, and route events from netlink (RouteWatcher).
package labcluster
