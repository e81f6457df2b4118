#!/usr/bin/env bash
# System calls per proxied request, Portico (one worker, access log on) and nginx (one worker,
# access log off) side by side: `strace -c -f` attached to the target for the whole of a 3 s
# wrk run (64 connections, the ~100-byte route), divided by wrk's request count. strace slows
# the traced process, so read the per-request counts, not the rates.
# Needs: strace, wrk, nginx, bc, target/release/{portico,portico-bench}.
# Usage: bench/syscalls.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}/release
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
upstream_port=19201; portico_port=19202; nginx_port=19203
"$target/portico-bench" upstream --listen 127.0.0.1:$upstream_port & pids+=($!)
RUST_LOG=warn TOKIO_WORKER_THREADS=1 "$target/portico" dev --api "$root/bench/config/proxy.yaml" \
    --stage b --stage-var upstream=127.0.0.1:$upstream_port --http 127.0.0.1:$portico_port \
    --https off --data-dir "$work/data" --workers 1 > "$work/access.log" 2> "$work/stderr" &
pids+=($!); portico=$!
mkdir -p "$work/tmp"
cat > "$work/nginx.conf" <<CONF
worker_processes 1; daemon off; master_process off; pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $work/tmp; proxy_temp_path $work/tmp;
  fastcgi_temp_path $work/tmp; uwsgi_temp_path $work/tmp; scgi_temp_path $work/tmp;
  keepalive_requests 1000000;
  upstream u { server 127.0.0.1:$upstream_port; keepalive 128; keepalive_requests 1000000; }
  server { listen 127.0.0.1:$nginx_port;
    location / { proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
nginx -c "$work/nginx.conf" & pids+=($!); nginx=$!
for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$portico_port/b/small" \
        && curl -s -o /dev/null "http://127.0.0.1:$nginx_port/small" && break
    sleep 0.1
done
measure() { # name pid url
    local name=$1 pid=$2 url=$3
    strace -c -f -p "$pid" -o "$work/$name.strace" 2>/dev/null &
    local tracer=$!
    sleep 0.5
    # Every request of this run happens while traced: calls / wrk's requests is per request.
    wrk -t1 -c64 -d3s "$url" > "$work/$name.wrk"
    kill -INT $tracer; wait $tracer 2>/dev/null || true
    local requests calls
    requests=$(awk '/requests in/ {print $1}' "$work/$name.wrk")
    calls=$(awk '/total/ {print $4}' "$work/$name.strace")
    echo "== $name: $requests requests, $calls system calls, $(echo "scale=2; $calls / $requests" | bc) per request"
    awk 'NR > 2 && $NF != "total" && $4 ~ /^[0-9]+$/ {printf "   %-16s %8d  %6.3f/request\n", $NF, $4, $4 / '"$requests"'}' "$work/$name.strace" | sort -k2 -n -r | head -12
}
measure portico "$portico" "http://127.0.0.1:$portico_port/b/small"
measure nginx "$nginx" "http://127.0.0.1:$nginx_port/small"
