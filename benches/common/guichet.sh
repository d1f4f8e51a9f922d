# guichet's configuration for the benchmark scripts (sourced by benches/load.sh and
# benches/profile.sh, with $work, $threads, $idp — the mock provider — and $client_secret set):
# `guichet_conf FILE LISTEN PUBLIC_HOST EXTRA` writes $work/FILE, EXTRA going in [server]'s
# place (e.g. mode, or an [upstream] section).
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
