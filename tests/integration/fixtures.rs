//! The plugins and hostile fixtures, built once per test run as real components.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ sits in the workspace").to_owned()
}

/// The compiled-plugin cache shared by the tests, so each component compiles once.
pub fn cache_dir() -> PathBuf {
    workspace().join("target/test-plugin-cache")
}

/// The folder holding every fixture as `<name>.wasm`: `hello`, `hello-v2`,
/// `stuck-run-recovery`, `hostile`, `describe-panics`, `wrong-world`, `future-wit`.
pub fn dir() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = workspace().join("target/test-plugins");
        std::fs::create_dir_all(&out).unwrap();
        let built = workspace().join("target/wasm32-wasip2/release");
        let builds: [(&str, &str, &[&str], &str); 7] = [
            ("hello", "hello", &[], "hello"),
            ("stuck-run-recovery", "stuck_run_recovery", &[], "stuck-run-recovery"),
            ("floh-fixture-hostile", "floh_fixture_hostile", &[], "hostile"),
            ("floh-fixture-wrong-world", "floh_fixture_wrong_world", &[], "wrong-world"),
            ("floh-fixture-future-wit", "floh_fixture_future_wit", &[], "future-wit"),
            ("hello", "hello", &["--features", "v2"], "hello-v2"),
            (
                "floh-fixture-hostile",
                "floh_fixture_hostile",
                &["--features", "describe-panics"],
                "describe-panics",
            ),
        ];
        for (package, artifact, features, name) in builds {
            let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .current_dir(workspace())
                .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2", "-p", package])
                .args(features)
                .status()
                .expect("cargo runs");
            assert!(status.success(), "building {package} {features:?} failed");
            std::fs::copy(built.join(format!("{artifact}.wasm")), out.join(format!("{name}.wasm"))).unwrap();
        }
        out
    })
}

pub fn path(name: &str) -> PathBuf {
    dir().join(format!("{name}.wasm"))
}

pub fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(path(name)).unwrap()
}

/// Puts `bytes` at `dir/file` the way operators are told to: write a hidden temporary file
/// in the same folder, then rename it into place.
pub fn install(dir: &Path, file: &str, bytes: &[u8]) {
    let temporary = dir.join(format!(".{file}.tmp"));
    std::fs::write(&temporary, bytes).unwrap();
    std::fs::rename(&temporary, dir.join(file)).unwrap();
}
