package v1alpha1

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ServiceReference identifies one Service holding an address.
type ServiceReference struct {
	// Namespace of the Service.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`
	// Name of the Service.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// UID of the Service, so that a Service deleted and re-created under the
	// same name is not mistaken for the old one.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +optional
	UID types.UID `json:"uid,omitempty"`
}

// IPAllocationSpec records who holds an address.
type IPAllocationSpec struct {
	// Address held, in canonical form.
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip.isCanonical(self)",message="must be an IP address in canonical form"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="address is immutable"
	Address string `json:"address"`

	// Pool the address was allocated from.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Pool string `json:"pool"`

	// PoolLabels are the labels of the pool, copied by the controller and
	// kept in step while the pool exists, so that BGPAdvertisements that
	// select pools by label (ipPoolSelector) keep announcing the address
	// after its pool is deleted. Once the pool is gone they stay as last
	// known.
	// +optional
	PoolLabels map[string]string `json:"poolLabels,omitempty"`

	// SharingKey is the bgplb.io/sharing-key of the Services sharing the
	// address; empty when the address is not shared.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	SharingKey string `json:"sharingKey,omitempty"`

	// Services holding the address: one, or several sharing it.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=128
	// +listType=map
	// +listMapKey=namespace
	// +listMapKey=name
	Services []ServiceReference `json:"services"`
}

// IPAllocation records that one address is in use. The controller writes one
// per address, named after it, so that the API server's name uniqueness
// guarantees no address is ever handed out twice.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=ipalloc
// +kubebuilder:validation:XValidation:rule="self.spec.address.startsWith('::') && self.spec.address.endsWith('::') ? self.metadata.name == '0' + self.spec.address.replace(':', '-') + '0' : self.spec.address.startsWith('::') ? self.metadata.name == '0' + self.spec.address.replace(':', '-') : self.spec.address.endsWith('::') ? self.metadata.name == self.spec.address.replace(':', '-') + '0' : self.metadata.name == self.spec.address.replace(':', '-')",message="metadata.name must be spec.address with ':' replaced by '-', and a '0' added at an end where the address starts or ends with '::'"
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.spec.address`
// +kubebuilder:printcolumn:name="Pool",type=string,JSONPath=`.spec.pool`
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=`.spec.services[0].namespace`
// +kubebuilder:printcolumn:name="Service",type=string,JSONPath=`.spec.services[0].name`
// +kubebuilder:printcolumn:name="Sharing-Key",type=string,JSONPath=`.spec.sharingKey`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:selectablefield:JSONPath=`.spec.pool`
type IPAllocation struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec IPAllocationSpec `json:"spec"`
}

// IPAllocationList is a list of IPAllocation.
//
// +kubebuilder:object:root=true
type IPAllocationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPAllocation `json:"items"`
}

// AllocationName is the object name of the IPAllocation for a canonical
// address: IPv6 colons become dashes since names may not hold colons, and
// a "::" at either end gets a "0" outside it (2001:db8:: is 2001-db8--0,
// ::1 is 0--1) because names must start and end with a letter or digit.
// Canonical forms never put a lone zero group next to "::", so the
// mapping stays one to one.
func AllocationName(canonicalAddress string) string {
	name := strings.ReplaceAll(canonicalAddress, ":", "-")
	if strings.HasPrefix(name, "-") {
		name = "0" + name
	}
	if strings.HasSuffix(name, "-") {
		name += "0"
	}
	return name
}

func init() {
	SchemeBuilder.Register(&IPAllocation{}, &IPAllocationList{})
}
