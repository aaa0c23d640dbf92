//! A browser-like client for the staff console: no client certificate,
//! its own cookie, Origin sent as a browser's form post sends it, redirects
//! not followed (so tests see each 303 and Set-Cookie).

use std::net::SocketAddr;

pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: Option<String>,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    /// The CSRF token of the page's first form.
    pub fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").expect("a form with a csrf token");
        let rest = &self.body[at + 19..];
        rest[..rest.find('"').expect("token end")].to_owned()
    }
}

impl Browser {
    pub fn new(console: SocketAddr, ca_pem: &str) -> Self {
        super::server::install_crypto_provider();
        let tls = throughline::tls::anonymous_client_config(ca_pem).expect("tls");
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Browser { http, base: format!("https://localhost:{}", console.port()), cookie: None }
    }

    async fn page(&mut self, req: reqwest::RequestBuilder) -> Page {
        let req = match &self.cookie {
            Some(c) => req.header("cookie", c),
            None => req,
        };
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        if let Some(set) = headers.get("set-cookie").and_then(|v| v.to_str().ok()) {
            let pair = set.split(';').next().unwrap_or_default().to_owned();
            self.cookie = if pair.ends_with('=') { None } else { Some(pair) };
        }
        let location = headers.get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        Page { status, location, headers, body: res.text().await.unwrap_or_default() }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let req = self.http.get(format!("{}{path}", self.base));
        self.page(req).await
    }

    /// A form post from our own page (the browser sends Origin).
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let origin = self.base.clone();
        self.post_from(path, form, &origin).await
    }

    pub async fn post_from(&mut self, path: &str, form: &[(&str, &str)], origin: &str) -> Page {
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.page(req).await
    }

    pub async fn login(&mut self, email: &str, password: &str, code: &str) -> Page {
        self.post("/login", &[("email", email), ("password", password), ("code", code)]).await
    }
}
