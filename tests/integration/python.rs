//! Real servers from PyPI (pinned in tests/python/requirements.txt, installed into
//! tests/python/.venv), each on a free port of 127.0.0.1: `scim2-server`, a SCIM 2.0 system
//! for the reconciliation tests, seeded over its own API; and moto's S3 server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const TOKEN: &str = "scim-test-token";

fn venv() -> &'static Path {
    crate::services::expect(crate::services::Service::Python);
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python");
        let venv = dir.join(".venv");
        if !["scim2-server", "moto_server"].iter().all(|tool| venv.join("bin").join(tool).is_file()) {
            let run = |program: &Path, args: &[&str]| {
                let status =
                    Command::new(program).args(args).current_dir(&dir).status().expect("python3 on PATH");
                assert!(status.success(), "{} {args:?} failed", program.display());
            };
            run(Path::new("python3"), &["-m", "venv", ".venv"]);
            run(&venv.join("bin/pip"), &["install", "--quiet", "-r", "requirements.txt"]);
        }
        venv
    })
}

/// A server process of the venv, stopped when dropped.
struct Process(Child);

impl Process {
    fn spawn(tool: &str, args: &[&str]) -> Self {
        let child = Command::new(venv().join("bin").join(tool))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{tool} starts: {e}"));
        Self(child)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `url` until it answers at all.
async fn wait_answering(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(url).await.is_err() {
        assert!(Instant::now() < deadline, "{url} did not answer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub struct ScimServer {
    pub port: u16,
    _process: Process,
    client: reqwest::Client,
}

impl ScimServer {
    pub async fn start() -> Self {
        let port = crate::helpers::free_port();
        let process = Process::spawn(
            "scim2-server",
            &["--hostname", "127.0.0.1", "--port", &port.to_string(), "--bearer-token", TOKEN],
        );
        let server = Self { port, _process: process, client: reqwest::Client::new() };
        wait_answering(&server.base()).await;
        server
    }

    /// The base URL a connector names.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}/v2", self.port)
    }

    async fn get(&self, path: &str) -> Option<Value> {
        let response =
            self.client.get(format!("{}{path}", self.base())).bearer_auth(TOKEN).send().await.ok()?;
        response.status().is_success().then_some(())?;
        response.json().await.ok()
    }

    async fn post(&self, path: &str, body: Value) -> String {
        let response = self
            .client
            .post(format!("{}{path}", self.base()))
            .bearer_auth(TOKEN)
            .header("content-type", "application/scim+json")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201, "{path}");
        response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
    }

    pub async fn user(&self, user_name: &str) -> String {
        self.post(
            "/Users",
            json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name }),
        )
        .await
    }

    pub async fn group(&self, name: &str, members: &[&str]) -> String {
        let members: Vec<Value> = members.iter().map(|m| json!({ "value": m })).collect();
        let body = json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": members });
        self.post("/Groups", body).await
    }

    /// The member ids of `group`, sorted.
    pub async fn members(&self, group: &str) -> Vec<String> {
        let group = self.get(&format!("/Groups/{group}")).await.expect("the group exists");
        let mut members: Vec<String> = group["members"]
            .as_array()
            .map(|members| members.iter().map(|m| m["value"].as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        members.sort();
        members
    }
}

/// moto's S3 API, with a bucket made for the test. moto accepts any credentials.
pub struct S3Server {
    pub port: u16,
    _process: Process,
}

impl S3Server {
    pub async fn start(bucket: &str) -> Self {
        let port = crate::helpers::free_port();
        let process = Process::spawn("moto_server", &["-H", "127.0.0.1", "-p", &port.to_string()]);
        let server = Self { port, _process: process };
        wait_answering(&server.endpoint()).await;
        let created =
            reqwest::Client::new().put(format!("{}/{bucket}", server.endpoint())).send().await.unwrap();
        assert!(created.status().is_success(), "bucket {bucket}: {}", created.status());
        server
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Overwrites `bucket/key` the way an intruder holding write credentials would: a plain
    /// signed PUT.
    pub async fn put(&self, bucket: &str, key: &str, body: String) {
        use sha2::Digest;
        let host = format!("127.0.0.1:{}", self.port);
        let path = format!("/{bucket}/{key}");
        let payload: String =
            sha2::Sha256::digest(body.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        let request = floh::audit::s3::Signable {
            method: "PUT",
            host: &host,
            path: &path,
            query: &[],
            headers: &[],
            payload_sha256: &payload,
        };
        let (authorization, date) = floh::audit::s3::authorization(
            &request,
            "eu-central-1",
            "intruder",
            "secret",
            chrono::Utc::now(),
        );
        let response = reqwest::Client::new()
            .put(format!("{}{path}", self.endpoint()))
            .header("authorization", authorization)
            .header("x-amz-date", date)
            .header("x-amz-content-sha256", payload)
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }
}
