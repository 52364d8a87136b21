//! Outgoing HTTP through the standard `wasi:http` interface.
//!
//! The host sends a request only when the operator granted `http` and listed its host in
//! `http_allow`; otherwise it fails with [`HttpError::Denied`]. Requests run to completion
//! before returning (the job's deadline still applies).
//!
//! ```ignore
//! let users = http::Request::get("https://scim.example.com/scim/v2/Users?count=100")
//!     .header("accept", "application/scim+json")
//!     .bearer(&token)
//!     .send()?
//!     .success()?
//!     .json::<serde_json::Value>()?;
//! ```

use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

use crate::JobError;

/// Bytes written to, or read from, a body stream per call.
const CHUNK: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The host refused the request: `http` not granted, or the host not in `http_allow`.
    Denied(String),
    /// The request cannot be sent as written (bad URL, header or method).
    Invalid(String),
    /// The request failed on the way (DNS, connection, timeout, protocol): worth retrying.
    Failed(String),
    /// The server answered with an error status.
    Status { status: u16, body: String },
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Denied(what) => write!(f, "outgoing HTTP refused by the host: {what}"),
            HttpError::Invalid(why) => write!(f, "invalid HTTP request: {why}"),
            HttpError::Failed(why) => write!(f, "HTTP request failed: {why}"),
            HttpError::Status { status, body } => write!(f, "HTTP {status}: {}", truncate(body, 300)),
        }
    }
}

/// A refusal or a bad request fails the job for good, as does a 4xx answer; a failed
/// connection, a 429 or a 5xx answer is retried.
impl From<HttpError> for JobError {
    fn from(error: HttpError) -> Self {
        let retry = match &error {
            HttpError::Failed(_) => true,
            HttpError::Status { status, .. } => *status == 429 || *status >= 500,
            HttpError::Denied(_) | HttpError::Invalid(_) => false,
        };
        if retry { JobError::Retryable(error.to_string()) } else { JobError::Permanent(error.to_string()) }
    }
}

/// A request being built; [`Request::send`] sends it.
#[derive(Debug, Clone)]
pub struct Request {
    method: &'static str,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    /// `method` is `GET`, `POST`, `PUT`, `PATCH`, `DELETE` or `HEAD`.
    pub fn new(method: &'static str, url: &str) -> Self {
        Self { method, url: url.to_owned(), headers: Vec::new(), body: Vec::new() }
    }

    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }

    pub fn post(url: &str) -> Self {
        Self::new("POST", url)
    }

    pub fn patch(url: &str) -> Self {
        Self::new("PATCH", url)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// A JSON body, with `content-type: application/json` unless one was set.
    pub fn json(mut self, body: &impl serde::Serialize) -> Result<Self, HttpError> {
        self.body = serde_json::to_vec(body).map_err(|e| HttpError::Invalid(format!("body: {e}")))?;
        if !self.headers.iter().any(|(name, _)| name == "content-type") {
            self = self.header("content-type", "application/json");
        }
        Ok(self)
    }

    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// Sends the request and reads the whole response. Any status is a response here; see
    /// [`Response::success`].
    pub fn send(self) -> Result<Response, HttpError> {
        let (scheme, authority, path) = split_url(&self.url)?;
        let headers = Fields::new();
        // A known length rather than chunked encoding, which not every server reads.
        if !self.body.is_empty() || matches!(self.method, "POST" | "PUT" | "PATCH") {
            headers
                .append("content-length", self.body.len().to_string().as_bytes())
                .map_err(|e| HttpError::Invalid(format!("header content-length: {e:?}")))?;
        }
        for (name, value) in &self.headers {
            headers
                .append(name, value.as_bytes())
                .map_err(|e| HttpError::Invalid(format!("header {name}: {e:?}")))?;
        }
        let request = OutgoingRequest::new(headers);
        let method = match self.method {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "HEAD" => Method::Head,
            other => Method::Other(other.to_owned()),
        };
        let invalid = |what: &str| HttpError::Invalid(format!("{what} of {}", self.url));
        request.set_method(&method).map_err(|()| invalid("the method"))?;
        request.set_scheme(Some(&scheme)).map_err(|()| invalid("the scheme"))?;
        request.set_authority(Some(authority)).map_err(|()| invalid("the host"))?;
        request.set_path_with_query(Some(&path)).map_err(|()| invalid("the path"))?;
        let outgoing = request.body().map_err(|()| invalid("the body"))?;

        // Sent first, then the body streamed: the host reads the body as it is written.
        let pending = outgoing_handler::handle(request, None).map_err(failure)?;
        {
            let stream = outgoing.write().map_err(|()| invalid("the body"))?;
            for chunk in self.body.chunks(CHUNK) {
                stream.blocking_write_and_flush(chunk).map_err(|e| stream_failure(&e))?;
            }
        }
        OutgoingBody::finish(outgoing, None).map_err(failure)?;

        let response = loop {
            match pending.get() {
                Some(Ok(Ok(response))) => break response,
                Some(Ok(Err(code))) => return Err(failure(code)),
                Some(Err(())) => return Err(HttpError::Failed("the response was already taken".into())),
                None => pending.subscribe().block(),
            }
        };
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect();
        let incoming = response.consume().map_err(|()| HttpError::Failed("no response body".into()))?;
        let mut body = Vec::new();
        {
            let stream = incoming.stream().map_err(|()| HttpError::Failed("no response body".into()))?;
            loop {
                match stream.blocking_read(CHUNK as u64) {
                    Ok(chunk) => body.extend_from_slice(&chunk),
                    Err(StreamError::Closed) => break,
                    Err(e) => return Err(stream_failure(&e)),
                }
            }
        }
        drop(IncomingBody::finish(incoming));
        Ok(Response { status, headers, body })
    }
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The response if its status is 2xx, else [`HttpError::Status`].
    pub fn success(self) -> Result<Self, HttpError> {
        if (200..300).contains(&self.status) {
            Ok(self)
        } else {
            Err(HttpError::Status { status: self.status, body: self.text() })
        }
    }

    /// The body as JSON; a body that is not is a failed request.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| HttpError::Failed(format!("the response is not the JSON expected: {e}")))
    }
}

/// `scheme://authority/path?query` into its parts; the path defaults to `/`.
fn split_url(url: &str) -> Result<(Scheme, &str, String), HttpError> {
    let invalid = || HttpError::Invalid(format!("{url:?} is not an http:// or https:// URL"));
    let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return Err(invalid()),
    };
    let at = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(at);
    let path = path.split('#').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(invalid());
    }
    let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
    Ok((scheme, authority, path))
}

fn failure(code: ErrorCode) -> HttpError {
    match code {
        ErrorCode::HttpRequestDenied => HttpError::Denied(
            "http is not granted to this plugin, or the host is not in its http_allow".into(),
        ),
        ErrorCode::HttpRequestUriInvalid | ErrorCode::HttpRequestMethodInvalid => {
            HttpError::Invalid(format!("{code:?}"))
        }
        other => HttpError::Failed(format!("{other:?}").trim_start_matches("ErrorCode::").to_owned()),
    }
}

fn stream_failure(error: &StreamError) -> HttpError {
    match error {
        StreamError::LastOperationFailed(e) => HttpError::Failed(e.to_debug_string()),
        StreamError::Closed => HttpError::Failed("the connection closed early".into()),
    }
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_scheme_authority_and_path() {
        let parts = |url| {
            split_url(url)
                .map(|(scheme, authority, path)| (format!("{scheme:?}"), authority.to_owned(), path))
        };
        assert_eq!(
            parts("http://127.0.0.1:8080"),
            Ok(("Scheme::Http".into(), "127.0.0.1:8080".into(), "/".into()))
        );
        assert_eq!(
            parts("https://scim.example.com/v2/Users?startIndex=1#x"),
            Ok(("Scheme::Https".into(), "scim.example.com".into(), "/v2/Users?startIndex=1".into()))
        );
        assert_eq!(parts("http://host?x=1"), Ok(("Scheme::Http".into(), "host".into(), "/?x=1".into())));
        for bad in ["ftp://host/", "host/path", "http:///path"] {
            assert!(matches!(split_url(bad), Err(HttpError::Invalid(_))), "{bad}");
        }
    }
}
