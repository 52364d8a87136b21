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

/// Packages built to components, each copied to `<package>.wasm` without the `floh-fixture-`
/// prefix: the bundled plugins and the hostile fixtures.
pub const PACKAGES: [&str; 18] = [
    "hello",
    "stuck-run-recovery",
    "role-expiry-check",
    "document-expiry-check",
    "run-orphan-cleanup",
    "trigger-workflow",
    "log-retention",
    "audit-checkpoint",
    "deliver-scheduled-report",
    "escalation-reminder",
    "escalation-reassignment",
    "entitlement-reconciliation",
    "floh-fixture-hostile",
    "floh-fixture-wrong-world",
    "floh-fixture-future-wit",
    "floh-fixture-mailer",
    "floh-fixture-fetcher",
    "floh-fixture-previous-wit",
];

/// The bundled plugins among [`PACKAGES`] (the rest are test fixtures).
pub fn bundled() -> impl Iterator<Item = &'static str> {
    PACKAGES.into_iter().filter(|package| !package.starts_with("floh-fixture-"))
}

/// Variants built with a feature: (package, feature, fixture name).
const VARIANTS: [(&str, &str, &str); 2] =
    [("hello", "v2", "hello-v2"), ("floh-fixture-hostile", "describe-panics", "describe-panics")];

/// The folder holding every fixture as `<name>.wasm`: each of [`PACKAGES`] (e.g. `hello`,
/// `hostile`, `wrong-world`) and of [`VARIANTS`] (`hello-v2`, `describe-panics`).
pub fn dir() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = workspace().join("target/test-plugins");
        std::fs::create_dir_all(&out).unwrap();
        let copy = |package: &str, name: &str| {
            let artifact =
                workspace().join(format!("target/wasm32-wasip2/release/{}.wasm", package.replace('-', "_")));
            std::fs::copy(artifact, out.join(format!("{name}.wasm"))).unwrap();
        };
        build(PACKAGES.iter().flat_map(|package| ["-p", package]));
        for package in PACKAGES {
            copy(package, package.trim_start_matches("floh-fixture-"));
        }
        // One at a time: a feature build overwrites the package's artifact.
        for (package, feature, name) in VARIANTS {
            build(["-p", package, "--features", feature]);
            copy(package, name);
        }
        out
    })
}

fn build<'a>(args: impl IntoIterator<Item = &'a str>) {
    let args: Vec<&str> = args.into_iter().collect();
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(workspace())
        .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"])
        .args(&args)
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "building {args:?} failed (is the wasm32-wasip2 target installed? `rustup target add wasm32-wasip2`)"
    );
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

/// The grants operators start from, as shipped in `floh.example.toml`.
pub fn example_toml() -> String {
    std::fs::read_to_string(workspace().join("floh.example.toml")).unwrap()
}
