//! The `guichet` command: `run`, `check`, `demo`.
#![forbid(unsafe_code)]
// No `unwrap` outside tests: what the gateway reads (requests, provider answers, store entries)
// is handled as an error, never as a panic. Tests may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use guichet::config::{self, Settings};
use guichet::demo::{self, DemoAddresses};
use guichet::http::routes::Route;
use guichet::server;

/// mimalloc instead of glibc malloc: the proxy path allocates and frees small buffers on every
/// request from several threads, where glibc's arena locks showed up in profiles. Version 2
/// (Cargo.toml): version 3 takes an over-allocating path for many of Rust's allocations (all go
/// through its aligned entry point), and held a million sessions in 4 % more memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "guichet",
    version = concat!(env!("CARGO_PKG_VERSION"), " (git ", env!("GUICHET_GIT_HASH"), ")"),
    about = "Authenticating reverse proxy for AgentConnect/ProConnect and FranceConnect"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start: the size of the `demo` variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Serve, with the given configuration file.
    Run {
        #[arg(long, short)]
        config: PathBuf,
        /// Take over the listening sockets and sessions of the running guichet, which is then
        /// sent SIGQUIT (graceful upgrade, no request lost).
        #[arg(long, short)]
        upgrade: bool,
        /// Detach from the terminal and write server.pid_file (for systemd Type=forking).
        #[arg(long, short)]
        daemon: bool,
    },
    /// Validate a configuration file: exit 0, or print every problem and exit 1.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Write a new private key for signing identity assertions (PKCS#8 PEM, mode 0600).
    Keygen {
        #[arg(long, short)]
        out: PathBuf,
        /// ES256 (P-256, default) or EdDSA (Ed25519).
        #[arg(long, default_value = "ES256")]
        algorithm: String,
    },
    /// Start the offline demo: mock provider, demo app and gateway on loopback.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        gateway: SocketAddr,
        #[arg(long, default_value = "127.0.0.1:8081")]
        provider: SocketAddr,
        #[arg(long, default_value = "127.0.0.1:8082")]
        app: SocketAddr,
        /// The FranceConnect-like mock provider.
        #[arg(long, default_value = "127.0.0.1:8083")]
        franceconnect: SocketAddr,
        /// The FranceConnect+-like mock provider (encrypted tokens, private_key_jwt).
        #[arg(long, default_value = "127.0.0.1:8084")]
        franceconnect_plus: SocketAddr,
        /// With --provider-only: `agentconnect` (default), `franceconnect`, `franceconnect-v1`
        /// or `franceconnect-plus`.
        #[arg(long, default_value = "agentconnect")]
        flavour: String,
        /// Put the gateway in front of this address instead of the demo app (for load tests).
        #[arg(long)]
        upstream: Option<SocketAddr>,
        /// Start only the mock provider (used by the integration tests).
        #[arg(long, requires_all = ["client_secret", "redirect_uri"])]
        provider_only: bool,
        /// The mock provider's client secret (with --provider-only).
        #[arg(long)]
        client_secret: Option<String>,
        /// Redirect URIs the mock provider accepts (with --provider-only).
        #[arg(long)]
        redirect_uri: Vec<String>,
        /// The client's JWKS URL (with --provider-only --flavour franceconnect-plus).
        #[arg(long)]
        client_jwks_uri: Option<String>,
        /// The shortest state and nonce the mock provider accepts (with --provider-only); 32 by
        /// default, as AgentConnect's documentation asks. Lower it to measure clients that send
        /// shorter ones.
        #[arg(long, default_value_t = demo::MIN_RANDOM_LENGTH)]
        min_state_length: usize,
    },
}

fn init_logging(level: &str, json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // Colours only for a person at a terminal: in a file or journald they are noise, and
    // writing them cost a measurable share of each access line.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

fn main() -> ExitCode {
    guichet::signatures::install();
    let cli = Cli::parse();
    match cli.command {
        Command::Keygen { out, algorithm } => keygen(&out, &algorithm),
        Command::Check { config } => check(&config),
        Command::Run {
            config,
            upgrade,
            daemon,
        } => match config::load(&config) {
            Ok(settings) => {
                init_logging(&settings.log_level, settings.log_json);
                for warning in &settings.warnings {
                    tracing::warn!("configuration: {warning}");
                }
                run(settings, server::Launch { upgrade, daemon })
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Demo {
            gateway,
            provider,
            app,
            franceconnect,
            franceconnect_plus,
            flavour,
            upstream,
            provider_only,
            client_secret,
            redirect_uri,
            client_jwks_uri,
            min_state_length,
        } => {
            init_logging("info", false);
            if !provider_only {
                let addresses = DemoAddresses {
                    gateway,
                    provider,
                    franceconnect,
                    franceconnect_plus,
                    app,
                };
                return run_demo(&addresses, upstream);
            }
            let Some(flavour) = demo::Flavour::parse(&flavour) else {
                eprintln!("unknown --flavour {flavour:?}: use agentconnect, franceconnect, franceconnect-v1 or franceconnect-plus");
                return ExitCode::FAILURE;
            };
            run_mock_provider(
                flavour,
                provider,
                client_secret.unwrap_or_default(),
                redirect_uri,
                client_jwks_uri,
                min_state_length,
            )
        }
    }
}

/// `guichet check`: loads the file and builds the gateway (which loads the keys and TLS files
/// the file only names), then prints the effective settings, never a secret.
fn check(config: &std::path::Path) -> ExitCode {
    let settings = match config::load(config) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let gateway = match guichet::gateway::Gateway::new(settings.clone())
        .and_then(|gateway| server::check_tls(&settings).map(|()| gateway))
    {
        Ok(gateway) => gateway,
        Err(e) => {
            eprintln!("{}: {e}", config.display());
            return ExitCode::FAILURE;
        }
    };
    let ids: Vec<&str> = settings.providers.iter().map(|p| p.id.as_str()).collect();
    let upstream = match &settings.upstream {
        Some(upstream) => format!("upstream {}", upstream.address),
        None => "auth mode (no upstream)".to_string(),
    };
    println!(
        "{}: OK — listen {}, {upstream}, {} provider(s): {}",
        config.display(),
        settings.listen,
        ids.len(),
        ids.join(", ")
    );
    for warning in &settings.warnings {
        println!("warning: {warning}");
    }
    match &settings.session.shared {
        // The scheme only: the rest of the URL may hold a password.
        Some(shared) => println!(
            "sessions: shared by replicas in {}:// (recheck {:?}, timeout {:?})",
            shared.url.expose().split("://").next().unwrap_or("redis"),
            shared.recheck,
            shared.timeout
        ),
        None => println!("sessions: in this process's memory"),
    }
    for provider in gateway.providers() {
        println!("{}", provider.settings.describe());
        // The kids to compare with what the federation shows as registered.
        for key in provider.keys.public_keys() {
            println!(
                "  published at {}: {} key, kid {}",
                Route::ProviderJwks.path(),
                match key.common.public_key_use {
                    Some(jsonwebtoken::jwk::PublicKeyUse::Encryption) => "encryption",
                    _ => "signing",
                },
                key.common.key_id.as_deref().unwrap_or("")
            );
        }
    }
    ExitCode::SUCCESS
}

fn keygen(out: &std::path::Path, algorithm: &str) -> ExitCode {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let algorithm = match algorithm {
        "ES256" => jsonwebtoken::Algorithm::ES256,
        "EdDSA" => jsonwebtoken::Algorithm::EdDSA,
        other => {
            eprintln!("unsupported algorithm {other:?}: use ES256 or EdDSA");
            return ExitCode::FAILURE;
        }
    };
    let pem = match guichet::assertion::generate_key_pem(algorithm) {
        Ok(pem) => pem,
        Err(e) => {
            eprintln!("cannot generate a key: {e}");
            return ExitCode::FAILURE;
        }
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out);
    match file.and_then(|mut f| f.write_all(pem.as_bytes())) {
        Ok(()) => {
            println!("wrote a new {algorithm:?} private key to {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "cannot write {}: {e} (an existing key is never overwritten)",
                out.display()
            );
            ExitCode::FAILURE
        }
    }
}

fn run(settings: Settings, launch: server::Launch) -> ExitCode {
    let listen = settings.listen;
    if let Err(e) = server::check_tls(&settings) {
        eprintln!("cannot start: {e}");
        return ExitCode::FAILURE;
    }
    // With --upgrade, this returns once the old process has handed its sockets over (it writes
    // the hand-over file first).
    let mut pingora = server::new_server(&settings, launch);
    let handover = launch
        .upgrade
        .then(|| server::read_handover(&settings))
        .flatten();
    let inherited = handover.as_ref().and_then(server::HandOver::key);
    let gateway = match server::add_gateway_inheriting(&mut pingora, settings, inherited) {
        Ok(gateway) => gateway,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(handover) = handover {
        match tokio::runtime::Builder::new_current_thread().build() {
            Ok(runtime) => runtime.block_on(handover.restore(&gateway)),
            Err(e) => tracing::error!(error = %e, "cannot take the sessions over"),
        }
    }
    tracing::info!(%listen, upgrade = launch.upgrade, "guichet listening");
    server::run_until_stopped(pingora, Some(gateway));
    ExitCode::SUCCESS
}

fn run_mock_provider(
    flavour: demo::Flavour,
    listen: SocketAddr,
    secret: String,
    redirect_uris: Vec<String>,
    client_jwks_uri: Option<String>,
    min_random_length: usize,
) -> ExitCode {
    let settings = demo::demo_settings(&DemoAddresses::all(listen), &secret);
    let mut pingora = server::new_server(&settings, server::Launch::default());
    if let Err(e) = demo::add_mock_provider(
        &mut pingora,
        flavour,
        listen,
        &secret,
        redirect_uris,
        client_jwks_uri,
        min_random_length,
    ) {
        eprintln!("cannot start the mock provider: {e}");
        return ExitCode::FAILURE;
    }
    tracing::info!(issuer = %demo::provider_issuer(listen), "mock provider listening");
    server::run_until_stopped(pingora, None);
    ExitCode::SUCCESS
}

fn run_demo(addresses: &DemoAddresses, upstream: Option<SocketAddr>) -> ExitCode {
    let secret = demo::demo_secret();
    let mut settings = demo::demo_settings(addresses, &secret);
    if let Some(upstream) = upstream {
        if let Some(app) = settings.upstream.as_mut() {
            app.address = upstream;
        }
    }
    let redirect_uri = Route::Callback.url(&settings.public_url);
    let client_jwks_uri = Route::ProviderJwks.url(&settings.public_url);
    let mut pingora = server::new_server(&settings, server::Launch::default());
    for (flavour, address) in [
        (demo::Flavour::AgentConnect, addresses.provider),
        (demo::Flavour::FranceConnect, addresses.franceconnect),
        (
            demo::Flavour::FranceConnectPlus,
            addresses.franceconnect_plus,
        ),
    ] {
        if let Err(e) = demo::add_mock_provider(
            &mut pingora,
            flavour,
            address,
            &secret,
            vec![redirect_uri.clone()],
            Some(client_jwks_uri.clone()),
            demo::MIN_RANDOM_LENGTH,
        ) {
            eprintln!("cannot start the mock provider: {e}");
            return ExitCode::FAILURE;
        }
    }
    demo::add_echo_app(&mut pingora, addresses.app);
    if let Err(e) = server::add_gateway(&mut pingora, settings) {
        eprintln!("cannot start the gateway: {e}");
        return ExitCode::FAILURE;
    }
    println!();
    println!("  guichet demo is running.");
    println!(
        "  Open http://{}/ in your browser, choose AgentConnect (test agents),",
        addresses.gateway
    );
    println!("  FranceConnect or FranceConnect+ (test citizens; FranceConnect+ encrypts its");
    println!("  tokens to guichet's key), and see the headers the application receives.");
    println!(
        "  (mock providers: {}, {} and {}; demo app behind the gateway: http://{})",
        demo::provider_issuer(addresses.provider),
        demo::provider_issuer(addresses.franceconnect),
        demo::provider_issuer(addresses.franceconnect_plus),
        addresses.app
    );
    println!("  Stop with Ctrl-C.");
    println!();
    server::run_until_stopped(pingora, None);
    ExitCode::SUCCESS
}
