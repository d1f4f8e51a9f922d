#!/usr/bin/env bash
# Instructions per request in user space, counted (not sampled, not timed): each proxy runs
# under valgrind's callgrind, instrumentation switched on only while wrk (1 thread, 4
# connections, DURATION seconds) loads it through loopback, in front of a static nginx (1 KiB
# page). The count of one request does not move with the machine's load, unlike CPU time on a
# shared machine, so a change of a few per cent in the proxy's own work shows; it leaves out the
# kernel (system calls, loopback TCP) and what instructions cost (cache misses, contention).
#
# Rows: the bare pingora passthrough (benches/passthrough.rs, guichet's pingora settings); the
# same adding, as fixed values, the headers guichet adds to a request with a session; guichet
# with a live session (access log on, the default); the same with [assertion] + [signature];
# nginx proxy_pass (one process, upstream keepalive), for scale.
# guichet runs from benches/sessions.rs --serve (the real gateway, its one session made by the
# login's constructors). One more row: the passthrough speaking HTTP/2 without TLS (h2c, prior
# knowledge) to an nginx serving the same page over it, one multiplexed upstream connection
# instead of HTTP/1.1 keep-alive. Two more: the smallest proxy loop on pingora-core
# (benches/passthrough.rs --core: no pingora-proxy, requests without a body only), alone and
# adding the same headers as the second row — the floor of a proxy loop of guichet's own.
#
# Usage: benches/instructions.sh [DURATION=8]   (KEEP_WORK=1 keeps the scratch directory).
# Needs valgrind, wrk and nginx (Debian: valgrind wrk nginx-light).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-8}
threads=2
for tool in valgrind callgrind_control wrk nginx curl; do
  command -v "$tool" >/dev/null || { echo "instructions.sh: $tool is missing" >&2; exit 1; }
done

work=$(mktemp -d /tmp/guichet-instructions.XXXXXX)
chmod 755 "$work"   # nginx's worker (www-data) reads the page from it
static=127.0.0.1:18383; static_h2c=127.0.0.1:18386; idp=127.0.0.1:18385; gw=127.0.0.1:18380; passthrough=127.0.0.1:18390
proxy=127.0.0.1:18384
pids_to_stop=()
stop() {
  for pid in "${pids_to_stop[@]}"; do { kill -9 "$pid" && wait "$pid"; } 2>/dev/null || true; done
  [ -f "$work/nginx-static.conf" ] && nginx -c "$work/nginx-static.conf" -s stop 2>/dev/null || true
  [ -f "$work/nginx-static-h2c.conf" ] && nginx -c "$work/nginx-static-h2c.conf" -s stop 2>/dev/null || true
  [ -n "${KEEP_WORK:-}" ] && echo "work directory kept: $work" || rm -rf "$work"
}
trap stop EXIT

source benches/common/nginx.sh
static_page "$static"
# The same page over HTTP/2 without TLS (prior knowledge), for the passthrough's h2c row.
nginx_conf static-h2c 1 "  server { listen $static_h2c http2; root $work; location / { try_files /page.html =404; } }"

client_secret=count-secret
source benches/common/guichet.sh
bench_binaries
mock_provider "$gw"
guichet_conf guichet.toml "$gw" "$gw" "[upstream]
url = \"http://$static\""
./target/release/guichet keygen --out "$work/assertion.pem" >/dev/null
cp "$work/guichet.toml" "$work/guichet-signed.toml"
cat >>"$work/guichet-signed.toml" <<EOT
[assertion]
keys = ["$work/assertion.pem"]
[signature]
key = "count-signature-key-of-32-bytes-at-least"
EOT

# count NAME URL HEADER COMMAND…: starts COMMAND under callgrind (its output in NAME.out-put,
# or in $STDOUT), waits until URL serves the page (with HEADER, or the first cookie COMMAND
# prints to $STDOUT when HEADER is empty), warms it up, counts DURATION seconds of load, prints
# instructions per request.
count() {
  local name=$1 url=$2 header=$3
  shift 3
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/$name.out" \
    "$@" >"${STDOUT:-$work/$name.output}" 2>"$work/$name.log" &
  local pid=$!
  pids_to_stop+=("$pid")
  if [ -z "$header" ]; then
    for _ in $(seq 1 600); do [ -s "$STDOUT" ] && break; sleep 0.1; done
    header="Cookie: guichet=$(head -1 "$STDOUT")"
  fi
  local answer=""
  for _ in $(seq 1 600); do
    answer=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' -H "$header" "$url" || true)
    [ "$answer" = "200 1024" ] && break
    sleep 0.2
  done
  [ "$answer" = "200 1024" ] || { echo "instructions.sh: $name answered '$answer'" >&2; tail -5 "$work/$name.log" >&2; exit 1; }
  wrk -t1 -c4 -d3s -H "$header" "$url" >/dev/null
  callgrind_control -i on "$pid" >/dev/null
  wrk -t1 -c4 -d"${duration}s" -H "$header" "$url" >"$work/$name.wrk"
  callgrind_control -i off "$pid" >/dev/null
  callgrind_control -d "$pid" >/dev/null
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local requests errors instructions
  requests=$(awk '/requests in/ {print $1}' "$work/$name.wrk")
  errors=$(grep -E "Non-2xx|Socket errors" "$work/$name.wrk" || true)
  instructions=$(cat "$work/$name.out".* 2>/dev/null | awk '/^totals:/ {s += $2} END {print s + 0}')
  [ -n "$errors" ] && echo "instructions.sh: $name: $errors" >&2
  echo "$instructions $requests" | awk -v name="$name" '{printf "| %s | %d | %.0f |\n", name, $2, $1 / $2}' | tee -a "$work/rows"
}

echo "| path | requests counted | instructions per request |"
echo "| --- | --- | --- |"
count "bare pingora passthrough" "http://$passthrough/" "X-Count: 1" \
  "$passthrough_bin" --listen "$passthrough" --upstream "$static" --threads "$threads"
# guichet, which also writes the headers it adds to its session's requests.
STDOUT="$work/cookie" count "guichet, live session" "http://$gw/" "" \
  "$sessions_bin" --serve "$work/guichet.toml" --fill 1 --upstream-headers "$work/upstream-headers"
added=$(grep -c ': ' "$work/upstream-headers")
count "bare pingora passthrough + the $added headers guichet adds, fixed values" \
  "http://$passthrough/" "X-Count: 1" \
  "$passthrough_bin" --listen "$passthrough" --upstream "$static" --threads "$threads" \
  --add-headers "$work/upstream-headers"
count "bare pingora passthrough, h2c to the upstream (HTTP-2 without TLS)" "http://$passthrough/" "X-Count: 1" \
  "$passthrough_bin" --listen "$passthrough" --upstream "$static_h2c" --threads "$threads" --h2c
count "pingora-core loop, no pingora-proxy (requests without a body)" "http://$passthrough/" "X-Count: 1" \
  "$passthrough_bin" --listen "$passthrough" --upstream "$static" --threads "$threads" --core
count "pingora-core loop + the $added headers, fixed values" "http://$passthrough/" "X-Count: 1" \
  "$passthrough_bin" --listen "$passthrough" --upstream "$static" --threads "$threads" --core \
  --add-headers "$work/upstream-headers"
STDOUT="$work/cookie-signed" count "guichet, live session, assertion + signature" "http://$gw/" "" \
  "$sessions_bin" --serve "$work/guichet-signed.toml" --fill 1
# nginx proxy_pass as one process (no master, no daemon), so that callgrind follows it.
cat >"$work/nginx-counted.conf" <<EOT
daemon off;
master_process off;
worker_processes 1;
pid $work/nginx-counted.pid;
error_log $work/nginx-counted.error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/body-counted; proxy_temp_path $work/proxy-counted;
  fastcgi_temp_path $work/fcgi-counted; uwsgi_temp_path $work/uwsgi-counted; scgi_temp_path $work/scgi-counted;
  upstream static { server $static; keepalive 64; }
  server { listen $proxy; location / { proxy_pass http://static; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
EOT
count "nginx proxy_pass (one process, upstream keepalive)" "http://$proxy/" "X-Count: 1" \
  "$(command -v nginx)" -c "$work/nginx-counted.conf"
echo
awk -F' \\| ' 'NR == 1 {base = $3 + 0} {printf "%s: %.2f x the passthrough'"'"'s instructions\n", substr($1, 3), $3 / base}' "$work/rows"
