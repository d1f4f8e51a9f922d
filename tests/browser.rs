//! Every page a visitor can see, in a real browser: `guichet demo` is started and
//! `tests/browser/pages.mjs` drives Debian's Chromium through it with the keyboard only (the
//! chooser, the mock providers, the demo application, `/.guichet/me`, signing out with and
//! without the confirmation page, error pages), runs axe-core on each page (WCAG 2.1 A and AA
//! and axe's best practices: zero violations), checks the focus is visible on every control
//! and measures the federations' buttons. It leaves screenshots in `target/screenshots/`
//! (`scripts/screenshots.sh` copies them to `docs/screenshots/`).

mod support;

use std::process::Command;

use support::Demo;

#[tokio::test(flavor = "multi_thread")]
async fn every_page_passes_axe_and_works_with_the_keyboard() {
    let demo = Demo::start("browser").await;
    let gateway = demo.gateway.clone();

    let screenshots = concat!(env!("CARGO_MANIFEST_DIR"), "/target/screenshots");
    let output = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/pages.mjs"
        ))
        .args([gateway.as_str(), screenshots])
        .output()
        .expect("run node (scripts/setup-test-peers.sh installs it and the browser packages)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{stdout}\n{stderr}\n--- demo log ---\n{}",
        demo.process.log_text()
    );
    assert!(stdout.contains("all pages checked"), "{stdout}");
    // Each page the walk promises was audited.
    for page in [
        "ok chooser: axe",
        "ok mock provider: axe",
        "ok demo application: axe",
        "ok /.guichet/me: axe",
        "ok signed out: axe",
        "ok /.guichet/me, signed out: axe",
        "ok sign-out confirmation: axe",
        "ok error page (unknown provider): axe",
        "ok error page (not found): axe",
    ] {
        assert!(stdout.contains(page), "{page} missing:\n{stdout}");
    }
    for shot in ["chooser.png", "error.png", "demo-app.png"] {
        let bytes = std::fs::read(format!("{screenshots}/{shot}")).expect(shot);
        assert!(bytes.starts_with(b"\x89PNG"), "{shot}");
    }
}
