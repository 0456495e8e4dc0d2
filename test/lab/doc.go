// Package lab builds bgplb's network-namespace lab: two FRR routers, nodes
// that will run the speaker, and a client that sends traffic to Service
// addresses, all in namespaces named bgplb-lab-*. e2e specs, "make demo-lab" and
// the announcement benchmark drive it.
//
// Topology (N nodes, default 3; documentation ranges only):
//
//	root ns   bridge bgplb-mgmt 198.51.100.1/26 2001:db8:fe::1/64 (HostMgmt4/6)
//	          veth bgplb-m-nI <-> nI:mgmt0 198.51.100.(10+I) 2001:db8:fe::(10+I)
//	r1        bridge "lan" 192.0.2.1/26 2001:db8:1::1/64, ports n1..nN
//	          "c" 198.51.100.129/26 2001:db8:100::1/64 (client LAN)
//	          FRR AS 64501, router-id 192.0.2.1
//	r2        bridge "lan" 192.0.2.65/26 2001:db8:2::1/64, ports n1..nN
//	          "c" 198.51.100.130/26 2001:db8:100::2/64
//	          FRR AS 64502, router-id 192.0.2.65
//	nI        "r1" 192.0.2.(10+I)/26 2001:db8:1::(10+I)/64
//	          "r2" 192.0.2.(74+I)/26 2001:db8:2::(10+I)/64
//	          198.51.100.128/26 and 2001:db8:100::/64 via r1 and r2 (ECMP)
//	c         bridge "lan" 198.51.100.140/26 2001:db8:100::10/64, ports r1, r2
//	          default via r1 and r2 (ECMP), 192.0.2.0/26 via r1, 192.0.2.64/26 via r2
//
// Service addresses come from 203.0.113.0/24 and 2001:db8:ffff::/112 and
// reach the routers only through BGP. The routers accept the nodes as
// dynamic neighbors (bgp listen range over their LAN, remote AS 64512 by
// default, one peer group per family) with BFD 300 ms x 3 and graceful
// restart, install ECMP routes through zebra, and advertise nothing back.
// Routers, nodes and client hash ECMP on L4 ports, so new connections
// spread over paths.
//
// Each router runs zebra, bgpd and bfdd from Debian's frr package, each with
// its own config file rendered from a RouterConfig, in the router's state
// dir <Dir>/<router>. Every process the lab starts is recorded in RunDir;
// the next Up (or CleanupStale) kills what a crashed run left (by PID and
// start time), deletes bgplb-lab-* namespaces and the management links.
package lab
