#!/usr/bin/env bash
# Makes sure the lab's prerequisites are here: root, iproute2 (ip netns),
# ping (iputils-ping) and FRR (zebra, bgpd, bfdd, vtysh, the frr user). As
# root it installs what is missing with apt-get; otherwise it says exactly
# what to run.
#   hack/lab-deps.sh          install when possible
#   hack/lab-deps.sh --check  same, and fail if anything is still missing
set -euo pipefail

frr_bin() { # the FRR daemons live in /usr/lib/frr on Debian
	command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/lib/frr/$1" ]]
}

missing() {
	local m=()
	[[ $(id -u) == 0 ]] || m+=("root (the lab creates network namespaces)")
	command -v ip >/dev/null 2>&1 || m+=("iproute2")
	command -v ping >/dev/null 2>&1 || m+=("iputils-ping")
	local frr=1
	for d in zebra bgpd bfdd vtysh; do frr_bin "$d" || frr=0; done
	id frr >/dev/null 2>&1 || frr=0
	((frr)) || m+=("frr")
	printf '%s\n' "${m[@]}"
}

if [[ -n "$(missing | grep -v '^root' || true)" && $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
	echo "lab-deps: installing frr, iproute2 and iputils-ping with apt-get" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends frr iproute2 iputils-ping >&2
fi

left="$(missing)"
if [[ -n "$left" ]]; then
	echo "lab-deps: the lab cannot run; missing:" >&2
	sed 's/^/  - /' <<<"$left" >&2
	echo "  fix: sudo apt-get update && sudo apt-get install -y frr iproute2 iputils-ping, then run as root (sudo -E make ...)" >&2
	echo "  or skip the lab by hand: LAB=skip make test" >&2
	[[ "${1:-}" == "--check" ]] && exit 1
fi
exit 0
