// Package l2 answers ARP requests and IPv6 neighbor solicitations for the
// Service addresses this node owns in L2 mode, announces a takeover with
// gratuitous ARP and unsolicited neighbor advertisements, and reports the
// node's links. It is the only package that imports
// github.com/mdlayher/arp, github.com/mdlayher/ndp and
// github.com/vishvananda/netlink (as bgp/ is the only one importing GoBGP);
// none of their types leaks out.
//
// The addresses are never configured on an interface: the kernel does not
// know them and does not answer for them, so exactly the nodes this
// package is told to answer on answer. Traffic that reaches the node is
// handled by kube-proxy's rules for the Service's external address.
//
// Raw ARP (AF_PACKET) and ICMPv6 sockets need CAP_NET_RAW.
package l2
