// This module builds bgplb's container image without a Docker engine. It is
// kept apart from bgplb's own module so the product does not depend on it.
module github.com/bgplb/bgplb/hack/image

go 1.26

require github.com/google/go-containerregistry v0.22.1

require (
	github.com/klauspost/compress v1.19.2 // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
	golang.org/x/sync v0.22.0 // indirect
)
