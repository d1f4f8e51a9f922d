//! A browser: its own cookie jar, no automatic redirects, the walk through a login at the mock
//! provider, forms; and reading what the test upstream echoed.

use std::collections::HashMap;

use super::Stack;

// === browser ===

/// A browser: no automatic redirects, its own cookie jar (one per origin is enough here since
/// every server is on 127.0.0.1 with its own port and cookies are host-wide; names differ).
pub struct Browser {
    pub client: reqwest::Client,
    pub cookies: HashMap<String, String>,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Browser {
    pub fn new() -> Self {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: HashMap::new(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn get(&mut self, url: &str) -> Page {
        self.get_with(url, &[]).await
    }

    pub async fn get_with(&mut self, url: &str, headers: &[(&str, &str)]) -> Page {
        let mut request = self.client.get(url).header("accept", "text/html");
        if !self.cookies.is_empty() {
            request = request.header("cookie", self.cookie_header());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request");
        self.read(response).await
    }

    /// Follows a sign-out link of the application: a navigation from the same origin, as a
    /// browser announces it (`Sec-Fetch-Site: same-origin`).
    pub async fn logout(&mut self, url: &str) -> Page {
        self.get_with(url, &[("sec-fetch-site", "same-origin")])
            .await
    }

    /// Submits an HTML form: `fields` plus the form's hidden inputs, to its `action`.
    pub async fn submit_form(
        &mut self,
        page_url: &str,
        body: &str,
        fields: &[(&str, &str)],
    ) -> Page {
        let start = body.find("<form").expect("a form on the page");
        let form = &body[start..start + body[start..].find("</form>").expect("form end")];
        let attribute = |tag: &str, name: &str| {
            let needle = format!("{name}=\"");
            tag.find(&needle).map(|at| {
                let rest = &tag[at + needle.len()..];
                rest[..rest.find('"').unwrap_or(rest.len())].replace("&amp;", "&")
            })
        };
        let action = attribute(form, "action").expect("form action");
        let action = match url::Url::parse(page_url).unwrap().join(&action) {
            Ok(url) => url.to_string(),
            Err(_) => action,
        };
        let mut values: Vec<(String, String)> = Vec::new();
        for input in form.split("<input").skip(1) {
            let tag = &input[..input.find('>').unwrap_or(input.len())];
            if attribute(tag, "type").as_deref() == Some("hidden") {
                if let (Some(name), Some(value)) = (attribute(tag, "name"), attribute(tag, "value"))
                {
                    values.push((name, value));
                }
            }
        }
        for (name, value) in fields {
            values.push((name.to_string(), value.to_string()));
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&values)
            .finish();
        let response = self
            .client
            .post(&action)
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("form submission");
        self.read(response).await
    }

    pub async fn read(&mut self, response: reqwest::Response) -> Page {
        for set in response.headers().get_all("set-cookie") {
            let text = set.to_str().expect("ascii cookie");
            let pair = text.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').expect("cookie pair");
            if text.contains("Max-Age=0") || value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let location = headers
            .get("location")
            .map(|l| l.to_str().expect("ascii location").to_string());
        let body = response.text().await.unwrap_or_default();
        Page {
            status,
            location,
            headers,
            body,
        }
    }

    /// Follows a relative or absolute location against the gateway.
    pub fn absolute(base: &str, location: &str) -> String {
        if location.starts_with("http") {
            location.to_string()
        } else {
            format!("{base}{location}")
        }
    }

    /// Starts a login at `path` and stops at the provider's authorize page; returns the
    /// provider's confirm link for `agent`.
    pub async fn start_login(&mut self, stack: &Stack, path: &str, agent: usize) -> String {
        let first = self.get(&stack.url(path)).await;
        assert_eq!(
            first.status, 302,
            "protected page must redirect: {}",
            first.body
        );
        let login = Self::absolute(
            &stack.gateway_url,
            first.location.as_deref().expect("location"),
        );
        let to_provider = self.get(&login).await;
        assert_eq!(
            to_provider.status, 302,
            "login must redirect: {}",
            to_provider.body
        );
        let authorize = to_provider.location.expect("authorize URL");
        let page = self.get(&authorize).await;
        assert_eq!(page.status, 200, "authorize page: {}", page.body);
        confirm_link(&page.body, agent, stack)
    }

    /// Completes a login at the provider and returns the gateway's callback response.
    pub async fn confirm(&mut self, confirm_url: &str) -> Page {
        let back = self.get(confirm_url).await;
        assert_eq!(
            back.status, 302,
            "provider must redirect back: {}",
            back.body
        );
        let callback = back.location.expect("callback URL");
        self.get(&callback).await
    }

    /// Signs in through the whole flow and returns the final page of `path`.
    pub async fn login(&mut self, stack: &Stack, path: &str) -> Page {
        let confirm = self.start_login(stack, path, 0).await;
        let done = self.confirm(&confirm).await;
        assert_eq!(done.status, 302, "callback must redirect: {}", done.body);
        let target = Self::absolute(
            &stack.gateway_url,
            done.location.as_deref().expect("location"),
        );
        self.get(&target).await
    }
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

/// The provider page's confirm link for an agent.
pub fn confirm_link(body: &str, agent: usize, stack: &Stack) -> String {
    stack.provider_url(&agent_link(body, agent))
}

/// The href (relative to the provider) of the mock provider's link for test person `agent`.
pub fn agent_link(body: &str, agent: usize) -> String {
    let needle = format!("&amp;agent={agent}\"");
    let end = body
        .find(&needle)
        .expect("agent link on the authorize page");
    let start = body[..end].rfind("href=\"").expect("href") + 6;
    body[start..end + needle.len() - 1].replace("&amp;", "&")
}

/// The upstream's echo of one header, from its response body (`name: value` lines).
pub fn echoed<'a>(body: &'a str, name: &str) -> Vec<&'a str> {
    body.lines()
        .filter_map(|line| line.split_once(": "))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .collect()
}
