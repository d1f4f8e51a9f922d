//! The templates: escaping, the chooser's order and wording, overrides checked at start.

use super::*;
use crate::config::{Logo, ProviderKind, TEMPLATE_NAMES};

fn federation(kind: ProviderKind) -> Method {
    let button = kind.button().expect("a federation");
    Method::new(
        "",
        format!("/.guichet/login?provider={}&rd=%2F", button.about_name),
        Some(button),
    )
}

fn plain(label: &str, href: &str) -> Method {
    Method::new(label, href, None)
}

fn branded() -> PagesSettings {
    PagesSettings {
        application_name: Some("Registre <des> \"actes\"".into()),
        organisation: Some("Ministère\nde l'Intérieur".into()),
        support_url: Some("mailto:support@example.gouv.fr".into()),
        logo: Some(Logo {
            bytes: b"<svg xmlns='http://www.w3.org/2000/svg'/>".to_vec(),
            content_type: "image/svg+xml",
        }),
        logo_alt: Some("Ministère de l'Intérieur".into()),
        alternative_login: Some(("/login".into(), "Identifiant et mot de passe".into())),
        templates: Vec::new(),
    }
}

fn error_view(text: &str) -> ErrorView {
    ErrorView {
        title: text.into(),
        fr: text.into(),
        en: text.into(),
        link: None,
        status: 400,
        reference: text.into(),
    }
}

#[test]
fn the_overridable_templates_are_the_built_in_ones() {
    let names: Vec<&str> = TEMPLATES.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, TEMPLATE_NAMES);
}

#[test]
fn every_page_is_a_complete_french_document_with_its_own_style_sheets() {
    let pages = Pages::builtin();
    let message = Message {
        heading: "Titre",
        text: vec!["Texte"],
        english: "Text",
        form: None,
        link: None,
    };
    for html in [
        pages.chooser(&[federation(ProviderKind::ProConnect)]),
        pages.error(&error_view("x")),
        pages.message("Titre", &message),
        pages.me(&[]),
    ] {
        assert!(
            html.starts_with("<!doctype html>\n<html lang=\"fr\">"),
            "{html}"
        );
        assert!(html.contains("<title>") && html.contains("<main id=\"content\""));
        assert!(html.contains("href=\"/.guichet/assets/dsfr-connect.min.css?v="));
        assert!(html.contains("href=\"/.guichet/assets/guichet.css?v="));
        assert!(
            !html.contains("<style") && !html.contains("style="),
            "{html}"
        );
        // Unbranded: no empty header parts.
        assert!(!html.contains("brand__logo") && !html.contains("<footer"));
    }
}

#[test]
fn text_from_the_configuration_and_the_request_is_escaped() {
    let hostile = "<script>alert(1)</script>\"'&";
    let pages = Pages::new(&PagesSettings {
        application_name: Some(hostile.into()),
        organisation: Some(hostile.into()),
        support_url: Some(format!("https://x/{hostile}")),
        ..Default::default()
    })
    .unwrap();
    let html = [
        pages.error(&error_view(hostile)),
        pages.chooser(&[plain(hostile, &format!("/{hostile}"))]),
        pages.me(&[Row {
            label: "Nom",
            value: hostile.into(),
        }]),
    ]
    .concat();
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("\"'&"), "{html}");
    assert!(html.contains("&lt;script&gt;"));
}

#[test]
fn branding_appears_in_the_header_and_footer() {
    let pages = Pages::new(&branded()).unwrap();
    let html = pages.error(&error_view("Erreur"));
    assert!(html.contains("<title>Erreur — Registre &lt;des&gt; &quot;actes&quot;</title>"));
    assert!(html.contains("Ministère<br>de l&#39;Intérieur"), "{html}");
    assert!(html.contains("<img class=\"brand__logo\" src=\"/.guichet/assets/logo?v="));
    assert!(html.contains("alt=\"Ministère de l&#39;Intérieur\""));
    assert!(html.contains("<a href=\"mailto:support@example.gouv.fr\">"));
    assert_eq!(pages.asset("logo").unwrap().0, "image/svg+xml");
    assert!(pages.asset("guichet.css").is_some() && pages.asset("dsfr-connect.min.css").is_some());
    assert!(pages.asset("../etc/passwd").is_none() && Pages::builtin().asset("logo").is_none());
}

/// Positions of `needle` in `haystack`.
fn positions(haystack: &str, needle: &str) -> Vec<usize> {
    haystack.match_indices(needle).map(|(i, _)| i).collect()
}

#[test]
fn the_chooser_follows_the_federations_rules() {
    let pages = Pages::builtin();
    let methods = [
        federation(ProviderKind::ProConnect),
        federation(ProviderKind::FranceConnectPlus),
        plain("Identifiant et mot de passe", "/login"),
    ];
    let html = pages.chooser(&methods);
    // One official button per federation, its DSFR variant, the "what is it?" link right after
    // it, opening a new window and saying so.
    assert_eq!(positions(&html, "class=\"fr-connect ").len(), 2, "{html}");
    assert!(html.contains("class=\"fr-connect fr-connect--pro\""));
    assert!(html.contains("class=\"fr-connect fr-connect--plus\""));
    assert!(html.contains("<span class=\"fr-connect__login\">S’identifier avec</span> <span class=\"fr-connect__brand\">ProConnect</span></a>\n<p><a href=\"https://www.proconnect.gouv.fr/\" target=\"_blank\" rel=\"noopener\" title=\"Qu’est-ce que ProConnect ? - nouvelle fenêtre\">Qu’est-ce que ProConnect ?</a></p>"), "{html}");
    assert!(html.contains("Qu’est-ce que FranceConnect+ ?"));
    // Several ways: each federation's sentence above its button, "ou" between each two.
    let intro = ProviderKind::ProConnect.button().unwrap().intro;
    assert!(html.find(intro).unwrap() < html.find("fr-connect--pro").unwrap());
    assert_eq!(
        positions(&html, "<p class=\"or\"><span>ou</span></p>").len(),
        2
    );
    let alternative = html.find("href=\"/login\"").unwrap();
    assert!(positions(&html, "class=\"or\"")[1] < alternative);
    // One way only: no sentence, no separator.
    let html = pages.chooser(&[federation(ProviderKind::ProConnect)]);
    assert!(!html.contains(intro) && !html.contains("class=\"or\""));
}

#[test]
fn an_override_replaces_a_template_and_keeps_the_others() {
    let mut settings = branded();
    settings.templates = vec![(
        "error.html".into(),
        "{% extends \"base.html\" %}{% block content %}<h1>Oups : {{ error.title }}</h1>{% endblock %}".into(),
    )];
    let pages = Pages::new(&settings).unwrap();
    let html = pages.error(&error_view("<b>"));
    assert!(html.contains("<h1>Oups : &lt;b&gt;</h1>") && html.contains("brand__organisation"));
    assert!(pages.me(&[]).contains("Vous êtes connecté"));
}

#[test]
fn an_override_that_cannot_render_is_refused_at_start_with_its_name() {
    for (name, source, expected) in [
        ("chooser.html", "{% for m in methods %}", "chooser.html"),
        (
            "base.html",
            "{% block content %}{{ site.missing.deeper }}{% endblock %}",
            "base.html",
        ),
        (
            "error.html",
            "{{ error.title | no_such_filter }}",
            "no_such_filter",
        ),
        ("me.html", "{% include \"absent.html\" %}", "absent.html"),
        ("message.html", "{{ \"a\" + 1 }}", "message.html"),
    ] {
        let settings = PagesSettings {
            templates: vec![(name.into(), source.into())],
            ..Default::default()
        };
        let error = Pages::new(&settings).expect_err(source).to_string();
        assert!(error.starts_with("pages.templates: "), "{error}");
        assert!(error.contains(expected), "{source}: {error}");
    }
}

#[test]
fn the_sign_out_form_may_lead_to_the_providers_logout() {
    let pages = Pages::builtin().with_sign_out_origins(&[
        "https://auth.agentconnect.gouv.fr".into(),
        "https://oidc.franceconnect.gouv.fr".into(),
    ]);
    assert!(pages.sign_out_policy.contains(
        "form-action 'self' https://auth.agentconnect.gouv.fr https://oidc.franceconnect.gouv.fr;"
    ));
    assert!(Pages::builtin()
        .sign_out_policy
        .contains("form-action 'self';"));
    let reply = crate::http::pages::logout_confirmation(&pages);
    let header = reply.to_response_header().unwrap();
    let policies: Vec<_> = header
        .headers
        .get_all("content-security-policy")
        .iter()
        .collect();
    assert_eq!(policies.len(), 1);
    assert!(policies[0]
        .to_str()
        .unwrap()
        .contains("https://oidc.franceconnect.gouv.fr"));
}
