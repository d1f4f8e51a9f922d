//! Graceful upgrade: a new guichet takes over the listening sockets and the sessions of the
//! running one (`guichet run --upgrade`, then SIGQUIT to the old process) while requests keep
//! coming; none fails, the signed-in visitor stays signed in (and can sign out at the provider), and
//! a login in progress completes on the new process.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::{echoed, Browser, GatewayOptions, Process, Stack};

#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_under_load_loses_no_request_and_no_session() {
    let dir = support::scratch_dir("upgrade-sock");
    let socket = dir.join("upgrade.sock");
    let mut stack = Stack::start(
        "upgrade",
        GatewayOptions {
            server_extra: format!("upgrade_sock = \"{}\"\n", socket.display()),
            ..GatewayOptions::default()
        },
    )
    .await;
    let mut browser = Browser::new();
    assert_eq!(browser.login(&stack, "/").await.status, 200);
    let cookie = browser.cookie_header();
    // Another visitor is at the provider's page when the upgrade happens.
    let mut late = Browser::new();
    let confirm = late.start_login(&stack, "/late", 0).await;

    // Load: 4 workers, a fresh connection per request, bounded in time and count.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let (stop, ok, failures) = (stop.clone(), ok.clone(), failures.clone());
        let url = stack.url("/under-load");
        let cookie = cookie.clone();
        workers.push(tokio::spawn(async move {
            let mut sent = 0;
            while !stop.load(Ordering::Relaxed) && sent < 20_000 {
                sent += 1;
                match client.get(&url).header("cookie", &cookie).send().await {
                    Ok(r) if r.status() == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => failures
                        .lock()
                        .unwrap()
                        .push(format!("status {}", r.status())),
                    Err(e) => failures.lock().unwrap().push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The new process waits for the sockets; the old one hands them over on SIGQUIT.
    let new = Process::spawn(
        &[
            "run",
            "--upgrade",
            "--config",
            stack.config_path.to_str().unwrap(),
        ],
        stack.dir.join("gateway-new.log"),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    stack.gateway.signal("QUIT");

    let old_exit = stack.gateway.wait_exit(Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }

    let failures = failures.lock().unwrap().clone();
    let served = ok.load(Ordering::Relaxed);
    eprintln!(
        "upgrade under load: {served} requests served, {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failed requests: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(served > 200, "only {served} requests were sent");
    assert!(old_exit.success(), "old process exit: {old_exit:?}");
    let new_log = new.log_text();
    assert!(new_log.contains("sessions taken over"), "{new_log}");

    // The visitor is still signed in, now served by the new process.
    let page = browser.get(&stack.url("/after")).await;
    assert_eq!(page.status, 200);
    assert_eq!(echoed(&page.body, "x-guichet-uid"), ["hdupre"]);
    // Its logout hint, sealed by the old process's own key, opens in the new one: the logout
    // reaches the provider, which verifies the hint.
    let out = browser.logout(&stack.url("/.guichet/logout")).await;
    let end_session = out.location.unwrap_or_default();
    assert!(
        end_session.contains("id_token_hint=ey"),
        "{end_session}\n{}",
        new.log_text()
    );
    assert_eq!(browser.get(&end_session).await.status, 302);
    // The login started on the old process ends on the new one: its cookie opens there.
    let done = late.confirm(&confirm).await;
    assert_eq!(done.status, 302, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/late"));
    assert_eq!(late.get(&stack.url("/late")).await.status, 200);
    assert!(!std::path::Path::new(&format!("{}.sessions", socket.display())).exists());
}
