#!/usr/bin/env bash
# Removes what a crashed lab run left behind: its API server and etcd,
# processes it recorded in /run/bgplb-lab, bgplb-lab-* namespaces, the
# bgplb-mgmt bridge and veths.
# Refuses while a running lab holds the lock. Needs root.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec go run ./test/lab/cmd/bgplb-lab cleanup
