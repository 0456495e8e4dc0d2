package ipam

// Permissions of the controller process beyond its reconcilers' (see
// setup.go), kept as markers so config/rbac is generated from one source.
//
// Leader election between the replicas: a Lease in the install namespace only.
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete,namespace=bgplb-system
//
// The metrics endpoint authenticates and authorizes whoever scrapes it.
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
