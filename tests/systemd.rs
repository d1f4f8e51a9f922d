//! The shipped systemd unit: `systemd-analyze verify` accepts it and its security exposure is at
//! most 2.0. `scripts/test.sh` installs systemd-analyze when it is missing.

use std::process::Command;

#[test]
fn the_unit_verifies_and_is_hardened() {
    let dir = std::env::temp_dir().join(format!("guichet-systemd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/guichet.service"
    ))
    .unwrap();
    assert!(unit.contains("ExecStartPre=/usr/local/bin/guichet check"));
    // Point it at the binary under test, which verify requires to exist.
    let unit = unit.replace("/usr/local/bin/guichet", env!("CARGO_BIN_EXE_guichet"));
    let path = dir.join("guichet.service");
    std::fs::write(&path, unit).unwrap();

    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze must be installed (scripts/test.sh installs it)");
    let stderr = String::from_utf8_lossy(&verify.stderr);
    let relevant: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("guichet.service"))
        .collect();
    assert!(verify.status.success(), "verify failed: {stderr}");
    assert!(relevant.is_empty(), "verify complained: {relevant:?}");

    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&security.stdout);
    let exposure: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for guichet.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {text}"));
    assert!(exposure <= 2.0, "exposure {exposure} > 2.0:\n{text}");
}
