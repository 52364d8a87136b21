//! A real SCIM 2.0 server for the reconciliation tests: `scim2-server` from PyPI (pinned in
//! tests/python/requirements.txt, installed into tests/python/.venv), on a free port of
//! 127.0.0.1, seeded over its own API.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const TOKEN: &str = "scim-test-token";

fn venv() -> &'static Path {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python");
        let venv = dir.join(".venv");
        if !venv.join("bin/scim2-server").is_file() {
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

pub struct ScimServer {
    pub port: u16,
    child: Child,
    client: reqwest::Client,
}

impl ScimServer {
    pub async fn start() -> Self {
        let port = crate::helpers::free_port();
        let child = Command::new(venv().join("bin/scim2-server"))
            .args(["--hostname", "127.0.0.1", "--port", &port.to_string(), "--bearer-token", TOKEN])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("scim2-server starts");
        let server = Self { port, child, client: reqwest::Client::new() };
        let deadline = Instant::now() + Duration::from_secs(20);
        while server.get("/Users").await.is_none() {
            assert!(Instant::now() < deadline, "scim2-server did not answer on port {port}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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

impl Drop for ScimServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
