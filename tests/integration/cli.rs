//! The binary's command line and its refusal to start on bad configuration.

use crate::helpers::{env_pairs, run_floh, run_floh_in};

#[test]
fn version_and_help() {
    let (code, stdout, _) = run_floh(&[], &["--version"]);
    assert_eq!(code, 0);
    assert_eq!(stdout.trim(), format!("floh {}", env!("CARGO_PKG_VERSION")));
    for command in
        [&["--help"][..], &["serve", "--help"], &["check-config", "--help"], &["migrate", "--help"]]
    {
        let (code, stdout, stderr) = run_floh(&[], command);
        assert_eq!(code, 0, "{command:?}: {stderr}");
        assert!(stdout.contains("Usage: floh"), "{command:?}: {stdout}");
    }
}

#[test]
fn port_abc_refuses_to_start() {
    let (code, stdout, stderr) = run_floh(&env_pairs(&[("PORT", "abc")]), &["serve"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("PORT=abc: expected an integer 1-65535"), "{stderr}");
    assert!(!stdout.contains("listening") && !stderr.contains("listening"), "{stderr}");
}

#[test]
fn several_bad_values_are_reported_in_one_run() {
    let env = env_pairs(&[
        ("PORT", "abc"),
        ("DB_POOL_MAX", "0"),
        ("LOG_RETENTION_DAYS", "0"),
        ("AUDIT_CHECKPOINT_SCHEDULE", "daily-ish"),
    ]);
    let (code, _, stderr) = run_floh(&env, &[]);
    assert_ne!(code, 0);
    for name in ["PORT=abc", "DB_POOL_MAX=0", "LOG_RETENTION_DAYS=0", "AUDIT_CHECKPOINT_SCHEDULE=daily-ish"] {
        assert!(stderr.lines().any(|line| line.trim().starts_with(name)), "{name} missing from: {stderr}");
    }
}

#[test]
fn production_with_default_secrets_refuses() {
    let (code, _, stderr) = run_floh(&env_pairs(&[("FLOH_ENV", "production")]), &["serve"]);
    assert_ne!(code, 0);
    for name in ["ADMIN_TOKEN", "AUDIT_SIGNING_KEY", "DATABASE_URL", "REDIS_URL"] {
        assert!(
            stderr.lines().any(|line| line.trim().starts_with(name) && line.contains("FLOH_ENV=production")),
            "{name} not named: {stderr}"
        );
    }
    assert!(!stderr.contains(floh::config::vars::DEV_ADMIN_TOKEN), "secret printed: {stderr}");
}

#[test]
fn check_config_prints_effective_values_with_secrets_redacted() {
    let env = env_pairs(&[
        ("DATABASE_URL", "postgres://floh:db-pass-1234@db.internal:5432/floh"),
        ("REDIS_URL", "redis://:redis-pass-5678@redis.internal:6379"),
        ("ADMIN_TOKEN", "admin-token-abcdefghijklmnop"),
        ("SMTP_URL", "smtp://mailer:smtp-pass-9999@127.0.0.1:2525"),
        ("MAIL_FROM", "floh@example.com"),
        ("DB_POOL_MAX", "7"),
    ]);
    let (code, stdout, stderr) = run_floh(&env, &["check-config"]);
    assert_eq!(code, 0, "{stderr}");
    for expected in [
        "DATABASE_URL=postgres://floh:***@db.internal:5432/floh",
        "REDIS_URL=redis://:***@redis.internal:6379",
        "SMTP_URL=smtp://mailer:***@127.0.0.1:2525",
        "ADMIN_TOKEN=<redacted>",
        "AUDIT_SIGNING_KEY=<redacted>",
        "DB_POOL_MAX=7",
        "PORT=3000",
    ] {
        assert!(stdout.contains(expected), "{expected} missing from: {stdout}");
    }
    for secret in ["db-pass-1234", "redis-pass-5678", "admin-token-abcdefghijklmnop", "smtp-pass-9999"] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "{secret} printed");
    }
}

#[test]
fn check_config_reports_errors_and_exits_1() {
    let (code, _, stderr) = run_floh(&env_pairs(&[("DB_POOL_MIN", "20")]), &["check-config"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("DB_POOL_MIN=20: must not exceed DB_POOL_MAX (10)"), "{stderr}");
}

#[test]
fn floh_toml_sits_between_defaults_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("floh.toml"), "port = 4000\ndb_pool_max = 6\nlog_retention_days = 90\n")
        .unwrap();
    let (code, stdout, stderr) = run_floh_in(&env_pairs(&[("PORT", "4001")]), &["check-config"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("PORT=4001"), "the environment wins: {stdout}");
    assert!(stdout.contains("DB_POOL_MAX=6") && stdout.contains("LOG_RETENTION_DAYS=90"), "{stdout}");
    assert!(stdout.contains("DB_POOL_MIN=2"), "defaults fill the rest: {stdout}");

    let other = dir.path().join("other.toml");
    std::fs::write(&other, "prot = 4000\nport = \"abc\"\n").unwrap();
    let env = env_pairs(&[("FLOH_CONFIG", other.to_str().unwrap())]);
    let (code, _, stderr) = run_floh_in(&env, &["check-config"], dir.path());
    assert_eq!(code, 1);
    assert!(stderr.contains("unknown setting `prot`"), "{stderr}");

    let env = env_pairs(&[("FLOH_CONFIG", "missing.toml")]);
    let (code, _, stderr) = run_floh_in(&env, &["check-config"], dir.path());
    assert_eq!(code, 1);
    assert!(stderr.contains("FLOH_CONFIG=missing.toml: file not found"), "{stderr}");
}

#[test]
fn toml_values_are_validated_like_environment_values() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("floh.toml"), "port = \"abc\"\ndb_pool_max = 0\n").unwrap();
    let (code, _, stderr) = run_floh_in(&[], &["check-config"], dir.path());
    assert_eq!(code, 1);
    assert!(stderr.contains("PORT=abc: expected an integer 1-65535"), "{stderr}");
    assert!(stderr.contains("DB_POOL_MAX=0"), "{stderr}");
}

#[test]
fn every_variable_is_documented_with_its_default() {
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md")).unwrap();
    for var in floh::config::vars::ALL {
        let row = docs
            .lines()
            .find(|line| line.starts_with(&format!("| `{}` |", var.name)))
            .unwrap_or_else(|| panic!("{} has no row in docs/configuration.md", var.name));
        let shown_default = match var.secrecy {
            floh::config::vars::Secrecy::Secret if var.default.is_some() => "development value".to_owned(),
            _ => var.default.map_or("unset".to_owned(), |d| format!("`{d}`")),
        };
        assert!(
            row.contains(&shown_default),
            "{}: row does not show default {shown_default}: {row}",
            var.name
        );
    }
}
