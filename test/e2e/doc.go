// Package e2e holds the end-to-end specs of bgplb. They run the real
// "bgplb controller" and one real "bgplb speaker" per node against a real
// API server, on the network-namespace lab of package lab (two FRR routers,
// three nodes, a client), and assert what the routers and the client see:
// BGP paths and sessions from FRR's JSON, ECMP routes in the routers'
// kernel tables, BFD peers, and real HTTP over TCP from the client
// namespace. No kubelet or kube-proxy runs: EndpointSlices are written by
// the lab and each node answers for a Service address itself.
//
// The suite runs once per BGP backend of the speakers ($BGPLB_LAB_BACKEND,
// backend_test.go): GoBGP runs every spec, frr-k8s (real FRR and frr-k8s in
// every node) the specs labelled "bgp".
//
// Run with "make test-lab" (root, iproute2, ping and FRR needed; LAB=skip skips
// by hand). On a failed spec the routers' state, every process's log tail
// and the API objects are printed, and the lab dir with the full logs is
// kept.
package e2e
