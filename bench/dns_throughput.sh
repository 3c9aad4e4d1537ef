#!/bin/sh
# UDP/TCP throughput of srvdns vs NSD vs dnslib's stock server; see bench/dns_throughput.py.
# Needs dnsperf, nsd and taskset (Debian: apt-get install dnsperf nsd util-linux); installs nothing.
set -eu
for tool in dnsperf taskset; do
    command -v "$tool" >/dev/null || { echo "missing: $tool (apt-get install dnsperf nsd)" >&2; exit 1; }
done
[ -x /usr/sbin/nsd ] || command -v nsd >/dev/null || { echo "missing: nsd (apt-get install nsd)" >&2; exit 1; }
cd "$(dirname "$0")/.."
exec python bench/dns_throughput.py "$@"
