//! Runs the Node interop scripts of `tests/node` with the real `bullmq` client.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/node")
}

/// Installs the pinned packages once, unless `.ci/run` already installed every one of them.
pub fn installed() -> &'static Path {
    crate::services::expect(crate::services::Service::Node);
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY.get_or_init(|| {
        let dir = dir();
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("package.json")).unwrap()).unwrap();
        let dependencies = manifest["dependencies"].as_object().expect("package.json lists dependencies");
        if !dependencies.keys().all(|name| dir.join("node_modules").join(name).is_dir()) {
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--silent"])
                .current_dir(&dir)
                .status()
                .expect("npm on PATH");
            assert!(status.success(), "npm ci failed in {}", dir.display());
        }
        dir
    })
}

/// Runs `node <script> <args…>` with QUEUE_PREFIX (and REDIS_URL) set; returns the JSON line
/// it prints.
pub fn run(script: &str, args: &[&str], prefix: &str) -> serde_json::Value {
    run_with(script, args, &[("QUEUE_PREFIX", prefix), ("REDIS_URL", &crate::services::redis_url())])
}

/// Runs `node <script> <args…>` with `env` set; returns the JSON line it prints.
pub fn run_with(script: &str, args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let output = Command::new("node")
        .arg(script)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(installed())
        .output()
        .expect("node on PATH");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "node {script} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("node {script} printed no JSON ({e}): {stdout}"))
}
