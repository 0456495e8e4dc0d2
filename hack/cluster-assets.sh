#!/usr/bin/env bash
# Builds the Kubernetes binaries of the real-node test cluster (test/cluster) from
# the Go module proxy and prints the directory that holds them:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy,
#   kubectl (k8s.io/kubernetes v1.37.2, module hack/envtest/node) and etcd (a link
#   to the envtest build, hack/envtest-assets.sh).
#
# No binary download is possible on our machines, so we compile the pinned
# release from source, version-stamped like an official build (else they report
# v0.0.0-master). The result is cached outside the repository; a second run only
# checks the cache. The first build takes about 8 minutes on 2 cores (less when
# the envtest build already filled Go's build cache).
#
# BGPLB_CLUSTER_ASSETS, when set and holding the binaries, wins.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
k8s_version=1.37.2
cache="${XDG_CACHE_HOME:-$HOME/.cache}/bgplb/cluster"
bins=(kubelet kube-proxy kube-controller-manager kube-scheduler kubectl kube-apiserver)

have_all() {
	local b
	for b in "${bins[@]}" etcd; do [[ -x "$1/$b" ]] || return 1; done
}

if [[ -n "${BGPLB_CLUSTER_ASSETS:-}" ]] && have_all "$BGPLB_CLUSTER_ASSETS"; then
	echo "$BGPLB_CLUSTER_ASSETS"
	exit 0
fi

# The stamp records the go.sum the binaries came from, so editing the pins
# rebuilds them.
stamp="$(cat "$here/envtest/node/go.sum" | sha256sum | cut -c1-16)"
dir="$cache/k8s-$k8s_version-$stamp"
# etcd comes from the envtest build (same pins), linked in after ours.
link_etcd() {
	local envtest
	envtest="$("$here/envtest-assets.sh")"
	ln -sfn "$envtest/etcd" "$1/etcd"
}
if have_all "$dir"; then
	echo "$dir"
	exit 0
fi
if [[ -d "$dir" ]] && (have_all "$dir" || { link_etcd "$dir" && have_all "$dir"; }); then
	echo "$dir"
	exit 0
fi

command -v go >/dev/null || { echo "cluster-assets: go is not on PATH" >&2; exit 1; }
echo "cluster-assets: building ${bins[*]} v$k8s_version from source into $dir (about 8 minutes on 2 cores, once)" >&2

mkdir -p "$cache"
tmp="$(mktemp -d "$cache/build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

ver=k8s.io/component-base/version
ldflags="-s -w -X $ver.gitVersion=v$k8s_version -X $ver.gitMajor=${k8s_version%%.*}"
minor="${k8s_version#*.}"
ldflags+=" -X $ver.gitMinor=${minor%%.*} -X $ver.gitTreeState=clean -X $ver.buildDate=1970-01-01T00:00:00Z"
for b in "${bins[@]}"; do
	start=$SECONDS
	(cd "$here/envtest/node" && CGO_ENABLED=0 GOFLAGS=-mod=mod GOWORK=off \
		nice -n 10 go build -trimpath -ldflags="$ldflags" -o "$tmp/$b" "k8s.io/kubernetes/cmd/$b") >&2
	echo "cluster-assets: $b built in $((SECONDS - start)) s" >&2
done

rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
link_etcd "$dir"
echo "cluster-assets: ready in $dir" >&2
echo "$dir"
