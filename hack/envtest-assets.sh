#!/usr/bin/env bash
# Builds the envtest binaries (kube-apiserver, etcd, kubectl) from the Go module
# proxy and prints the directory that holds them, for KUBEBUILDER_ASSETS.
#
# No binary download is possible on our machines, so we compile the pinned
# releases (kube-apiserver v1.37.2, etcd v3.6.16) from source. The result is
# cached outside the repository; a second run only checks the cache.
#
# KUBEBUILDER_ASSETS, when set and holding the binaries, wins.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
k8s_version=1.37.2
etcd_version=3.6.16
cache="${XDG_CACHE_HOME:-$HOME/.cache}/bgplb/envtest"
dir="$cache/k8s-$k8s_version-etcd-$etcd_version"

have_all() {
	[[ -x "$1/kube-apiserver" && -x "$1/etcd" && -x "$1/kubectl" ]]
}

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]] && have_all "$KUBEBUILDER_ASSETS"; then
	echo "$KUBEBUILDER_ASSETS"
	exit 0
fi

# The stamp records the go.sum files the binaries came from, so editing the
# pins rebuilds them.
stamp="$(cat "$here/envtest/apiserver/go.sum" "$here/envtest/etcd/go.sum" | sha256sum | cut -c1-16)"
if have_all "$dir" && [[ "$(cat "$dir/.stamp" 2>/dev/null)" == "$stamp" ]]; then
	echo "$dir"
	exit 0
fi

command -v go >/dev/null || { echo "envtest-assets: go is not on PATH" >&2; exit 1; }
echo "envtest-assets: building kube-apiserver v$k8s_version, kubectl and etcd v$etcd_version from source into $dir (about 10 minutes on 2 cores, once)" >&2

tmp="$(mktemp -d "$cache.build.XXXXXX" 2>/dev/null || { mkdir -p "$cache"; mktemp -d "$cache.build.XXXXXX"; })"
trap 'rm -rf "$tmp"' EXIT

build() { # module-dir output package
	(cd "$here/envtest/$1" && CGO_ENABLED=0 GOFLAGS=-mod=mod GOWORK=off \
		go build -trimpath -ldflags=-s -o "$tmp/$2" "$3") >&2
}
build apiserver kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build apiserver kubectl k8s.io/kubernetes/cmd/kubectl
build etcd etcd go.etcd.io/etcd/server/v3

echo "$stamp" >"$tmp/.stamp"
mkdir -p "$cache"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "envtest-assets: ready in $dir" >&2
echo "$dir"
