//! Outgoing HTTP: standard `wasi:http`, sent only to the hosts in the plugin's `http_allow`
//! and only when `http` is granted. A refused request is `http-request-denied` for the guest
//! and is remembered, so the failed job can name the host and the setting to change.

use std::future::Future;

use http::Uri;
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::config::PluginPolicy;
use crate::plugins::Capability;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// `http` is not in the plugin's grants.
    NotGranted,
    /// The request's `host:port` matched no `http_allow` entry.
    NotAllowed(String),
}

/// The `wasi:http` hooks of one run.
#[derive(Debug, Default)]
pub struct HttpGate {
    /// `None` without the `http` grant.
    allow: Option<Vec<String>>,
    pub denied: Vec<Denial>,
}

impl HttpGate {
    /// The gate for a job under `policy`; without a policy (at load time) nothing passes.
    pub fn new(policy: Option<&PluginPolicy>) -> Self {
        let allow = policy
            .filter(|policy| policy.allows(Capability::Http))
            .map(|policy| policy.http_allow.iter().map(|host| host.to_ascii_lowercase()).collect());
        Self { allow, denied: Vec::new() }
    }

    fn check(&self, uri: &Uri) -> Result<(), Denial> {
        let allow = self.allow.as_ref().ok_or(Denial::NotGranted)?;
        let host = uri.host().unwrap_or_default().to_ascii_lowercase();
        let default_port = if uri.scheme() == Some(&http::uri::Scheme::HTTPS) { 443 } else { 80 };
        let port = uri.port_u16().unwrap_or(default_port);
        if allow.iter().any(|entry| allows(entry, &host, port)) {
            Ok(())
        } else {
            Err(Denial::NotAllowed(format!("{host}:{port}")))
        }
    }
}

/// `entry` is `host`, `host:port`, `[v6]`, `[v6]:port`, or `*.domain` (any subdomain, any
/// port).
fn allows(entry: &str, host: &str, port: u16) -> bool {
    if let Some(domain) = entry.strip_prefix("*.") {
        return host.strip_suffix(domain).is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'));
    }
    match split_port(entry) {
        (entry_host, Some(entry_port)) => entry_host == host && entry_port == port,
        (entry_host, None) => entry_host == host,
    }
}

fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some((host, port)) = entry.rsplit_once(':')
        && (host.ends_with(']') || !host.contains(':'))
        && let Ok(port) = port.parse()
    {
        return (host, Some(port));
    }
    (entry, None)
}

type Response = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>), Error>;

impl WasiHttpHooks for HttpGate {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Response> + Send> {
        if let Err(denial) = self.check(request.uri()) {
            tracing::warn!(uri = %request.uri(), ?denial, "outgoing HTTP refused");
            self.denied.push(denial);
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(allow: &[&str]) -> HttpGate {
        HttpGate { allow: Some(allow.iter().map(|s| s.to_string()).collect()), denied: Vec::new() }
    }

    fn check(gate: &HttpGate, uri: &str) -> Result<(), Denial> {
        gate.check(&uri.parse().unwrap())
    }

    #[test]
    fn hosts_ports_and_subdomains_are_matched_exactly() {
        let gate = gate(&["scim.example.com", "127.0.0.1:8080", "*.corp.example", "[::1]"]);
        assert_eq!(check(&gate, "https://SCIM.example.com/Users"), Ok(()));
        assert_eq!(check(&gate, "http://scim.example.com:9000/"), Ok(()));
        assert_eq!(check(&gate, "http://127.0.0.1:8080/x"), Ok(()));
        assert_eq!(check(&gate, "http://a.b.corp.example/"), Ok(()));
        assert_eq!(check(&gate, "http://[::1]:3000/"), Ok(()));
        for (uri, denied) in [
            ("http://127.0.0.1:8081/", "127.0.0.1:8081"),
            ("http://127.0.0.1/", "127.0.0.1:80"),
            ("https://scim.example.com.evil.example/", "scim.example.com.evil.example:443"),
            ("http://corp.example/", "corp.example:80"),
            ("http://evilcorp.example/", "evilcorp.example:80"),
        ] {
            assert_eq!(check(&gate, uri), Err(Denial::NotAllowed(denied.to_owned())), "{uri}");
        }
        assert_eq!(check(&HttpGate::new(None), "http://127.0.0.1:8080/"), Err(Denial::NotGranted));
    }
}
