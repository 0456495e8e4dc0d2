package l2mode

// Permissions of the speaker's L2 reconciler, kept as markers so
// config/rbac/speaker is generated from one source (make manifests reads
// controllers/speaker and controllers/l2mode).
//
// +kubebuilder:rbac:groups=bgplb.io,resources=l2advertisements,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=services/status,verbs=patch
