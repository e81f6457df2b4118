#!/usr/bin/env bash
# Instructions per proxied request in Portico, with callgrind (repeatable on a noisy machine,
# unlike perf's samples or req/s). Starts the bench upstream and Portico under valgrind on
# loopback, sends 2,000 warm-up requests, zeroes the counters, sends 20,000 (h2load, 16
# connections), dumps, stops. Prints the totals; inspect the file with
#   callgrind_annotate --inclusive=yes FILE | head -80
# MODE: `plain` (HTTP/1.1, the default), `tls-h1` (HTTP/1.1 over TLS) or `tls-h2` (HTTP/2 over
# TLS, one stream per connection, as the runner's tls-h2). The TLS modes use dev's self-signed
# certificate (ECDSA P-256, like the runner's) and ALPN. Each h2load run opens its 16
# connections anew, so the counted 20,000 requests include 16 full handshakes (not resumed:
# h2load keeps no session cache), about 1/1250 of a handshake per request.
# EXTRA (env): more `portico dev` arguments, e.g. EXTRA="--cache-cluster-size 0.5".
# Needs: valgrind, h2load (nghttp2-client), curl, target/release/{portico,portico-bench}.
# Usage: bench/profile-callgrind.sh [OUT_FILE] [plain|tls-h1|tls-h2]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}/release
out=${1:-/tmp/portico-callgrind.out}
mode=${2:-plain}
work=$(mktemp -d)
trap 'kill $gateway $upstream 2>/dev/null || true; rm -rf "$work"' EXIT
upstream_port=19101
gateway_port=19102
case $mode in
    plain) scheme=http listen=(--http 127.0.0.1:$gateway_port --https off) h1=(--h1) ;;
    tls-h1) scheme=https listen=(--http off --https 127.0.0.1:$gateway_port) h1=(--h1) ;;
    tls-h2) scheme=https listen=(--http off --https 127.0.0.1:$gateway_port) h1=() ;;
    *) echo "unknown mode '$mode': plain, tls-h1 or tls-h2" >&2; exit 2 ;;
esac
"$target/portico-bench" upstream --listen 127.0.0.1:$upstream_port &
upstream=$!
# shellcheck disable=SC2086
TOKIO_WORKER_THREADS=1 RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$target/portico" dev --api "$root/bench/config/proxy.yaml" --stage b \
    --stage-var upstream=127.0.0.1:$upstream_port "${listen[@]}" \
    --data-dir "$work/data" --drain-seconds 1 --workers 1 ${EXTRA:-} > /dev/null 2> "$work/stderr" &
gateway=$!
url="$scheme://127.0.0.1:$gateway_port/b/small"
for _ in $(seq 1 60); do
    curl -sk -o /dev/null "$url" && break
    sleep 1
done
h2load "${h1[@]}" -m1 -n 2000 -c 16 -t1 "$url" | grep "requests:"
callgrind_control -z $gateway > /dev/null
h2load "${h1[@]}" -m1 -n 20000 -c 16 -t1 "$url" | grep -E "requests:|TLS Protocol|Cipher|Application protocol"
callgrind_control -d $gateway > /dev/null
sleep 1
total=$(callgrind_annotate "$out".1 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "$mode: instructions per request: $((total / 20000)) (file: $out.1)"
