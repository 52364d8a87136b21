//! The web console at `/admin`: one page and its script and stylesheet, built into the binary,
//! driving the admin API with the session cookie it gets by signing in with ADMIN_TOKEN.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::admin::auth::{SESSION_COOKIE, SESSION_LIFETIME, Session, cookie, same_origin};
use crate::admin::error;
use crate::http::AppState;

/// Only the console's own files: no inline script or style, no other site, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

pub fn routes() -> Router<AppState> {
    let page = |content_type, body| get(move || asset(content_type, body));
    Router::new()
        .route("/admin", page("text/html; charset=utf-8", include_str!("assets/index.html")))
        .route("/admin/", get(|| async { Redirect::permanent("/admin") }))
        .route("/admin/console.js", page("text/javascript; charset=utf-8", include_str!("assets/console.js")))
        .route("/admin/console.css", page("text/css; charset=utf-8", include_str!("assets/console.css")))
        .route("/admin/session", get(session))
        .route("/admin/login", post(login))
        .route("/admin/logout", post(logout))
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    (headers, body).into_response()
}

#[derive(serde::Deserialize)]
struct Login {
    token: String,
}

/// Signs in with the admin token: sets the session cookie.
async fn login(State(state): State<AppState>, headers: HeaderMap, Json(login): Json<Login>) -> Response {
    if !same_origin(&headers) {
        return error(StatusCode::FORBIDDEN, "sign in from floh's own console page".into());
    }
    if !state.admin.is_token(&login.token) {
        tracing::warn!("console sign-in with a wrong admin token");
        return error(StatusCode::UNAUTHORIZED, "that is not the admin token (ADMIN_TOKEN)".into());
    }
    let session = state.admin.start_session(state.clock.now());
    let max_age = SESSION_LIFETIME.num_seconds();
    let set = session_cookie(&headers, &format!("{}; Max-Age={max_age}", session.cookie));
    (StatusCode::OK, [(header::SET_COOKIE, set)], described(&session)).into_response()
}

/// Ends the browser's session by clearing its cookie.
async fn logout(headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        return error(StatusCode::FORBIDDEN, "sign out from floh's own console page".into());
    }
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, session_cookie(&headers, "; Max-Age=0"))]).into_response()
}

/// The signed-in session's CSRF token and end, read by the console page (a page of another
/// site cannot read it).
async fn session(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match cookie(&headers, SESSION_COOKIE).and_then(|c| state.admin.session(c, state.clock.now())) {
        Some(session) => ([(header::CACHE_CONTROL, "no-store")], described(&session)).into_response(),
        None => error(StatusCode::UNAUTHORIZED, "not signed in".into()),
    }
}

/// What the console keeps of a session: its CSRF token and when it ends.
fn described(session: &Session) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "csrfToken": session.csrf_token, "expiresAt": session.expires_at }))
}

/// `floh_session=<value>` with the attributes every session cookie has: sent to floh alone
/// (`SameSite=Strict`), never readable by scripts, and `Secure` when the request reached a
/// TLS-terminating proxy.
fn session_cookie(headers: &HeaderMap, value_and_age: &str) -> HeaderValue {
    let behind_tls = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
    let secure = if behind_tls { "; Secure" } else { "" };
    let cookie = format!("{SESSION_COOKIE}={value_and_age}; Path=/; HttpOnly; SameSite=Strict{secure}");
    HeaderValue::from_str(&cookie).expect("a session cookie is a valid header value")
}
