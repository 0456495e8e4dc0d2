#!/usr/bin/env bash
# Usage: hack/beside.sh BACKGROUND-COMMAND FOREGROUND-COMMAND [ARG...]
#
# Runs FOREGROUND-COMMAND, and BACKGROUND-COMMAND (a shell string) in the
# time the foreground leaves idle: the background starts when the
# foreground creates the file named by $BGPLB_IDLE_FLAG (the real-node
# cluster suite does when it has stopped the API server for its five-minute
# outage), or when the foreground exits, whichever comes first. Waits for
# both; fails if either failed.
#
# `make test` runs lint, the unit tests and the envtest suites this way,
# in the cluster suite's outage, and never while the cluster is busy: run
# beside it from the start, the envtest controllers were starved for
# seconds while the cluster suite worked.
#
# The background runs at the lowest CPU priority all the same, nice 19 in
# a session, hence an autogroup, of its own with that autogroup's nice also
# 19: the kernel weighs autogroups against each other before it looks at
# nice values inside them, so a plain `nice` would still get an equal share
# against the FRR daemons, kubelets and pods (whose BFD and ARP timers are
# measured) when the outage ends before the background does.
# Ctrl-C (or SIGTERM) stops both.
set -uo pipefail

if [[ $# -lt 2 ]]; then
	echo "usage: $0 BACKGROUND-COMMAND FOREGROUND-COMMAND [ARG...]" >&2
	exit 2
fi
background=$1
shift

dir=$(mktemp -d)
export BGPLB_IDLE_FLAG=$dir/idle
# A background job of a non-interactive shell is no process-group leader,
# so setsid does not fork: $! is the new session's leader and its group.
setsid bash -c 'while [[ ! -e "$2" ]]; do sleep 1; done
	echo "== $(date -u +%FT%TZ) beside: starting: $1"
	echo 19 > /proc/$$/autogroup 2>/dev/null || true
	exec nice -n 19 bash -c "$1"' beside "$background" "$BGPLB_IDLE_FLAG" &
bg=$!
# SIGTERM, not SIGINT: a background job of a non-interactive shell ignores
# SIGINT, and so does everything it starts.
trap 'kill -TERM -- -"$bg" 2>/dev/null; wait "$bg"; rm -rf "$dir"; exit 130' INT TERM

"$@"
fg=$?
touch "$BGPLB_IDLE_FLAG" # the foreground is done: the background may start now if it has not
wait "$bg"
b=$?
trap - INT TERM
rm -rf "$dir"
if [[ $fg != 0 || $b != 0 ]]; then
	echo "beside: foreground ($*) exit $fg, background ($background) exit $b" >&2
	exit 1
fi
