//! Who may use the admin API: a caller presenting `Authorization: Bearer <ADMIN_TOKEN>`, or the
//! web console's browser holding a session cookie it got by signing in with that token.
//!
//! Sessions are stateless: the cookie carries its expiry and a nonce, signed with a key derived
//! from ADMIN_TOKEN, so every replica behind a load balancer accepts it and rotating the token
//! ends every session. Changes made with a cookie must also carry the session's CSRF token in
//! `X-CSRF-Token` (the console reads it from `GET /admin/session`, which another site cannot
//! read) and, where the browser sends one, an `Origin` equal to the request's host.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Secret;
use crate::http::AppState;

/// The console's session cookie.
pub const SESSION_COOKIE: &str = "floh_session";
/// The header a cookie-authenticated change carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a console session lasts.
pub const SESSION_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::hours(8);

/// The admin token and the key console sessions are signed with.
#[derive(Clone)]
pub struct AdminAuth {
    token: Secret<String>,
    session_key: [u8; 32],
}

/// A signed-in console session: the cookie's value, its CSRF token and when it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub cookie: String,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

impl AdminAuth {
    pub fn new(token: Secret<String>) -> Self {
        let session_key = Sha256::new()
            .chain_update(b"floh console sessions\0")
            .chain_update(token.expose())
            .finalize()
            .into();
        Self { token, session_key }
    }

    /// Whether `presented` is the admin token, compared in constant time.
    pub fn is_token(&self, presented: &str) -> bool {
        presented.as_bytes().ct_eq(self.token.expose().as_bytes()).into()
    }

    /// A new session starting at `now`.
    pub fn start_session(&self, now: DateTime<Utc>) -> Session {
        let expires = (now + SESSION_LIFETIME).timestamp();
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let payload = format!("{expires}.{nonce}");
        let cookie = format!("{payload}.{}", self.sign("session", &payload));
        self.session(&cookie, now).expect("a session just signed is valid")
    }

    /// The session `cookie` stands for, if it was signed here and has not ended at `now`.
    pub fn session(&self, cookie: &str, now: DateTime<Utc>) -> Option<Session> {
        let (payload, signature) = cookie.rsplit_once('.')?;
        let expected = self.sign("session", payload);
        if !bool::from(signature.as_bytes().ct_eq(expected.as_bytes())) {
            return None;
        }
        let (expires, _nonce) = payload.split_once('.')?;
        let expires_at = DateTime::from_timestamp(expires.parse().ok()?, 0)?;
        (now < expires_at).then(|| Session {
            cookie: cookie.to_owned(),
            csrf_token: self.sign("csrf", cookie),
            expires_at,
        })
    }

    fn sign(&self, purpose: &str, message: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.session_key).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(message.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// Whether a browser's `Origin`, where it sent one, is this host — the one the browser asked
/// for, which a reverse proxy that rewrites `Host` passes on in `X-Forwarded-Host`: the request
/// came from a page of floh's own.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let forwarded = headers
        .get("x-forwarded-host")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split(',').next())
        .map(str::trim);
    let host = forwarded.or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()));
    let origin_host =
        origin.to_str().ok().and_then(|o| o.split_once("://")).map(|(_, rest)| rest.trim_end_matches('/'));
    host.is_some() && origin_host == host
}

/// Lets a request through with the bearer token, or with a console session (plus its CSRF
/// token and a same-origin `Origin` for anything but a read).
pub async fn require_admin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let allowed = match (bearer, cookie(headers, SESSION_COOKIE)) {
        (Some(token), _) => state.admin.is_token(token),
        (None, Some(cookie)) => match state.admin.session(cookie, state.clock.now()) {
            Some(_) if is_read(request.method()) => true,
            Some(session) => {
                let presented = headers.get(CSRF_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
                if !same_origin(headers) || !bool::from(presented.ct_eq(session.csrf_token.as_bytes())) {
                    return super::error(
                        StatusCode::FORBIDDEN,
                        "a change from the console needs its CSRF token (reload the page)".into(),
                    );
                }
                true
            }
            None => false,
        },
        (None, None) => false,
    };
    if allowed {
        next.run(request).await
    } else {
        let mut response = super::error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (ADMIN_TOKEN), or the console session ended".into(),
        );
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("a valid header value"));
        response
    }
}

fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(token: &str) -> AdminAuth {
        AdminAuth::new(Secret::new(token.to_owned()))
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn a_session_is_valid_until_it_ends_and_only_where_it_was_signed() {
        let auth = auth("a-long-admin-token");
        let session = auth.start_session(at(0));
        assert_eq!(session.expires_at, at(0) + SESSION_LIFETIME);
        assert_eq!(auth.session(&session.cookie, at(60)), Some(session.clone()));
        assert_eq!(auth.session(&session.cookie, session.expires_at), None);
        assert_eq!(self::auth("the-rotated-token").session(&session.cookie, at(60)), None);
    }

    #[test]
    fn an_edited_cookie_is_refused() {
        let auth = auth("a-long-admin-token");
        let session = auth.start_session(at(0));
        let (_, rest) = session.cookie.split_once('.').unwrap();
        let extended = format!("{}.{rest}", at(0).timestamp() + 365 * 86_400);
        assert_eq!(auth.session(&extended, at(60)), None);
        assert_eq!(auth.session("garbage", at(60)), None);
        assert_eq!(auth.session("", at(60)), None);
    }

    #[test]
    fn each_session_has_its_own_csrf_token() {
        let auth = auth("a-long-admin-token");
        let (one, two) = (auth.start_session(at(0)), auth.start_session(at(0)));
        assert_ne!(one.cookie, two.cookie);
        assert_ne!(one.csrf_token, two.csrf_token);
    }

    #[test]
    fn cookies_and_origins_are_read_from_the_headers() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, "theme=dark; floh_session=abc.def".parse().unwrap());
        headers.insert(header::HOST, "floh.internal:3000".parse().unwrap());
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc.def"));
        assert_eq!(cookie(&headers, "missing"), None);
        assert!(same_origin(&headers), "no Origin: not a cross-site browser request");
        headers.insert(header::ORIGIN, "http://floh.internal:3000".parse().unwrap());
        assert!(same_origin(&headers));
        headers.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(!same_origin(&headers));
        // Behind a proxy that rewrites Host, the browser's host arrives as X-Forwarded-Host.
        headers.insert(header::HOST, "floh:3000".parse().unwrap());
        headers.insert(header::ORIGIN, "https://admin.example.com".parse().unwrap());
        assert!(!same_origin(&headers));
        headers.insert("x-forwarded-host", "admin.example.com".parse().unwrap());
        assert!(same_origin(&headers));
    }
}
