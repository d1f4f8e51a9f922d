#!/usr/bin/env bash
# Load test on loopback, one run, every row measured the same way:
#
#   wrk (2 threads, 64 connections, DURATION seconds) → [proxy under test] → a static nginx
#   (1 worker, a 1 KiB page)
#
# and, for each row, the CPU time the proxy's processes used (utime + stime from /proc, the
# process tree of the proxy only: not wrk, not the static nginx), so "requests per CPU-second"
# is the proxy's own efficiency whatever else the shared machine does; its RSS after the row.
# Rows run interleaved (A B C … A B C …, ROUNDS times) so drift shows; the summary keeps each
# row's median round.
#
# Rows: the static page direct; nginx proxy_pass (workers = THREADS, upstream keepalive); a bare
# pingora passthrough built from benches/passthrough.rs with guichet's pingora settings; the
# same passthrough adding, as fixed values, the headers guichet adds to a request with the live
# session (read off the wire behind one more gateway configured the same way and signed in the
# same way: what the larger request alone costs);
# guichet with a live session (access log on — the default —, off, and with assertion +
# signature), with 100 routes, with [session.shared] in a local redis-server, with FILL sessions
# (default 1,000,000) in its store (benches/sessions.rs, whose identity has fewer claims than the
# mock provider's: fewer identity headers) — one user, then USERS (default 64)
# users' sessions in turn, each request the next cookie —, without a session (302); nginx
# auth_request → guichet (mode = "auth", the nginx of examples/forward-auth); the smallest
# proxy loop on pingora-core (benches/passthrough.rs --core: pingora's listener and runtime,
# guichet's HTTP/1.x server session, pool and client; requests without a body only), alone
# and adding the same headers as the passthrough's second row; guichet with a live session and
# that core loop again with tokio's work stealing on (server.work_stealing = true, --work-stealing;
# every other row runs guichet's default, off); Apache with
# mod_auth_openidc and a session (the mock provider accepts its 27-character state for this).
# Then IDLE (default 10,000) idle keep-alive connections held by
# guichet (benches/idle.py): bytes per connection, and whether each still answers. And complete
# logins per second against the mock provider (benches/logins.py, 16 browsers). Before those,
# the target rows again, each paired with the passthrough a few seconds apart (PAIRS, PAIR_SECONDS;
# with ROWS, only when PAIRS is given).
#
# Usage: benches/load.sh [DURATION=8] [ROUNDS=2]   (THREADS=2 by default: one per core here;
# ROWS="2 3" measures only those rows, numbered from 0 in the order above; KEEP_WORK=1 keeps the
# scratch directory with every log)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
[ -f /usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so ] || need+=(libnginx-mod-http-headers-more-filter)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v apache2 >/dev/null 2>&1 || need+=(apache2)
[ -f /usr/lib/apache2/modules/mod_auth_openidc.so ] || need+=(libapache2-mod-auth-openidc)
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
fi
duration="${1:-8}"
rounds="${2:-2}"
threads="${THREADS:-2}"
tck=$(getconf CLK_TCK)
# Room for the idle connections (children inherit it).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

static=127.0.0.1:18083; idp=127.0.0.1:18081; nginx_proxy=127.0.0.1:18084
passthrough=127.0.0.1:18090; gw=127.0.0.1:18080; gw_quiet=127.0.0.1:18091
gw_signed=127.0.0.1:18092; gw_routes=127.0.0.1:18087; gw_shared=127.0.0.1:18086
gw_full=127.0.0.1:18096; passthrough_headers=127.0.0.1:18097; gw_capture=127.0.0.1:18098; capture=127.0.0.1:18099; fill="${FILL:-1000000}"; idle="${IDLE:-10000}"; users="${USERS:-64}"
redis_port=18085; nginx_auth=127.0.0.1:18093; gw_auth=127.0.0.1:18094; apache=127.0.0.1:18095
core=127.0.0.1:18088; core_headers=127.0.0.1:18089; gw_steal=127.0.0.1:18079; core_steal=127.0.0.1:18078

work=$(mktemp -d)
chmod 755 "$work"
pids_to_stop=()
cleanup() {
  kill -INT "${pids_to_stop[@]}" 2>/dev/null || true
  wait "${pids_to_stop[@]}" 2>/dev/null || true
  for conf in static proxy auth; do
    [ -f "$work/nginx-$conf.conf" ] && nginx -c "$work/nginx-$conf.conf" -s stop 2>/dev/null || true
  done
  [ -f "$work/apache.pid" ] && kill "$(cat "$work/apache.pid")" 2>/dev/null || true
  sleep 0.5
  if [ -n "${KEEP_WORK:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# --- the static application and nginx as a proxy -------------------------------------------
source benches/common/nginx.sh
static_page "$static"
nginx_conf proxy "$threads" "  upstream static { server $static; keepalive 64; }
  server { listen $nginx_proxy; location / { proxy_pass http://static; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
# nginx in front, guichet answering its auth_request: the tested recipe, with the addresses
# changed and keepalive to guichet and the application.
sed -e "s/listen 80;/listen $nginx_auth;/" \
    -e "s#http://127.0.0.1:8080#http://guichet_auth#" \
    -e "s#http://127.0.0.1:9000#http://static#" \
    -e 's#proxy_pass_request_body off;#proxy_pass_request_body off;\n        proxy_http_version 1.1;\n        proxy_set_header Connection "";#' \
    -e 's#proxy_set_header Connection $connection_upgrade;#proxy_set_header Connection "";#' \
    examples/forward-auth/nginx.conf >"$work/site-auth.conf"
nginx_conf auth "$threads" "  upstream static { server $static; keepalive 64; }
  upstream guichet_auth { server $gw_auth; keepalive 64; }
$(cat "$work/site-auth.conf")"

# --- guichet, the passthrough, the provider, redis ------------------------------------------
client_secret=load-test-secret
source benches/common/guichet.sh
bench_binaries
"$passthrough_bin" --listen "$passthrough" --upstream "$static" --threads "$threads" >"$work/passthrough.log" 2>&1 &
passthrough_pid=$!; pids_to_stop+=("$passthrough_pid")

redirects=()
for address in "$gw" "$gw_quiet" "$gw_signed" "$gw_routes" "$gw_shared" "$nginx_auth" "$gw_capture" "$gw_steal"; do
  redirects+=(--redirect-uri "http://$address/.guichet/callback")
done
./target/release/guichet demo --provider-only --provider "$idp" --client-secret load-test-secret \
  "${redirects[@]}" --redirect-uri "http://$apache/redirect_uri" --min-state-length 20 \
  >"$work/provider.log" 2>&1 &
provider_pid=$!; pids_to_stop+=("$provider_pid")
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >"$work/redis.log" 2>&1 &
pids_to_stop+=($!)

upstream_section="[upstream]
url = \"http://$static\""
guichet_conf guichet.toml "$gw" "$gw" "$upstream_section"
guichet_conf guichet-quiet.toml "$gw_quiet" "$gw_quiet" "$upstream_section"
guichet_conf guichet-stealing.toml "$gw_steal" "$gw_steal" "work_stealing = true
$upstream_section"
sed -i 's/^\[log\]$/[log]\naccess = false/' "$work/guichet-quiet.toml"
./target/release/guichet keygen --out "$work/assertion.pem" >/dev/null
guichet_conf guichet-signed.toml "$gw_signed" "$gw_signed" "$upstream_section"
cat >>"$work/guichet-signed.toml" <<EOT
[assertion]
keys = ["$work/assertion.pem"]
[signature]
key = "load-test-signature-key-of-32-bytes-at-least"
EOT
guichet_conf guichet-routes.toml "$gw_routes" "$gw_routes" "$upstream_section"
for i in $(seq 1 99); do
  printf '[[route]]\npath = "/section%s/"\nauth = "none"\n' "$i" >>"$work/guichet-routes.toml"
done
printf '[[route]]\npath = "/"\nauth = "required"\n' >>"$work/guichet-routes.toml"
guichet_conf guichet-shared.toml "$gw_shared" "$gw_shared" "$upstream_section"
cat >>"$work/guichet-shared.toml" <<EOT
[session.shared]
url = "redis://127.0.0.1:$redis_port/0"
key = "load-test-replicas-share-this-32-byte-secret"
EOT
guichet_conf guichet-auth.toml "$gw_auth" "$nginx_auth" 'mode = "auth"
trusted_proxies = ["127.0.0.1"]'
guichet_conf guichet-full.toml "$gw_full" "$gw_full" "$upstream_section"
# The same gateway as the live session's, in front of a one-request server that writes down the
# headers guichet adds (below): the passthrough adds exactly those.
guichet_conf guichet-capture.toml "$gw_capture" "$gw_capture" "[upstream]
url = \"http://$capture\""
printf '[session]\nmax_sessions = %s\nmax_memory = "16GiB"\n' "$(( fill + 1000 ))" >>"$work/guichet-full.toml"
declare -A gpid
for name in guichet guichet-quiet guichet-stealing guichet-signed guichet-routes guichet-shared guichet-auth guichet-capture; do
  ./target/release/guichet run --config "$work/$name.toml" >"$work/$name.log" 2>&1 &
  gpid[$name]=$!; pids_to_stop+=($!)
done
# The gateway with a full store: its sessions are made in-process (benches/sessions.rs).
"$sessions_bin" --serve "$work/guichet-full.toml" --fill "$fill" --cookies "$users" \
  >"$work/full-cookie" 2>"$work/guichet-full.log" &
full_pid=$!; pids_to_stop+=("$full_pid")
for _ in $(seq 1 1200); do [ "$(wc -l <"$work/full-cookie")" -ge "$users" ] && break; sleep 0.1; done
# wrk script: each request carries the next of the $users cookies (that many users at once).
{ echo "local cookies = {"; sed 's/.*/  "guichet=&",/' "$work/full-cookie"; echo "}"
  echo "local i = 0"
  echo "request = function() i = i % #cookies + 1; wrk.headers[\"Cookie\"] = cookies[i]; return wrk.format() end"
} >"$work/users.lua"
for address in "$gw" "$gw_quiet" "$gw_steal" "$gw_signed" "$gw_routes" "$gw_shared" "$nginx_auth" "$gw_full" "$gw_capture"; do
  for _ in $(seq 1 100); do
    curl -fs "http://$address/.guichet/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
done

# --- Apache with mod_auth_openidc ------------------------------------------------------------
mods=""
for m in mpm_event authz_core authz_user authn_core auth_openidc proxy proxy_http; do
  mods+="LoadModule ${m}_module /usr/lib/apache2/modules/mod_${m}.so"$'\n'
done
cat >"$work/apache.conf" <<EOT
$mods
ServerName localhost
Listen $apache
DefaultRuntimeDir $work
PidFile $work/apache.pid
ErrorLog $work/apache-error.log
LogLevel warn
User www-data
Group www-data
StartServers 1
ServerLimit 1
ThreadsPerChild 64
MaxRequestWorkers 64
OIDCProviderMetadataURL http://$idp/api/v2/.well-known/openid-configuration
OIDCClientID guichet-demo
OIDCClientSecret load-test-secret
OIDCRedirectURI http://$apache/redirect_uri
OIDCCryptoPassphrase load-test-passphrase-for-mod-auth-openidc
OIDCScope "openid given_name usual_name email uid siret organizational_unit"
OIDCProviderTokenEndpointAuth client_secret_post
OIDCAuthRequestParams acr_values=eidas1
<Location />
  AuthType openid-connect
  Require valid-user
</Location>
ProxyPass /redirect_uri !
ProxyPass / http://$static/
EOT
apache2 -f "$work/apache.conf" -k start

# --- sign in once per gateway, as a browser would ---------------------------------------------
sign_in() { # entry address, cookie name
  local jar authorize confirm callback cookie
  jar=$(mktemp)
  authorize=$(curl -s -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' -H 'Accept: text/html' "http://$1/")
  [[ "$authorize" == "http://$1/.guichet/login"* ]] && \
    authorize=$(curl -s -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' "$authorize")
  confirm=$(curl -s "$authorize" | grep -o 'href="[^"]*agent=0"' | head -1 | sed 's/href="//;s/"$//;s/&amp;/\&/g')
  callback=$(curl -s -o /dev/null -w '%{redirect_url}' "http://$idp$confirm")
  curl -s -c "$jar" -b "$jar" -o /dev/null "$callback"
  cookie=$(awk -v name="$2" '$6 == name {print $6 "=" $7}' "$jar")
  rm -f "$jar"
  [ -n "$cookie" ] || { echo "could not sign in at $1" >&2; exit 1; }
  echo "$cookie"
}
declare -A cookie
for address in "$gw" "$gw_quiet" "$gw_steal" "$gw_signed" "$gw_routes" "$gw_shared" "$nginx_auth"; do
  cookie[$address]=$(sign_in "$address" guichet)
done
# The headers guichet adds to a live session's requests (forwarding and identity, every header
# named x-…), as the application receives them: one request through the capturing gateway.
python3 -c '
import http.server, sys
done = False
class Capture(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global done
        added = [(k.lower(), v) for k, v in self.headers.items() if k.lower().startswith("x-")]
        if any(k.startswith("x-guichet-") for k, _ in added):
            with open(sys.argv[1], "w") as out:
                out.writelines(f"{k}: {v}\n" for k, v in added)
            done = True
        self.send_response(200); self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *args): pass
host, port = sys.argv[2].rsplit(":", 1)
server = http.server.HTTPServer((host, int(port)), Capture)
while not done:
    server.handle_request()' "$work/upstream-headers" "$capture" &
capture_pid=$!
for _ in $(seq 1 50); do curl -fs -o /dev/null "http://$capture/" && break; sleep 0.1; done
curl -fs -o /dev/null -H "Cookie: $(sign_in "$gw_capture" guichet)" "http://$gw_capture/" \
  || { echo "load.sh: the capturing gateway did not forward the request" >&2; exit 1; }
# Bounded: a request without identity headers would leave the server waiting for another.
for _ in $(seq 1 50); do [ -s "$work/upstream-headers" ] && break; sleep 0.1; done
kill "$capture_pid" "${gpid[guichet-capture]}" 2>/dev/null || true
[ -s "$work/upstream-headers" ] || { echo "load.sh: no identity header reached the application" >&2; exit 1; }
# The passthrough again, adding those headers as fixed values.
"$passthrough_bin" --listen "$passthrough_headers" --upstream "$static" --threads "$threads" \
  --add-headers "$work/upstream-headers" >"$work/passthrough-headers.log" 2>&1 &
passthrough_headers_pid=$!; pids_to_stop+=("$passthrough_headers_pid")
added_headers=$(grep -c ': ' "$work/upstream-headers")
# The smallest proxy loop on pingora-core (no pingora-proxy; requests without a body only),
# alone and adding the same headers: the floor of a proxy loop of guichet's own.
"$passthrough_bin" --listen "$core" --upstream "$static" --threads "$threads" --core \
  >"$work/core.log" 2>&1 &
core_pid=$!; pids_to_stop+=("$core_pid")
"$passthrough_bin" --listen "$core_headers" --upstream "$static" --threads "$threads" --core \
  --add-headers "$work/upstream-headers" >"$work/core-headers.log" 2>&1 &
core_headers_pid=$!; pids_to_stop+=("$core_headers_pid")
"$passthrough_bin" --listen "$core_steal" --upstream "$static" --threads "$threads" --core \
  --work-stealing >"$work/core-stealing.log" 2>&1 &
core_steal_pid=$!; pids_to_stop+=("$core_steal_pid")
for address in "$passthrough_headers" "$core" "$core_headers" "$core_steal"; do
  for _ in $(seq 1 100); do curl -fs -o /dev/null "http://$address/" && break; sleep 0.1; done
done
apache_cookie=""
for _ in $(seq 1 50); do curl -fs -o /dev/null "http://$apache/redirect_uri" 2>/dev/null && break; sleep 0.1; done
apache_cookie=$(sign_in "$apache" mod_auth_openidc_session) || apache_cookie=""

# --- rows ---------------------------------------------------------------------------------------
tree() { # pid → the pid and its children
  echo "$1"; pgrep -P "$1" || true
}
cpu_ticks() { # pids → utime + stime
  local total=0 pid
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] || continue
    total=$(( total + $(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$pid/stat") ))
  done
  echo "$total"
}
rss_kib() {
  local total=0 pid
  for pid in "$@"; do
    total=$(( total + $(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0) ))
  done
  echo "$total"
}

names=(); urls=(); headers=(); procs=(); scripts=()
row() { names+=("$1"); urls+=("$2"); headers+=("$3"); procs+=("$4"); scripts+=("${5:-}"); }
row "static nginx, direct (no proxy)" "http://$static/" "" "$(tree "$(cat "$work/nginx-static.pid")")"
row "nginx proxy_pass ($threads workers, keepalive)" "http://$nginx_proxy/" "" "$(tree "$(cat "$work/nginx-proxy.pid")")"
row "bare pingora passthrough (benches/passthrough.rs)" "http://$passthrough/" "" "$passthrough_pid"
row "bare pingora passthrough + the $added_headers headers guichet adds, fixed values" "http://$passthrough_headers/" "" "$passthrough_headers_pid"
row "guichet, live session" "http://$gw/" "Cookie: ${cookie[$gw]}" "${gpid[guichet]}"
paired=(3 4)
row "guichet, live session, access log off" "http://$gw_quiet/" "Cookie: ${cookie[$gw_quiet]}" "${gpid[guichet-quiet]}"
row "guichet, live session, assertion + signature" "http://$gw_signed/" "Cookie: ${cookie[$gw_signed]}" "${gpid[guichet-signed]}"
paired+=($(( ${#names[@]} - 1 )))
row "guichet, live session, 100 routes (the 100th matches)" "http://$gw_routes/" "Cookie: ${cookie[$gw_routes]}" "${gpid[guichet-routes]}"
row "guichet, live session, [session.shared] in redis" "http://$gw_shared/" "Cookie: ${cookie[$gw_shared]}" "${gpid[guichet-shared]}"
row "guichet, live session, $fill sessions in the store" "http://$gw_full/" "Cookie: guichet=$(head -1 "$work/full-cookie")" "$full_pid"
row "guichet, $users users' sessions in turn, $fill in the store" "http://$gw_full/" "" "$full_pid" "$work/users.lua"
row "guichet, no session (302 to the login)" "http://$gw/" "" "${gpid[guichet]}"
row "nginx auth_request → guichet (mode = auth), live session" "http://$nginx_auth/" "Cookie: ${cookie[$nginx_auth]}" "$(tree "$(cat "$work/nginx-auth.pid")") ${gpid[guichet-auth]}"
row "pingora-core listener + guichet's server session, pool and client (benches/passthrough.rs --core)" "http://$core/" "" "$core_pid"
core_row=$(( ${#names[@]} - 1 ))
row "the same core loop + the $added_headers headers, fixed values" "http://$core_headers/" "" "$core_headers_pid"
row "guichet, live session, work stealing on (server.work_stealing = true)" "http://$gw_steal/" "Cookie: ${cookie[$gw_steal]}" "${gpid[guichet-stealing]}"
paired+=($(( ${#names[@]} - 1 )))
row "the core loop, work stealing on (--work-stealing)" "http://$core_steal/" "" "$core_steal_pid"
core_steal_row=$(( ${#names[@]} - 1 ))
if [ -n "$apache_cookie" ]; then
  row "Apache + mod_auth_openidc, live session" "http://$apache/" "Cookie: $apache_cookie" "$(tree "$(cat "$work/apache.pid")")"
else
  echo "Apache + mod_auth_openidc: could not sign in (see $work/apache-error.log); row left out" >&2
fi

declare -A results
run_row() { # index seconds → "rps|p50|p99|requests per CPU-second|RSS MiB|errors|CPU s"
  local i=$1 seconds=$2 out before after requests cpu rps p50 p99 errors per_cpu rss
  # shellcheck disable=SC2206
  local pids=(${procs[$i]})
  before=$(cpu_ticks "${pids[@]}")
  if [ -n "${scripts[$i]}" ]; then
    out=$(wrk -t2 -c64 -d"${seconds}s" --latency -s "${scripts[$i]}" "${urls[$i]}")
  elif [ -n "${headers[$i]}" ]; then
    out=$(wrk -t2 -c64 -d"${seconds}s" --latency -H "${headers[$i]}" "${urls[$i]}")
  else
    out=$(wrk -t2 -c64 -d"${seconds}s" --latency "${urls[$i]}")
  fi
  after=$(cpu_ticks "${pids[@]}")
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(grep -E 'Non-2xx|Socket errors' <<<"$out" | sed 's/^ *//' | tr '\n' ' ' || true)
  cpu=$(awk -v t="$(( after - before ))" -v h="$tck" 'BEGIN {printf "%.2f", t / h}')
  per_cpu=$(awk -v r="$requests" -v c="$cpu" 'BEGIN {if (c > 0) printf "%.0f", r / c; else print 0}')
  rss=$(awk -v k="$(rss_kib "${pids[@]}")" 'BEGIN {printf "%.0f", k / 1024}')
  echo "$rps|$p50|$p99|$per_cpu|$rss|${errors:-}|$cpu"
}
measure() { # index round
  local record rps p50 p99 per_cpu rss cpu
  record=$(run_row "$1" "$duration")
  results[$1,$2]=$record
  IFS='|' read -r rps p50 p99 per_cpu rss _ cpu <<<"$record"
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$2" "${names[$1]}" "$rps" "$p50" "$p99" "$cpu" "$per_cpu" "$rss"
}

selected=("${!names[@]}")
if [ -n "${ROWS:-}" ]; then read -r -a selected <<<"$ROWS"; fi
echo "### Every run, in order (round, row)"
echo
echo "| round | path | requests/s | p50 | p99 | proxy CPU s | requests per CPU-second | RSS MiB |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for round in $(seq 1 "$rounds"); do
  for i in "${selected[@]}"; do
    measure "$i" "$round"
  done
done

# The median round of each row (by requests per CPU-second), with ratios.
median() { # i field → the median round's record
  local i=$1 r
  for r in $(seq 1 "$rounds"); do echo "${results[$i,$r]}"; done \
    | sort -t'|' -k4,4n | awk -v n="$rounds" 'NR == int((n + 1) / 2)'
}
pick() { cut -d'|' -f"$2" <<<"$1"; }
base_nginx=$( [ -n "${results[1,1]:-}" ] && pick "$(median 1)" 4 || echo 0)
base_pingora=$( [ -n "${results[2,1]:-}" ] && pick "$(median 2)" 4 || echo 0)
echo
echo "### Summary: median of $rounds rounds, $duration s each, wrk -t2 -c64, THREADS=$threads"
echo
echo "| path | requests/s | p50 | p99 | requests per CPU-second | × nginx proxy_pass | × bare pingora | RSS MiB | errors |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for i in "${selected[@]}"; do
  record=$(median "$i")
  per_cpu=$(pick "$record" 4)
  ratio() { awk -v a="$per_cpu" -v b="$1" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}'; }
  if [ "$i" -eq 0 ]; then ratio_nginx="-"; ratio_pingora="-"; else ratio_nginx=$(ratio "$base_nginx"); ratio_pingora=$(ratio "$base_pingora"); fi
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${names[$i]}" "$(pick "$record" 1)" \
    "$(pick "$record" 2)" "$(pick "$record" 3)" "$per_cpu" "$ratio_nginx" "$ratio_pingora" \
    "$(pick "$record" 5)" "$(pick "$record" 6)"
done

# Rows a minute apart meet a different machine (the shared cores' load moves within a round):
# the ratios to the passthrough (row 2) are measured again in pairs a few seconds apart,
# PAIRS times (default 8) of PAIR_SECONDS (default 3) each — passthrough, then each paired row,
# or in reverse order every other pair —, each pair's ratio, then their median and range; and
# the pingora-core loop's ratio to nginx proxy_pass (row 1) the same way.
pairs() { # base-index base-label row-index…
  local base_index=$1 label=$2 pair base line per_cpu i
  shift 2
  local rows=("$@")
  echo
  echo "### Paired with $label: ${PAIRS:-8} pairs of ${PAIR_SECONDS:-3} s, requests per CPU-second"
  echo
  printf '| pair | %s |' "$label"; for i in "${rows[@]}"; do printf ' %s | ratio |' "${names[$i]}"; done; echo
  printf '| --- | --- |'; for _ in "${rows[@]}"; do printf ' --- | --- |'; done; echo
  declare -A ratios
  declare -A got
  local order
  for pair in $(seq 1 "${PAIRS:-8}"); do
    # A row's place in the sequence weighs on its rate (the one right after another proxy's
    # full load came out lowest): odd pairs run the base first and the rows in order, even
    # pairs the rows in reverse and the base last, so every row takes every place as often.
    order=("$base_index" "${rows[@]}")
    if (( pair % 2 == 0 )); then
      order=(); for (( i = ${#rows[@]} - 1; i >= 0; i-- )); do order+=("${rows[$i]}"); done
      order+=("$base_index")
    fi
    for i in "${order[@]}"; do
      got[$i]=$(run_row "$i" "${PAIR_SECONDS:-3}" | cut -d'|' -f4)
    done
    base=${got[$base_index]}
    line="| $pair | $base |"
    for i in "${rows[@]}"; do
      per_cpu=${got[$i]}
      ratios[$i]+="$(awk -v a="$per_cpu" -v b="$base" 'BEGIN {if (b > 0) printf "%.3f", a / b; else print 0}') "
      line+=" $per_cpu | $(awk -v a="$per_cpu" -v b="$base" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}') |"
    done
    echo "$line"
  done
  echo
  for i in "${rows[@]}"; do
    # shellcheck disable=SC2086
    printf '%s\n' ${ratios[$i]} | sort -n | awk -v name="${names[$i]}" -v label="$label" '
      {v[NR] = $1} END {m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
        printf "- %s: median %.2f x %s (from %.2f to %.2f over %d pairs)\n", name, m, label, v[1], v[NR], NR}'
  done
}
if { [ -z "${ROWS:-}" ] || [ -n "${PAIRS:-}" ]; } && [ "${PAIRS:-8}" -gt 0 ]; then
  pairs 2 "the passthrough" "${paired[@]}"
  pairs 1 "nginx proxy_pass" "$core_row" "$core_steal_row"
fi
echo
python3 benches/logins.py "$gw" "$idp" "${gpid[guichet]}" "$provider_pid" "$duration" 16 || true
echo
ulimit -n "$(( idle + 1024 ))" 2>/dev/null || true
python3 benches/idle.py "${gw%:*}" "${gw#*:}" "${gpid[guichet]}" "$idle" "${cookie[$gw]}" || true
echo
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -sr); $(date -u +%Y-%m-%d)."
