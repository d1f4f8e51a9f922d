#!/usr/bin/env bash
# Where a proxy spends its CPU per request: runs guichet with a live session (access log on,
# the default), the bare pingora passthrough (benches/passthrough.rs, guichet's pingora
# settings), the smallest proxy loop on pingora-core (benches/passthrough.rs --core, with
# guichet's connection pool: the floor under guichet's own HTTP/1.x loop) and nginx proxy_pass (workers = THREADS, upstream keepalive) in front of the same
# static nginx, loads each with wrk over loopback for
# DURATION seconds while `perf record` samples that proxy's processes only (999 Hz, no call
# graph), and prints each one's self time grouped by what the code is (kernel, allocator,
# copies, HTTP/1 parsing, header maps, tokio, pingora, …), as shares of its samples.
#
# Usage: benches/profile.sh [DURATION=8]     (THREADS=2, CONNECTIONS=64; SYMBOLS=N lists N
# symbols per group instead of 3; KEEP_WORK=1 keeps the perf data in the printed directory). Needs perf (Debian linux-perf), wrk and nginx.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-8}
threads=${THREADS:-2}
connections=${CONNECTIONS:-64}
for tool in perf wrk nginx; do
  command -v "$tool" >/dev/null || { echo "profile.sh: $tool is missing" >&2; exit 1; }
done

work=$(mktemp -d /tmp/guichet-profile.XXXXXX)
chmod 755 "$work"   # nginx workers (www-data) read the page from it
static=127.0.0.1:18183; proxy=127.0.0.1:18184; passthrough=127.0.0.1:18190; core=127.0.0.1:18191
idp=127.0.0.1:18185; gw=127.0.0.1:18180
pids_to_stop=()
stop() {
  for pid in "${pids_to_stop[@]}"; do kill "$pid" 2>/dev/null || true; done
  for conf in static proxy; do
    [ -f "$work/nginx-$conf.conf" ] && nginx -c "$work/nginx-$conf.conf" -s stop 2>/dev/null || true
  done
  [ -n "${KEEP_WORK:-}" ] && echo "work directory kept: $work" || rm -rf "$work"
}
trap stop EXIT

source benches/common/nginx.sh
static_page "$static"
nginx_conf proxy "$threads" "  upstream static { server $static; keepalive 64; }
  server { listen $proxy; location / { proxy_pass http://static; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"

client_secret=profile-secret
source benches/common/guichet.sh
bench_binaries
# guichet with one live session (made in-process by benches/sessions.rs, as in load.sh).
mock_provider "$gw"
guichet_conf guichet.toml "$gw" "$gw" "[upstream]
url = \"http://$static\""
"$sessions_bin" --serve "$work/guichet.toml" --fill 1 >"$work/cookie" 2>"$work/guichet.log" &
guichet_pid=$!; pids_to_stop+=("$guichet_pid")
for _ in $(seq 1 300); do [ -s "$work/cookie" ] && break; sleep 0.1; done
cookie="Cookie: guichet=$(head -1 "$work/cookie")"
"$passthrough_bin" --listen "$passthrough" --upstream "$static" --threads "$threads" >"$work/passthrough.log" 2>&1 &
pids_to_stop+=($!)
passthrough_pid=$!
"$passthrough_bin" --listen "$core" --upstream "$static" --threads "$threads" --core >"$work/core.log" 2>&1 &
pids_to_stop+=($!)
core_pid=$!
for address in "$passthrough" "$core"; do
  for _ in $(seq 1 100); do curl -fs -o /dev/null "http://$address/" && break; sleep 0.1; done
done

# The page, through URL with HEADER: 200 and 1,024 bytes, else the run stops.
serves_page() {
  local answer
  answer=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' -H "$2" "$1")
  [ "$answer" = "200 1024" ] || { echo "profile.sh: $1 answered '$answer', not the 1 KiB page" >&2; exit 1; }
}

# CPU seconds (user + system) of the processes in the comma-separated list.
cpu_seconds() {
  local total=0 pid
  for pid in ${1//,/ }; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total $(getconf CLK_TCK)" | awk '{printf "%.3f", $1 / $2}'
}

# profile NAME URL PIDS [HEADER]: wrk for duration + 5 s; perf record over `duration` seconds (with the
# processes' CPU time read around it), then 2 s of system-call counting.
profile() {
  local name=$1 url=$2 pids=$3
  local header=${4:-X-Profile: 1}
  serves_page "$url" "$header"
  wrk -t2 -c"$connections" -d"$((duration + 5))s" -H "$header" "$url" >"$work/$name.wrk" 2>&1 &
  local wrk_pid=$!
  sleep 1
  local before after
  before=$(cpu_seconds "$pids")
  perf record -q -F 999 -o "$work/$name.data" -p "$pids" -- sleep "$duration" >/dev/null 2>&1
  after=$(cpu_seconds "$pids")
  local syscalls
  syscalls=$(perf stat -x, -e raw_syscalls:sys_enter -p "$pids" -- sleep 2 2>&1 | awk -F, '/raw_syscalls/ {print $1}')
  wait "$wrk_pid"
  local rps
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/$name.wrk")
  local us_per_request
  us_per_request=$(echo "$before $after $rps $duration" | awk '{printf "%.1f", ($2 - $1) * 1e6 / ($3 * $4)}')
  echo
  echo "== $name: $rps requests/s; $us_per_request CPU-µs per request (with perf sampling); $(echo "$syscalls $rps" | awk '{printf "%.1f", $1 / 2 / $2}') system calls per request"
  perf report -i "$work/$name.data" --no-children --sort dso,sym --stdio 2>/dev/null |
    python3 benches/profile_buckets.py "$us_per_request" "${SYMBOLS:-3}"
}
served=""
for _ in $(seq 1 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "$cookie" "http://$gw/")" = 200 ] && served=yes && break
  sleep 0.1
done
[ -n "$served" ] || { echo "guichet did not serve the session: $(tail -5 "$work/guichet.log")" >&2; exit 1; }
profile "guichet, live session" "http://$gw/" "$guichet_pid" "$cookie"
profile "bare pingora passthrough" "http://$passthrough/" "$passthrough_pid"
profile "pingora-core loop (passthrough --core)" "http://$core/" "$core_pid"
workers=$(pgrep -d, -f "nginx: worker process" -P "$(cat "$work/nginx-proxy.pid")")
profile "nginx proxy_pass ($threads workers)" "http://$proxy/" "$workers"
