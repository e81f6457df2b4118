#!/usr/bin/env bash
# Brings up a three-region Portico cluster on loopback for development: one origin and one edge
# per region (127.0.0.11-13 origins, 127.0.0.21-23 edges), deploys a small MOCK API, prints how
# to reach it, and stops everything on Ctrl-C. Regions talk directly here (no added delay); the
# cluster tests put a link emulator between them.
#
#   scripts/local-cluster.sh            # build (debug) and run
#   PORTICO=target/release/portico scripts/local-cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PORTICO=${PORTICO:-target/debug/portico}
if [ "$PORTICO" = target/debug/portico ]; then
  cargo build -p portico --bin portico
fi
WORK=$(mktemp -d -t portico-cluster.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped; logs and data were in $WORK"
}
trap cleanup EXIT INT TERM

REGIONS=(us-east eu-west ap-south)
NODES=()
for i in 1 2 3; do NODES+=(--node "$i=127.0.0.1$i" --edge "2$i=127.0.0.2$i"); done
"$PORTICO" cluster init --dir "$WORK/certs" "${NODES[@]}"

tls() {
  printf '[tls]\nca = "%s"\ncert = "%s"\nkey = "%s"\n' \
    "$WORK/certs/ca.pem" "$WORK/certs/node-$1.pem" "$WORK/certs/node-$1-key.pem"
}
for i in 1 2 3; do
  region=${REGIONS[$((i - 1))]}
  {
    printf 'node_id = %d\nregion = "%s"\ndata_dir = "%s"\nlisten = "127.0.0.1%d:7100"\n' \
      "$i" "$region" "$WORK/node-$i" "$i"
    tls "$i"
    printf '[raft]\nbootstrap = %s\n' "$([ "$i" = 1 ] && echo true || echo false)"
    for j in 1 2 3; do
      [ "$i" = "$j" ] && continue
      printf '\n[[peers]]\nnode_id = %d\naddr = "127.0.0.1%d:7100"\nregion = "%s"\n' \
        "$j" "$j" "${REGIONS[$((j - 1))]}"
    done
  } > "$WORK/origin-$i.toml"
  {
    printf 'node_id = 2%d\nregion = "%s"\ndata_dir = "%s"\nhttp = "127.0.0.2%d:8080"\n' \
      "$i" "$region" "$WORK/node-2$i" "$i"
    tls "2$i"
    for j in $i $(seq 1 3 | grep -v "^$i$"); do
      printf '\n[[origins]]\nnode_id = %d\naddr = "127.0.0.1%d:7100"\nregion = "%s"\n' \
        "$j" "$j" "${REGIONS[$((j - 1))]}"
    done
  } > "$WORK/edge-2$i.toml"
done

for i in 1 2 3; do
  "$PORTICO" origin --config "$WORK/origin-$i.toml" 2> "$WORK/origin-$i.log" & PIDS+=($!)
done
for i in 1 2 3; do
  "$PORTICO" edge --config "$WORK/edge-2$i.toml" > /dev/null 2> "$WORK/edge-2$i.log" & PIDS+=($!)
done

CTL=("$PORTICO" ctl --origin 127.0.0.11:7100 --certs "$WORK/certs")
for _ in $(seq 1 100); do
  if "${CTL[@]}" status --json 2>/dev/null | grep -q '"leader":[0-9]'; then break; fi
  sleep 0.2
done

cat > "$WORK/hello.yaml" <<'YAML'
openapi: 3.0.1
info: { title: hello, version: "1" }
paths:
  /hello:
    get:
      x-amazon-apigateway-integration:
        type: mock
        requestTemplates: { application/json: '{"statusCode": 200}' }
        responses:
          default:
            statusCode: "200"
            responseTemplates: { application/json: '{"message": "hello from a three-region cluster"}' }
YAML
API_ID=$("${CTL[@]}" apply "$WORK/hello.yaml" --api hello --stage prod | sed -n 's/^api_id=//p')
"${CTL[@]}" status
cat <<MSG

A three-region cluster is running (work dir $WORK). Try:
  curl -H 'Host: $API_ID.execute-api.localhost' http://127.0.0.21:8080/prod/hello
  curl -H 'Host: $API_ID.execute-api.localhost' http://127.0.0.23:8080/prod/hello
  ${CTL[*]} status
  kill one origin (ps aux | grep 'portico origin') and watch the others elect a leader.
Ctrl-C stops everything.
MSG
wait
