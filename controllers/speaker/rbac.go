package speaker

// Permissions of the speaker process beyond its reconciler's (see
// reconciler.go), kept as markers so config/rbac is generated from one source.
//
// The metrics endpoint authenticates and authorizes whoever scrapes it.
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
