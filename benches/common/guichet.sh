# guichet for the benchmark scripts (sourced by benches/load.sh, benches/profile.sh and
# benches/instructions.sh, with $work, $threads, $idp — the mock provider's address — and
# $client_secret set):
# `bench_binaries` builds guichet and the benchmark binaries (release profile) and sets
# $passthrough_bin and $sessions_bin;
# `mock_provider GATEWAY` starts the mock provider for one gateway at GATEWAY (its pid added to
# $pids_to_stop);
# `guichet_conf FILE LISTEN PUBLIC_HOST EXTRA` writes $work/FILE, EXTRA going in [server]'s
# place (e.g. mode, or an [upstream] section).
bench_binaries() {
  cargo build --release --locked --quiet
  cargo bench --locked --no-run --bench passthrough --bench sessions >"$work/bench-build.log" 2>&1
  passthrough_bin=$(grep -o 'target/release/deps/passthrough-[0-9a-f]*' "$work/bench-build.log" | head -1)
  sessions_bin=$(grep -o 'target/release/deps/sessions-[0-9a-f]*' "$work/bench-build.log" | head -1)
}
mock_provider() { # gateway
  ./target/release/guichet demo --provider-only --provider "$idp" --client-secret "$client_secret" \
    --redirect-uri "http://$1/.guichet/callback" >"$work/provider.log" 2>&1 &
  pids_to_stop+=($!)
}
guichet_conf() { # file listen public_url extra
  cat >"$work/$1" <<EOT
[server]
listen = "$2"
public_url = "http://$3"
threads = $threads
$4
[log]
level = "info"
[[provider]]
id = "agentconnect"
issuer = "http://$idp/api/v2"
client_id = "guichet-demo"
client_secret = "$client_secret"
scopes = ["openid", "given_name", "usual_name", "email", "uid", "siret", "organizational_unit"]
EOT
}
