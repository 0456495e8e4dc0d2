package l2

// Permissions of the speaker's L2 reconciler, kept as markers so
// config/rbac/speaker is generated from one source (make manifests reads
// controllers/speaker and controllers/l2).
//
// +kubebuilder:rbac:groups=bgplb.io,resources=l2advertisements,verbs=get;list;watch
