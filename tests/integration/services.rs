//! The servers and tools tests need, where they are, and what a test does when one is absent.
//!
//! A test names what it needs first, `needs!(Postgres, Redis);`. When something is missing on
//! a developer's machine the test prints `NOT RUN` with what to start — straight to the
//! terminal, past the test harness's output capture — and returns. With
//! `FLOH_TEST_REQUIRE_SERVICES=1`, as CI sets it, a missing service fails the test instead.
//! Everything else (SQLite, the embedded queue, the plugins) needs nothing installed.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// Makes a missing service a test failure.
pub const REQUIRE: &str = "FLOH_TEST_REQUIRE_SERVICES";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// A PostgreSQL server: FLOH_TEST_POSTGRES_URL, by default postgres://postgres@127.0.0.1:5432.
    Postgres,
    /// A Redis server: FLOH_TEST_REDIS_URL, by default redis://127.0.0.1:6379.
    Redis,
    /// `redis-server` on the PATH, for tests that start and stop a server of their own.
    RedisServer,
    /// Node.js with npm, for the bullmq client, the SMTP server and the browser driver.
    Node,
    /// Python 3 with venv, for the SCIM and S3 servers.
    Python,
    /// Chromium (CHROMIUM, by default /usr/bin/chromium), for the web console's browser test.
    Chromium,
}

/// The PostgreSQL server's URL without a database name.
pub fn postgres_server() -> String {
    std::env::var("FLOH_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
        .trim_end_matches('/')
        .to_owned()
}

/// The URL of database `name` on the test PostgreSQL server.
pub fn postgres_url(name: &str) -> String {
    format!("{}/{name}", postgres_server())
}

pub fn redis_url() -> String {
    std::env::var("FLOH_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

impl Service {
    /// What to do when it is missing.
    fn remedy(self) -> String {
        match self {
            Service::Postgres => {
                format!("PostgreSQL at {} (start it, or set FLOH_TEST_POSTGRES_URL)", postgres_server())
            }
            Service::Redis => format!("Redis at {} (start it, or set FLOH_TEST_REDIS_URL)", redis_url()),
            Service::RedisServer => "redis-server on the PATH (install Redis)".into(),
            Service::Node => "node and npm on the PATH (install Node.js)".into(),
            Service::Python => "python3 with venv on the PATH (install python3-venv)".into(),
            Service::Chromium => {
                format!("Chromium at {} (`apt-get install chromium`, or set CHROMIUM)", chromium())
            }
        }
    }

    fn probe(self) -> bool {
        match self {
            Service::Postgres => answers(&postgres_server()),
            Service::Redis => answers(&redis_url()),
            Service::RedisServer => runs("redis-server", &["--version"]),
            Service::Node => runs("node", &["--version"]) && runs("npm", &["--version"]),
            Service::Python => runs("python3", &["-m", "venv", "--help"]),
            Service::Chromium => std::path::Path::new(&chromium()).exists(),
        }
    }

    /// Whether it is there; probed once per test run.
    pub fn available(self) -> bool {
        static PROBED: [OnceLock<bool>; 6] = [const { OnceLock::new() }; 6];
        *PROBED[self as usize].get_or_init(|| self.probe())
    }
}

/// Whether something accepts TCP connections at the host and port of `url`.
fn answers(url: &str) -> bool {
    let Ok(url) = url::Url::parse(url) else { return false };
    let Some(host) = url.host_str() else { return false };
    let port = url.port().unwrap_or(if url.scheme().starts_with("redis") { 6379 } else { 5432 });
    (host.trim_matches(['[', ']']), port)
        .to_socket_addrs()
        .into_iter()
        .flatten()
        .any(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok())
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// True when the current test must not run for lack of `services` (having said so); panics
/// instead when FLOH_TEST_REQUIRE_SERVICES=1.
pub fn not_run(services: &[Service]) -> bool {
    let missing: Vec<String> = services.iter().filter(|s| !s.available()).map(|s| s.remedy()).collect();
    if missing.is_empty() {
        return false;
    }
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    if std::env::var(REQUIRE).is_ok_and(|v| v == "1") {
        panic!("{test} needs {} ({REQUIRE}=1 makes this a failure)", missing.join("; "));
    }
    // Written to the terminal itself: the harness captures print! and eprint! of passing tests.
    let _ = writeln!(std::io::stderr(), "NOT RUN {test}: needs {}", missing.join("; "));
    true
}

/// `needs!(Postgres, Redis);` at the top of a test: returns from it, reported as not run, when
/// one of them is missing (see the module documentation).
macro_rules! needs {
    ($($service:ident),+ $(,)?) => {
        if $crate::services::not_run(&[$($crate::services::Service::$service),+]) {
            return;
        }
    };
}
pub(crate) use needs;

/// For fixtures: fails clearly when a test reaches for `service` without having declared it.
pub fn expect(service: Service) {
    assert!(
        service.available(),
        "needs {}; the test should begin with needs!({service:?})",
        service.remedy()
    );
}
