//! Processes and the machine: the binary, free ports, scratch directories, a running process
//! and its log, memory figures, waiting for an endpoint.

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_guichet");

/// A loopback port nobody listens on, reserved for this test process.
///
/// Test processes run in parallel and pingora listens with `SO_REUSEPORT`, so two servers given
/// the same port would silently share it. Ports are therefore taken outside the kernel's
/// ephemeral range (20000–31999), checked free by binding, and reserved with a marker file
/// holding the owner's PID (reclaimed once that process is gone).
pub fn free_port() -> u16 {
    use rand::Rng;
    let dir = std::env::temp_dir().join("guichet-test-ports");
    std::fs::create_dir_all(&dir).expect("port reservation directory");
    let mut rng = rand::thread_rng();
    loop {
        let port: u16 = rng.gen_range(20_000..32_000);
        if StdListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        let marker = dir.join(port.to_string());
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker)
        {
            Ok(mut file) => {
                use std::io::Write;
                let _ = write!(file, "{}", std::process::id());
                return port;
            }
            Err(_) => {
                let owner = std::fs::read_to_string(&marker).unwrap_or_default();
                let alive = owner
                    .trim()
                    .parse::<u32>()
                    .is_ok_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
                if !alive {
                    let _ = std::fs::remove_file(&marker);
                }
            }
        }
    }
}

/// A scratch directory for one test.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "guichet-test-{name}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A child process killed when dropped.
pub struct Process {
    pub child: Child,
    pub log: PathBuf,
}

impl Process {
    pub fn spawn(args: &[&str], log: PathBuf) -> Self {
        Self::spawn_program(BIN, args, log)
    }

    /// Starts another program (a front proxy), its output in `log`.
    pub fn spawn_program(program: &str, args: &[&str], log: PathBuf) -> Self {
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(program)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("GUICHET_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        Process { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the process to exit by itself, at most `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(exit) = self.child.try_wait().expect("child status") {
                return exit;
            }
            assert!(
                started.elapsed() < limit,
                "still running after {limit:?}:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends `signal` (`"TERM"`, `"INT"`, `"QUIT"`…) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} {}", self.pid());
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `url` until it answers `status`.
pub async fn wait_for_status(url: &str, status: u16, limit: Duration) -> Result<(), String> {
    wait_for_status_with(&reqwest::Client::new(), url, status, limit).await
}

/// Polls `url` with `client` until it answers `status`.
pub async fn wait_for_status_with(
    client: &reqwest::Client,
    url: &str,
    status: u16,
    limit: Duration,
) -> Result<(), String> {
    let start = Instant::now();
    let mut last = String::from("no answer");
    while start.elapsed() < limit {
        match client.get(url).send().await {
            Ok(r) if r.status().as_u16() == status => return Ok(()),
            Ok(r) => last = format!("status {}", r.status()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("{url}: {last} after {limit:?}"))
}

/// A memory figure of a process from `/proc/<pid>/status` (`VmHWM`, `VmRSS`…), in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Peak resident memory (VmHWM) of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM")
}

/// Current resident memory (VmRSS) of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS")
}

/// `guichet demo` on free loopback ports, ready (every mock provider's discovery loaded).
pub struct Demo {
    pub process: Process,
    /// The gateway's URL, `http://127.0.0.1:PORT`.
    pub gateway: String,
    /// Gateway, AgentConnect-like provider, app, FranceConnect-like, FranceConnect+-like.
    pub ports: Vec<u16>,
    /// Its scratch directory (the log).
    pub dir: PathBuf,
}

impl Demo {
    pub async fn start(name: &str) -> Demo {
        let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
        let address = |i: usize| format!("127.0.0.1:{}", ports[i]);
        let dir = scratch_dir(name);
        let process = Process::spawn(
            &[
                "demo",
                "--gateway",
                &address(0),
                "--provider",
                &address(1),
                "--app",
                &address(2),
                "--franceconnect",
                &address(3),
                "--franceconnect-plus",
                &address(4),
            ],
            dir.join("demo.log"),
        );
        let gateway = format!("http://{}", address(0));
        super::wait_for_status(
            &format!("{gateway}/.guichet/readyz"),
            200,
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", process.log_text()));
        Demo {
            process,
            gateway,
            ports,
            dir,
        }
    }
}
