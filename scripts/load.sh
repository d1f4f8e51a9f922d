#!/usr/bin/env bash
# Load test on loopback: a static nginx reached directly, then through guichet (`guichet run`
# in front of nginx, signed in at the mock provider) with a live session, the same with the
# session store shared through a local redis-server ([session.shared]), the same with 100 routes
# configured, then without a session.
# Bounded: DURATION seconds per run (default 10), 64 connections, 2 wrk threads.
# Prints a Markdown table. Usage: [THREADS=n] scripts/load.sh [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
if ! command -v wrk >/dev/null 2>&1 || ! command -v nginx >/dev/null 2>&1 || ! command -v redis-server >/dev/null 2>&1; then
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq wrk nginx-light redis-server >/dev/null
fi
duration="${1:-10}"
gw=127.0.0.1:18080; idp=127.0.0.1:18081; static=127.0.0.1:18083; nginx_proxy=127.0.0.1:18084
redis_port=18085; gw_shared=127.0.0.1:18086; gw_routes=127.0.0.1:18087
threads="${THREADS:-0}"

work=$(mktemp -d)
cat >"$work/nginx.conf" <<EOT
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  server { listen $static; location / { return 200 "ok\n"; } }
  upstream static { server $static; keepalive 64; }
  server {
    listen $nginx_proxy;
    location / { proxy_pass http://static; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOT
nginx -c "$work/nginx.conf"

cargo build --release --locked --quiet
./target/release/guichet demo --provider-only --provider "$idp" --client-secret load-test-secret \
  --redirect-uri "http://$gw/.guichet/callback" --redirect-uri "http://$gw_shared/.guichet/callback" \
  --redirect-uri "http://$gw_routes/.guichet/callback" \
  >"$work/provider.log" 2>&1 &
provider=$!
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >"$work/redis.log" 2>&1 &
redis=$!
cat >"$work/guichet.toml" <<EOT
[server]
listen = "$gw"
public_url = "http://$gw"
threads = $threads
[upstream]
url = "http://$static"
[log]
level = "warn"
[[provider]]
id = "agentconnect"
issuer = "http://$idp/api/v2"
client_id = "guichet-demo"
client_secret = "load-test-secret"
scopes = ["openid", "given_name", "usual_name", "email", "uid", "siret", "organizational_unit"]
EOT
./target/release/guichet run --config "$work/guichet.toml" >"$work/guichet.log" 2>&1 &
demo=$!
sed -e "s/$gw/$gw_shared/g" "$work/guichet.toml" >"$work/guichet-shared.toml"
cat >>"$work/guichet-shared.toml" <<EOT
[session.shared]
url = "redis://127.0.0.1:$redis_port/0"
key = "load-test-replicas-share-this-32-byte-secret"
EOT
# 100 routes; the request's is the last one.
sed -e "s/$gw/$gw_routes/g" "$work/guichet.toml" >"$work/guichet-routes.toml"
for i in $(seq 1 99); do
  printf '[[route]]\npath = "/section%s/"\nauth = "none"\n' "$i" >>"$work/guichet-routes.toml"
done
printf '[[route]]\nexact = "/"\nauth = "required"\n' >>"$work/guichet-routes.toml"
./target/release/guichet run --config "$work/guichet-routes.toml" >"$work/guichet-routes.log" 2>&1 &
routes=$!
./target/release/guichet run --config "$work/guichet-shared.toml" >"$work/guichet-shared.log" 2>&1 &
shared=$!
trap 'kill -INT $demo $shared $routes $provider 2>/dev/null; kill $redis 2>/dev/null; wait $demo $shared $routes $provider $redis 2>/dev/null || true; nginx -c "$work/nginx.conf" -s stop 2>/dev/null; rm -rf "$work"' EXIT
for address in "$gw" "$gw_shared" "$gw_routes"; do
  for _ in $(seq 1 100); do
    curl -fs "http://$address/.guichet/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
done

# Sign in once, as a browser would, to get a session cookie.
sign_in() { # gateway address
  local jar authorize confirm callback cookie
  jar=$(mktemp)
  authorize=$(curl -s -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' "http://$1/.guichet/login?rd=/")
  confirm=$(curl -s "$authorize" | grep -o 'href="[^"]*agent=0"' | head -1 | sed 's/href="//;s/"$//;s/&amp;/\&/g')
  callback=$(curl -s -o /dev/null -w '%{redirect_url}' "http://$idp$confirm")
  curl -s -c "$jar" -b "$jar" -o /dev/null "$callback"
  cookie=$(awk '$6 == "guichet" {print $7}' "$jar")
  rm -f "$jar"
  [ -n "$cookie" ] || { echo "could not sign in at $1" >&2; exit 1; }
  echo "$cookie"
}
cookie=$(sign_in "$gw")
cookie_shared=$(sign_in "$gw_shared")
cookie_routes=$(sign_in "$gw_routes")

run() { # name url [header]
  local out
  if [ -n "${3:-}" ]; then
    out=$(wrk -t2 -c64 -d"${duration}s" --latency -H "$3" "$2")
  else
    out=$(wrk -t2 -c64 -d"${duration}s" --latency "$2")
  fi
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr '\n' ' ' || true)
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$rps" "$p50" "$p99" "${errors:-none}"
}

echo "| path | requests/s | p50 | p99 | errors |"
echo "| --- | --- | --- | --- | --- |"
run "nginx, direct" "http://$static/"
run "nginx through nginx proxy_pass (reference)" "http://$nginx_proxy/"
run "nginx through guichet, live session" "http://$gw/" "Cookie: guichet=$cookie"
before=$(redis-cli -p "$redis_port" info commandstats | awk -F'[=,]' '/^cmdstat_getex/ {print $2}')
run "nginx through guichet, live session, [session.shared] in redis-server" "http://$gw_shared/" "Cookie: guichet=$cookie_shared"
after=$(redis-cli -p "$redis_port" info commandstats | awk -F'[=,]' '/^cmdstat_getex/ {print $2}')
run "nginx through guichet, live session, 100 routes (the request's is the 100th)" "http://$gw_routes/" "Cookie: guichet=$cookie_routes"
run "through guichet, no session (302)" "http://$gw/"
echo
echo "Calls to redis-server (GETEX) during the [session.shared] row: $(( ${after:-0} - ${before:-0} ))"
