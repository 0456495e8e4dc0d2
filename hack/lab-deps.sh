#!/usr/bin/env bash
# Makes sure the lab's prerequisites are here: root, iproute2 (ip netns),
# ping (iputils-ping), FRR (zebra, bgpd, bfdd, vtysh, the frr user) and
# frr-reload.py (frr-pythontools: the frr-k8s backend's specs check with it
# that FRR accepts what frr-k8s renders). As
# root it installs what is missing with apt-get; otherwise it says exactly
# what to run.
#   hack/lab-deps.sh          install when possible
#   hack/lab-deps.sh --check  same, and fail if anything is still missing
# With --cluster (before or after --check) it also covers what the real-node
# cluster (test/cluster) needs: containerd, runc, the CNI plugins, iptables,
# nsenter and mount (util-linux), and the kernel's br_netfilter module.
set -euo pipefail

check=0 cluster=0
for a in "$@"; do
	case "$a" in
	--check) check=1 ;;
	--cluster) cluster=1 ;;
	*) ;; # other arguments are ignored, as before
	esac
done
pkgs=(frr frr-pythontools iproute2 iputils-ping)
((cluster)) && pkgs+=(containerd runc containernetworking-plugins iptables util-linux)

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
	[[ -x /usr/lib/frr/frr-reload.py ]] || m+=("frr-pythontools")
	if ((cluster)); then
		command -v containerd >/dev/null 2>&1 && command -v ctr >/dev/null 2>&1 || m+=("containerd")
		command -v runc >/dev/null 2>&1 || m+=("runc")
		[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] || m+=("containernetworking-plugins")
		command -v iptables >/dev/null 2>&1 && command -v ip6tables >/dev/null 2>&1 || m+=("iptables")
		command -v nsenter >/dev/null 2>&1 || m+=("util-linux")
	fi
	printf '%s\n' "${m[@]}"
}

if [[ -n "$(missing | grep -v '^root' || true)" && $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
	echo "lab-deps: installing ${pkgs[*]} with apt-get" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2
fi
# kube-proxy and bridged pods: iptables must see bridged traffic (best effort;
# a kernel with it built in has no module to load).
if ((cluster)) && [[ $(id -u) == 0 && ! -e /proc/sys/net/bridge ]]; then
	modprobe br_netfilter 2>/dev/null || true
fi

left="$(missing)"
if [[ -n "$left" ]]; then
	echo "lab-deps: the lab cannot run; missing:" >&2
	sed 's/^/  - /' <<<"$left" >&2
	echo "  fix: sudo apt-get update && sudo apt-get install -y ${pkgs[*]}, then run as root (sudo -E make ...)" >&2
	echo "  or skip the lab by hand: LAB=skip make test" >&2
	((check)) && exit 1
fi
exit 0
