//! Shared fixtures: a fresh database per test, throwaway servers, the host in-process or as
//! the real binary.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use floh::app::App;
use floh::config::Settings;
use sqlx::{Connection, PgConnection};
use tokio::net::TcpListener;

use crate::services::{self, Service};

/// A port nobody listens on (bound, then released).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The maintenance database, for creating and dropping the tests' own.
fn admin_url() -> String {
    services::postgres_url("postgres")
}

/// A database of its own, dropped when the test ends.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    /// A name for a database that does not exist yet.
    pub fn unique_name() -> String {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        format!("floh_test_{}_{}_{nanos}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
    }

    /// Reserves a name; the database itself is created by whoever connects first (the host).
    pub fn reserve() -> Self {
        services::expect(Service::Postgres);
        Self { name: Self::unique_name() }
    }

    pub async fn create() -> Self {
        let db = Self::reserve();
        let mut admin = PgConnection::connect(&admin_url()).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE \"{}\"", db.name)).execute(&mut admin).await.unwrap();
        db
    }

    pub fn url(&self) -> String {
        services::postgres_url(&self.name)
    }

    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url()).await.unwrap()
    }

    pub async fn exists(name: &str) -> bool {
        let mut admin = PgConnection::connect(&admin_url()).await.unwrap();
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pg_database WHERE datname = $1")
            .bind(name)
            .fetch_one(&mut admin)
            .await
            .unwrap()
            == 1
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        // Drop runs inside the test's runtime; use a runtime of our own on another thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&admin_url()).await {
                    let _ = sqlx::query(&sql).execute(&mut admin).await;
                }
            });
        })
        .join();
    }
}

/// Accepts TCP connections and never answers: a dependency that hangs.
pub struct HangingServer {
    pub addr: SocketAddr,
    _task: tokio::task::JoinHandle<()>,
}

impl HangingServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        Self { addr, _task: task }
    }
}

/// A redis-server of the test's own, on its own port.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> Self {
        services::expect(Service::RedisServer);
        let mut server = Self { port: free_port(), child: None };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts (again) on the same port and waits until it accepts connections.
    pub fn restart(&mut self) {
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        self.child = Some(child);
        wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `condition` until it holds; panics after `limit`.
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "condition not met within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Environment for a host on 127.0.0.1 with the given database and Redis.
pub fn test_env(database_url: &str, redis_url: &str) -> Vec<(String, String)> {
    [
        ("BIND_ADDRESS", "127.0.0.1"),
        ("PORT", &free_port().to_string()),
        ("DATABASE_URL", database_url),
        ("REDIS_URL", redis_url),
        ("LOG_LEVEL", "info"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .to_vec()
}

/// Applies `overrides` on top of `env`.
pub fn with(mut env: Vec<(String, String)>, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
    for (key, value) in overrides {
        env.retain(|(k, _)| k != key);
        env.push((key.to_string(), value.to_string()));
    }
    env
}

/// The host running inside the test process on a random port.
pub struct InProcess {
    pub addr: SocketAddr,
    pub app: App,
}

impl InProcess {
    pub async fn start(env: Vec<(String, String)>, migrate: bool) -> Self {
        let settings = Settings::load_from(env).expect("test settings validate");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let app = App::with_listener(settings, listener, migrate).await.expect("host starts");
        Self { addr: app.local_addr(), app }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Serves until the returned sender is dropped or used; returns the base URL too.
    pub fn serve(self) -> (String, tokio::sync::oneshot::Sender<()>) {
        let base = self.url("");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let router = self.app.router();
        tokio::spawn(self.app.serve(router, async move {
            let _ = stopped.await;
        }));
        (base, stop)
    }
}

/// The real `floh` binary, run in an empty working directory with only the given environment.
pub struct FlohProcess {
    pub child: Child,
    pub port: u16,
    _cwd: tempfile::TempDir,
}

pub fn floh_command(env: &[(String, String)], cwd: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_floh"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_BACKTRACE", "0")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd);
    command
}

impl FlohProcess {
    pub fn spawn(env: &[(String, String)], args: &[&str]) -> Self {
        let port =
            env.iter().find(|(k, _)| k == "PORT").map(|(_, v)| v.parse().unwrap()).expect("PORT in env");
        Self::spawn_in(tempfile::tempdir().unwrap(), port, env, args)
    }

    /// Starts the binary in the working folder `cwd`, listening on `port` however it is set.
    pub fn spawn_in(cwd: tempfile::TempDir, port: u16, env: &[(String, String)], args: &[&str]) -> Self {
        let child = floh_command(env, cwd.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("floh binary");
        Self { child, port, _cwd: cwd }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Waits until the host accepts connections.
    pub fn wait_listening(&mut self) {
        let port = self.port;
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("floh exited early with {status}: {}", self.stderr());
            }
            assert!(Instant::now() < deadline, "floh did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "floh did not exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything written to stderr (the process must have exited).
    pub fn stderr(&mut self) -> String {
        use std::io::Read;
        let mut text = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for FlohProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary to completion; returns (exit code, stdout, stderr).
pub fn run_floh(env: &[(String, String)], args: &[&str]) -> (i32, String, String) {
    let cwd = tempfile::tempdir().unwrap();
    run_floh_in(env, args, cwd.path())
}

pub fn run_floh_in(env: &[(String, String)], args: &[&str], cwd: &Path) -> (i32, String, String) {
    let mut command = floh_command(env, cwd);
    command.args(args);
    let output = command.output().expect("floh binary");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub fn env_pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The admin API of a host at `base`, called with the development admin token.
pub struct AdminApi {
    base: String,
    client: reqwest::Client,
}

impl AdminApi {
    pub fn new(base: &str) -> Self {
        Self { base: base.to_owned(), client: reqwest::Client::new() }
    }

    /// `method path` with a JSON `body`; the status and the JSON answer (null if none).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(floh::config::vars::DEV_ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// Adds `job` (`POST /api/admin/jobs`); its id.
    pub async fn add(&self, job: serde_json::Value) -> String {
        let (status, added) = self.call(reqwest::Method::POST, "/api/admin/jobs", Some(job)).await;
        assert_eq!(status, 201, "{added}");
        added["id"].as_str().unwrap().to_owned()
    }

    pub async fn job(&self, id: &str) -> serde_json::Value {
        self.get(&format!("/api/admin/jobs/{id}")).await.1
    }

    /// Polls job `id` until it is `state`.
    pub async fn wait(&self, id: &str, state: &str, limit: Duration) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            let job = self.job(id).await;
            if job["state"] == state {
                return job;
            }
            assert!(Instant::now() < deadline, "job {id} never became {state}: {job}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
