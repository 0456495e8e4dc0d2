// Package l2election chooses, for every address announced in L2 mode, the
// one node that answers ARP and NDP for it (its owner). It is pure: no
// Kubernetes client, no sockets, no clock. The speaker's L2 reconciler
// gathers the inputs (which advertisements select which nodes, node
// readiness, which speakers are alive, which links are up, where the
// endpoints are) and every speaker computes the same owners from the same
// inputs, so no election protocol or lock is needed.
//
// The owner is picked by rendezvous (highest-random-weight) hashing: each
// eligible node gets the weight hash(key, node) and the heaviest wins.
// That gives, without any state:
//   - determinism: the same inputs give the same owner on every node;
//   - even spread: each of n eligible nodes wins about 1/n of the addresses;
//   - stability: a node leaving moves only the addresses it owned (each to
//     its second-heaviest node), and a node joining takes only the about
//     1/n of the addresses it now wins; no other address moves.
package l2election
