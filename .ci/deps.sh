#!/usr/bin/env bash
# Installs, as root on Debian, the tools the root-only interop tests use, and
# only those that are missing; does nothing (and says so) for other users.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

if [ "$(id -u)" != 0 ]; then
	echo "deps: not root: skipping tool install (the interop tests will be skipped)"
	exit 0
fi

# tool -> Debian package
missing=()
for pair in ip:iproute2 nft:nftables iperf3:iperf3 curl:curl ping:iputils-ping; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
	echo "deps: missing ${missing[*]} and no apt-get: install them by hand" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
	cat "$log" >&2
	echo "deps: apt-get failed" >&2
	exit 1
fi
