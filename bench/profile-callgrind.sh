#!/usr/bin/env bash
# Instructions per proxied request in Portico, with callgrind (repeatable on a noisy machine,
# unlike perf's samples or req/s). Starts the bench upstream and Portico under valgrind on
# loopback, sends 2,000 warm-up requests, zeroes the counters, sends 20,000 (h2load --h1,
# 16 connections), dumps, stops. Prints the totals; inspect the file with
#   callgrind_annotate --inclusive=yes FILE | head -80
# Needs: valgrind, h2load (nghttp2-client), curl, target/release/{portico,portico-bench}.
# Usage: bench/profile-callgrind.sh [OUT_FILE]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}/release
out=${1:-/tmp/portico-callgrind.out}
work=$(mktemp -d)
trap 'kill $gateway $upstream 2>/dev/null || true; rm -rf "$work"' EXIT
upstream_port=19101
gateway_port=19102
"$target/portico-bench" upstream --listen 127.0.0.1:$upstream_port &
upstream=$!
TOKIO_WORKER_THREADS=1 RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$target/portico" dev --api "$root/bench/config/proxy.yaml" --stage b \
    --stage-var upstream=127.0.0.1:$upstream_port --http 127.0.0.1:$gateway_port --https off \
    --data-dir "$work/data" --drain-seconds 1 > /dev/null 2> "$work/stderr" &
gateway=$!
for _ in $(seq 1 60); do
    curl -s -o /dev/null "http://127.0.0.1:$gateway_port/b/small" && break
    sleep 1
done
url="http://127.0.0.1:$gateway_port/b/small"
h2load --h1 -n 2000 -c 16 -t1 "$url" | grep "requests:"
callgrind_control -z $gateway > /dev/null
h2load --h1 -n 20000 -c 16 -t1 "$url" | grep "requests:"
callgrind_control -d $gateway > /dev/null
sleep 1
total=$(callgrind_annotate "$out".1 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "instructions per request: $((total / 20000)) (file: $out.1)"
