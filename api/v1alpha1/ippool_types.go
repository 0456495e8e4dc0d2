package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AddressRange is a block of addresses of one family: a CIDR such as
// "192.0.2.0/24" or "2001:db8::/120" (no host bits set), or an inclusive range
// "192.0.2.10-192.0.2.20" whose start is not after its end.
//
// CEL has no ordering for addresses, so the last two rules compare the ends
// themselves: IPv4 as integers, IPv6 group by group after expanding "::" and
// padding each group to four hex digits. They are written to keep the API
// server's cost estimate low (no join, no nested lists).
//
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=88
// +kubebuilder:validation:XValidation:rule="self.contains('/') ? isCIDR(self) : true",message="must be a valid CIDR such as 192.0.2.0/24 or 2001:db8::/120"
// +kubebuilder:validation:XValidation:rule="self.contains('/') && isCIDR(self) ? cidr(self).masked() == cidr(self) : true",message="CIDR must not have host bits set (write the network address, e.g. 192.0.2.0/24)"
// +kubebuilder:validation:XValidation:rule="self.contains('/') || (self.split('-').size() == 2 && self.split('-').all(e, isIP(e.trim())))",message="must be a CIDR or a range start-end of two IP addresses, e.g. 192.0.2.10-192.0.2.20"
// +kubebuilder:validation:XValidation:rule="self.contains('/') || self.split('-').size() != 2 || !self.split('-').all(e, isIP(e.trim())) || ip(self.split('-')[0].trim()).family() == ip(self.split('-')[1].trim()).family()",message="range start and end must be of the same IP family"
// +kubebuilder:validation:XValidation:rule="self.contains('/') || self.split('-').size() != 2 || !self.split('-').all(e, isIP(e.trim())) || ip(self.split('-')[0].trim()).family() != ip(self.split('-')[1].trim()).family() || ip(self.split('-')[0].trim()).family() != 4 || (self.split('-')[0].trim().split('.').map(o, int(o))[0] * 16777216 + self.split('-')[0].trim().split('.').map(o, int(o))[1] * 65536 + self.split('-')[0].trim().split('.').map(o, int(o))[2] * 256 + self.split('-')[0].trim().split('.').map(o, int(o))[3] <= self.split('-')[1].trim().split('.').map(o, int(o))[0] * 16777216 + self.split('-')[1].trim().split('.').map(o, int(o))[1] * 65536 + self.split('-')[1].trim().split('.').map(o, int(o))[2] * 256 + self.split('-')[1].trim().split('.').map(o, int(o))[3])",message="range start must not be after its end"
// +kubebuilder:validation:XValidation:rule="self.contains('/') || self.split('-').size() != 2 || !self.split('-').all(e, isIP(e.trim())) || ip(self.split('-')[0].trim()).family() != ip(self.split('-')[1].trim()).family() || ip(self.split('-')[0].trim()).family() != 6 || ([0, 1, 2, 3, 4, 5, 6, 7].all(i, ('0000' + (self.lowerAscii().split('-')[0].trim().contains('::') ? self.lowerAscii().split('-')[0].trim().substring(0, self.lowerAscii().split('-')[0].trim().indexOf('::')) + ':' + '0:0:0:0:0:0:0:0:'.substring(0, 2 * (9 - size(self.lowerAscii().split('-')[0].trim().split(':')))) + self.lowerAscii().split('-')[0].trim().substring(self.lowerAscii().split('-')[0].trim().indexOf('::') + 2) : self.lowerAscii().split('-')[0].trim()).split(':')[i]).substring(size((self.lowerAscii().split('-')[0].trim().contains('::') ? self.lowerAscii().split('-')[0].trim().substring(0, self.lowerAscii().split('-')[0].trim().indexOf('::')) + ':' + '0:0:0:0:0:0:0:0:'.substring(0, 2 * (9 - size(self.lowerAscii().split('-')[0].trim().split(':')))) + self.lowerAscii().split('-')[0].trim().substring(self.lowerAscii().split('-')[0].trim().indexOf('::') + 2) : self.lowerAscii().split('-')[0].trim()).split(':')[i])) <= ('0000' + (self.lowerAscii().split('-')[1].trim().contains('::') ? self.lowerAscii().split('-')[1].trim().substring(0, self.lowerAscii().split('-')[1].trim().indexOf('::')) + ':' + '0:0:0:0:0:0:0:0:'.substring(0, 2 * (9 - size(self.lowerAscii().split('-')[1].trim().split(':')))) + self.lowerAscii().split('-')[1].trim().substring(self.lowerAscii().split('-')[1].trim().indexOf('::') + 2) : self.lowerAscii().split('-')[1].trim()).split(':')[i]).substring(size((self.lowerAscii().split('-')[1].trim().contains('::') ? self.lowerAscii().split('-')[1].trim().substring(0, self.lowerAscii().split('-')[1].trim().indexOf('::')) + ':' + '0:0:0:0:0:0:0:0:'.substring(0, 2 * (9 - size(self.lowerAscii().split('-')[1].trim().split(':')))) + self.lowerAscii().split('-')[1].trim().substring(self.lowerAscii().split('-')[1].trim().indexOf('::') + 2) : self.lowerAscii().split('-')[1].trim()).split(':')[i])) || [0, 1, 2, 3, 4, 5, 6, 7].exists(j, j < i && ('0000' + (self.lowerAscii().split('-')[0].trim().contains('::') ? self.lowerAscii().split('-')[0].trim().substring(0, self.lowerAscii().split('-')[0].trim().indexOf('::')) + ':' + '0:0:0:0:0:0:0:0:'.substring(0, 2 * (9 - size(self.lowerAscii().split('-')[0].trim().split(':')))) + self.lowerAscii().split('-')[0].trim().substring(self.lowerAscii().split('-')[0].trim().indexOf('::') + 2) : self.lowerAscii().split('-')[0].trim()).split(':')[j]).substring(size((self.lowerAscii().split('-')[0].trim().contains('::') ? self.lowerAscii().split('-')[0].trim().substring(0, self.lowerAscii().split('-')[0].trim().indexOf('::')) + ':' + '0:0:0:0:0:0:0:0:'.substring(0, 2 * (9 - size(self.lowerAscii().split('-')[0].trim().split(':')))) + self.lowerAscii().split('-')[0].trim().substring(self.lowerAscii().split('-')[0].trim().indexOf('::') + 2) : self.lowerAscii().split('-')[0].trim()).split(':')[j])) != ('0000' + (self.lowerAscii().split('-')[1].trim().contains('::') ? self.lowerAscii().split('-')[1].trim().substring(0, self.lowerAscii().split('-')[1].trim().indexOf('::')) + ':' + '0:0:0:0:0:0:0:0:'.substring(0, 2 * (9 - size(self.lowerAscii().split('-')[1].trim().split(':')))) + self.lowerAscii().split('-')[1].trim().substring(self.lowerAscii().split('-')[1].trim().indexOf('::') + 2) : self.lowerAscii().split('-')[1].trim()).split(':')[j]).substring(size((self.lowerAscii().split('-')[1].trim().contains('::') ? self.lowerAscii().split('-')[1].trim().substring(0, self.lowerAscii().split('-')[1].trim().indexOf('::')) + ':' + '0:0:0:0:0:0:0:0:'.substring(0, 2 * (9 - size(self.lowerAscii().split('-')[1].trim().split(':')))) + self.lowerAscii().split('-')[1].trim().substring(self.lowerAscii().split('-')[1].trim().indexOf('::') + 2) : self.lowerAscii().split('-')[1].trim()).split(':')[j])))))",message="range start must not be after its end"
type AddressRange string

// AllocateTo restricts a pool to some Services and orders it among the pools
// that accept a Service.
type AllocateTo struct {
	// Priority orders the pools that accept a Service: lower values are tried
	// first; ties are broken by pool name.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000
	// +kubebuilder:default=0
	// +optional
	Priority int32 `json:"priority,omitempty"`

	// Namespaces whose Services may use this pool.
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	// +listType=set
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`

	// NamespaceSelector selects namespaces whose Services may use this pool.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// ServiceSelector selects, by label, the Services that may use this pool.
	// +optional
	ServiceSelector *metav1.LabelSelector `json:"serviceSelector,omitempty"`
}

// IPPoolSpec describes a set of addresses Services may get.
type IPPoolSpec struct {
	// Addresses of the pool: CIDRs and start-end ranges, IPv4 and IPv6 mixed.
	// Pools must not overlap; a pool that overlaps an older one is marked
	// Overlapping and gives out nothing until fixed.
	// At most 20 entries (the API server bounds the cost of validating them);
	// use more pools for more.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=20
	// +listType=atomic
	Addresses []AddressRange `json:"addresses"`

	// AutoAssign lets Services that name no pool and no address get addresses
	// from this pool. When false, only Services that ask for the pool (by the
	// bgplb.io/ip-pool annotation) or for one of its addresses use it.
	// +kubebuilder:default=true
	// +optional
	AutoAssign *bool `json:"autoAssign,omitempty"`

	// AvoidBuggyIPs skips IPv4 addresses ending in .0 or .255, which some old
	// client equipment mistakes for network or broadcast addresses.
	// +optional
	AvoidBuggyIPs bool `json:"avoidBuggyIPs,omitempty"`

	// Disabled stops the pool from giving out new addresses. Addresses already
	// held stay with their Services.
	// +optional
	Disabled bool `json:"disabled,omitempty"`

	// AllocateTo restricts the pool to some Services and sets its priority.
	// A pool without it serves any Service when AutoAssign is true.
	// +optional
	AllocateTo *AllocateTo `json:"allocateTo,omitempty"`
}

// PoolFamilyStatus counts the addresses of one family in a pool. Total and
// Available are decimal strings because IPv6 pools exceed 64-bit integers.
type PoolFamilyStatus struct {
	// Total is the number of usable addresses in the pool's ranges.
	Total string `json:"total"`
	// Allocated is the number of addresses held by Services.
	Allocated int64 `json:"allocated"`
	// Available is Total minus Allocated.
	Available string `json:"available"`
}

// IPPoolStatus reports how full a pool is and whether it is usable.
type IPPoolStatus struct {
	// IPv4 counts the pool's IPv4 addresses.
	// +optional
	IPv4 *PoolFamilyStatus `json:"ipv4,omitempty"`
	// IPv6 counts the pool's IPv6 addresses.
	// +optional
	IPv6 *PoolFamilyStatus `json:"ipv6,omitempty"`
	// Allocated is the number of addresses held, both families.
	// +optional
	Allocated int64 `json:"allocated,omitempty"`
	// Available is the number of free addresses, both families, as a decimal
	// string.
	// +optional
	Available string `json:"available,omitempty"`
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, Exhausted, Overlapping.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// IPPool is a set of addresses that LoadBalancer Services get their external
// addresses from.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=ippool;pool
// +kubebuilder:printcolumn:name="Addresses",type=string,JSONPath=`.spec.addresses`
// +kubebuilder:printcolumn:name="Allocated",type=integer,JSONPath=`.status.allocated`
// +kubebuilder:printcolumn:name="Available",type=string,JSONPath=`.status.available`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type IPPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   IPPoolSpec   `json:"spec"`
	Status IPPoolStatus `json:"status,omitempty"`
}

// IPPoolList is a list of IPPool.
//
// +kubebuilder:object:root=true
type IPPoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPPool `json:"items"`
}

func init() {
	SchemeBuilder.Register(&IPPool{}, &IPPoolList{})
}
