//! `guichet demo`, as a newcomer runs it: the gateway, the three mock providers (AgentConnect,
//! FranceConnect, FranceConnect+) and the demo app in one process. A visitor signs in through
//! each button of the chooser and the app shows the identity guichet sent.

mod support;

use support::{Browser, Demo};

/// The demo app's row for a header: `<th scope="row">name</th><td>decoded</td>`.
fn shown<'a>(page: &'a str, header: &str) -> Option<&'a str> {
    let start = page.find(&format!("<th scope=\"row\">{header}</th><td>"))?
        + header.len()
        + "<th scope=\"row\"></th><td>".len();
    let end = page[start..].find("</td>")? + start;
    Some(&page[start..end])
}

#[tokio::test(flavor = "multi_thread")]
async fn each_button_of_the_demo_signs_in() {
    let demo = Demo::start("demo").await;
    let (gateway, ports) = (demo.gateway.clone(), demo.ports.clone());

    let chooser = Browser::new()
        .get(&format!("{gateway}/.guichet/login"))
        .await;
    assert_eq!(chooser.status, 200);
    for (class, provider) in [
        ("fr-connect fr-connect--pro", "agentconnect"),
        ("fr-connect", "franceconnect"),
        ("fr-connect fr-connect--plus", "franceconnect-plus"),
    ] {
        assert!(
            chooser.body.contains(&format!(
                "<a class=\"{class}\" href=\"/.guichet/login?provider={provider}&amp;"
            )),
            "{provider} button: {}",
            chooser.body
        );
    }

    // (provider id, its mock's port, the test person picked, a header and the value shown)
    for (provider, port, person, header, value) in [
        ("agentconnect", ports[1], 0, "x-guichet-usual-name", None),
        (
            "franceconnect",
            ports[3],
            1,
            "x-guichet-family-name",
            Some("EL AMRANI"),
        ),
        (
            "franceconnect-plus",
            ports[4],
            1,
            "x-guichet-family-name",
            Some("EL AMRANI"),
        ),
    ] {
        let mut browser = Browser::new();
        let login = browser
            .get(&format!(
                "{gateway}/.guichet/login?provider={provider}&rd=/dossiers"
            ))
            .await;
        assert_eq!(login.status, 302, "{provider}: {}", login.body);
        let authorize = browser.get(login.location.as_deref().unwrap()).await;
        assert_eq!(authorize.status, 200, "{provider}: {}", authorize.body);
        let confirm = format!(
            "http://127.0.0.1:{port}{}",
            support::agent_link(&authorize.body, person)
        );
        let back = browser.get(&confirm).await;
        assert_eq!(back.status, 302, "{provider}: {}", back.body);
        let callback = browser.get(back.location.as_deref().unwrap()).await;
        assert_eq!(
            callback.status,
            302,
            "{provider}: {}\n{}",
            callback.body,
            demo.process.log_text()
        );
        let app = browser.get(&format!("{gateway}/dossiers")).await;
        assert_eq!(app.status, 200, "{provider}: {}", app.body);
        assert_eq!(shown(&app.body, "x-guichet-provider"), Some(provider));
        let got = shown(&app.body, header);
        assert!(
            got.is_some_and(|v| !v.is_empty()),
            "{provider}: {}",
            app.body
        );
        if let Some(value) = value {
            assert_eq!(got, Some(value), "{provider}");
        }
        if provider == "franceconnect-plus" {
            // The preset asks for eidas2; the mock's FranceConnect+ vouches for it.
            assert_eq!(shown(&app.body, "x-guichet-acr"), Some("eidas2"));
        }
    }
    // The mock providers start with the gateway, whose first discovery may find their ports
    // not open yet: that is start-up, not a fault, and a newcomer's first run warns of nothing.
    let log = demo.process.log_text();
    let alarming: Vec<&str> = log
        .lines()
        .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
        .collect();
    assert!(alarming.is_empty(), "the demo warned: {alarming:#?}");
    let dir = demo.dir.clone();
    drop(demo);
    let _ = std::fs::remove_dir_all(dir);
}
