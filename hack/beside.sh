#!/usr/bin/env bash
# Usage: hack/beside.sh BACKGROUND-COMMAND FOREGROUND-COMMAND [ARG...]
#
# Runs BACKGROUND-COMMAND (a shell string) at the lowest CPU priority while
# FOREGROUND-COMMAND runs, waits for both, and fails if either failed.
# `make test` uses it to run lint, the unit tests and the envtest suites
# beside the lab and real-node cluster suites, which mostly wait (five
# minutes of the cluster suite is a stopped API server) but whose BFD and
# L2 timers want the CPU the moment they need it.
#
# Lowest priority means nice 19 in a session, hence an autogroup, of its
# own, with that autogroup's nice also 19: the kernel weighs autogroups
# against each other before it looks at nice values inside them, so a plain
# `nice` would still get an equal share against the FRR daemons, kubelets
# and pods, which run in sessions and cgroups of their own.
# Ctrl-C (or SIGTERM) stops both.
set -uo pipefail

if [[ $# -lt 2 ]]; then
	echo "usage: $0 BACKGROUND-COMMAND FOREGROUND-COMMAND [ARG...]" >&2
	exit 2
fi
background=$1
shift

# A background job of a non-interactive shell is no process-group leader,
# so setsid does not fork: $! is the new session's leader and its group.
setsid bash -c 'echo 19 > /proc/$$/autogroup 2>/dev/null || true; exec nice -n 19 bash -c "$1"' beside "$background" &
bg=$!
# SIGTERM, not SIGINT: a background job of a non-interactive shell ignores
# SIGINT, and so does everything it starts.
trap 'kill -TERM -- -"$bg" 2>/dev/null; wait "$bg"; exit 130' INT TERM

"$@"
fg=$?
wait "$bg"
b=$?
trap - INT TERM
if [[ $fg != 0 || $b != 0 ]]; then
	echo "beside: foreground ($*) exit $fg, background ($background) exit $b" >&2
	exit 1
fi
