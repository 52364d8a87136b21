//! Signed audit checkpoints from the real plugin, and `floh audit verify` catching every kind
//! of tampering with the log or the checkpoints.

use std::path::{Path, PathBuf};

use floh::audit::checkpoint::{Document, FileStore, Verify};
use floh::audit::store::Store;
use floh::audit::verify::{Summary, VerifyError};
use floh::audit::{AuditEvent, Signer};
use serde_json::{Value, json};

use crate::database::{Backend, on_both_databases, params};
use crate::fixtures::example_toml;
use crate::helpers::{env_pairs, run_floh};
use crate::job_host::{Host, now};
use crate::services::needs;

/// A host with the audit-checkpoint plugin, a file store of its own, and a way to add
/// audit events the way every job does.
struct Audited {
    host: Host,
    /// The folder of the file store (unused by the others).
    store: tempfile::TempDir,
    /// The store the host publishes to, as verification reads it.
    published: Store,
}

impl Audited {
    /// With the file store in a folder of its own.
    async fn start(backend: Backend) -> Self {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().display().to_string();
        let published = Store::File(FileStore::new(folder.path().to_owned()));
        Self::start_with(backend, &[("AUDIT_CHECKPOINT_PATH", &path)], published, folder).await
    }

    async fn start_with(
        backend: Backend,
        env: &[(&str, &str)],
        published: Store,
        store: tempfile::TempDir,
    ) -> Self {
        let files = [("audit-checkpoint", "audit-checkpoint.wasm")];
        let host = Host::start_on(backend, &files, &example_toml(), env).await;
        Self { host, store, published }
    }

    /// Appends `n` events in one transaction.
    async fn append(&self, n: usize) {
        let mut tx = self.host.db.pool.begin().await.unwrap();
        for i in 0..n {
            let event = AuditEvent {
                actor: "system:test".into(),
                action: "thing.changed".into(),
                target: format!("thing:{i}"),
                reason: "because".into(),
                details: json!({ "i": i }).to_string(),
            };
            floh::audit::append(&mut tx, &event, now()).await.unwrap();
        }
        tx.commit().await.unwrap();
    }

    async fn checkpoint(&self) -> Value {
        self.host.output("audit-checkpoint", json!({})).await
    }

    fn signer(&self) -> Signer {
        Signer::new(&hex32(floh::config::vars::DEV_AUDIT_SIGNING_KEY))
    }

    fn file(&self, last_seq: i64) -> PathBuf {
        self.store.path().join(floh::audit::checkpoint::name(last_seq))
    }

    async fn verify(&self) -> Result<Summary, VerifyError> {
        floh::audit::verify::verify(&self.host.db.pool, &self.published, &self.signer()).await
    }

    /// The first problem verification reports.
    async fn problem(&self) -> String {
        match self.verify().await {
            Err(VerifyError::Tampered(problem)) => problem,
            other => panic!("expected tampering to be found, got {other:?}"),
        }
    }

    async fn sql(&self, sql: &str) {
        self.host.db.exec(sql, vec![]).await;
    }

    /// Seven events with checkpoints after the third and the fifth.
    async fn with_two_checkpoints(backend: Backend) -> Self {
        let audited = Self::start(backend).await;
        audited.append(3).await;
        audited.checkpoint().await;
        audited.append(2).await;
        audited.checkpoint().await;
        audited.append(2).await;
        audited
    }
}

fn hex32(hex: &str) -> [u8; 32] {
    let bytes: Vec<u8> =
        (0..64).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    bytes.try_into().unwrap()
}

fn read_document(path: &Path) -> Document {
    Document::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

on_both_databases!(
    checkpoints_cover_the_entries_since_the_last_and_link_up,
    a_document_already_published_under_the_name_is_adopted,
    floh_audit_verify_passes_an_intact_log_and_fails_a_tampered_one,
    deleted_rows_are_found_inside_and_at_the_end_of_a_checkpoint,
    reordered_rows_are_found,
    forged_planted_and_missing_checkpoints_are_found,
);

async fn checkpoints_cover_the_entries_since_the_last_and_link_up(backend: Backend) {
    let audited = Audited::start(backend).await;
    assert_eq!(
        audited.checkpoint().await,
        json!({ "checkpoint": null, "afterSeq": 0 }),
        "no entries, no checkpoint"
    );

    audited.append(3).await;
    let first = audited.checkpoint().await["checkpoint"].clone();
    assert_eq!((&first["firstSeq"], &first["lastSeq"], &first["count"]), (&json!(1), &json!(3), &json!(3)));
    assert_eq!(first["location"], audited.file(3).display().to_string());
    let document = read_document(&audited.file(3));
    assert_eq!(first["recordHash"], document.record_hash);
    let record = document.verify(&audited.signer()).unwrap();
    assert_eq!(record.prev_checkpoint_hash, floh::audit::GENESIS_HASH);
    assert_eq!(record.created_at, "2027-01-15T08:00:00.000Z", "time comes from the host's clock");
    let key = audited.store.path().join(format!("public-key-{}.json", audited.signer().key_id()));
    let key: Value = serde_json::from_str(&std::fs::read_to_string(key).unwrap()).unwrap();
    assert_eq!(key["publicKey"], audited.signer().public_key_hex());

    assert_eq!(audited.checkpoint().await["checkpoint"], Value::Null, "nothing new since");

    audited.append(2).await;
    let second = audited.checkpoint().await["checkpoint"].clone();
    assert_eq!((&second["firstSeq"], &second["lastSeq"]), (&json!(4), &json!(5)));
    let linked = read_document(&audited.file(5)).verify(&audited.signer()).unwrap();
    assert_eq!(linked.prev_checkpoint_hash, document.record_hash);

    let rows: Vec<(i64, i64, String, String)> = audited
        .host
        .db
        .rows(
            "SELECT first_seq, last_seq, store, record_hash FROM audit_checkpoints ORDER BY last_seq",
            vec![],
        )
        .await;
    assert_eq!(
        rows,
        [
            (1, 3, "file".to_owned(), document.record_hash.clone()),
            (4, 5, "file".to_owned(), second["recordHash"].as_str().unwrap().to_owned())
        ]
    );
}

async fn a_document_already_published_under_the_name_is_adopted(backend: Backend) {
    let audited = Audited::start(backend).await;
    audited.append(2).await;
    audited.checkpoint().await;
    let published = std::fs::read_to_string(audited.file(2)).unwrap();
    // The row is lost after publishing (say the commit failed); the retry settles on the file.
    audited.sql("DELETE FROM audit_checkpoints").await;
    let again = audited.checkpoint().await;
    assert_eq!(std::fs::read_to_string(audited.file(2)).unwrap(), published, "never overwritten");
    assert_eq!(again["checkpoint"]["recordHash"], read_document(&audited.file(2)).record_hash);
    assert!(audited.verify().await.is_ok());
}

async fn floh_audit_verify_passes_an_intact_log_and_fails_a_tampered_one(backend: Backend) {
    let audited = Audited::with_two_checkpoints(backend).await;
    let env = env_pairs(&[
        ("DATABASE_URL", &audited.host.db.url()),
        ("AUDIT_CHECKPOINT_PATH", &audited.store.path().display().to_string()),
    ]);
    let (code, stdout, stderr) = run_floh(&env, &["audit", "verify"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let key = audited.signer().key_id();
    assert_eq!(
        stdout.trim(),
        format!(
            "audit log intact: 7 entries (seq 1..7); 2 checkpoints verified, the last covering seq 4..5 signed by key {key}; 2 entries since"
        )
    );

    audited.sql("UPDATE audit_log SET reason = 'nothing happened' WHERE seq = 2").await;
    let (code, stdout, _) = run_floh(&env, &["audit", "verify", "--store", "file"]);
    assert_eq!(code, 1);
    assert_eq!(
        stdout.trim(),
        "audit verification FAILED: audit_log seq 2: the row does not match its hash (edited)"
    );
}

async fn deleted_rows_are_found_inside_and_at_the_end_of_a_checkpoint(backend: Backend) {
    let audited = Audited::with_two_checkpoints(backend).await;
    audited.sql("DELETE FROM audit_log WHERE seq = 3").await;
    assert_eq!(audited.problem().await, "audit_log seq 4 follows seq 2: seq 3..3 are missing (deleted)");

    let audited = Audited::with_two_checkpoints(backend).await;
    audited.sql("DELETE FROM audit_log WHERE seq >= 5").await;
    assert_eq!(
        audited.problem().await,
        "checkpoint checkpoint-000000000005.json covers seq 4..5, but audit_log ends at seq 4 (rows deleted)"
    );
}

async fn reordered_rows_are_found(backend: Backend) {
    let audited = Audited::with_two_checkpoints(backend).await;
    for (from, to) in [(2, -2), (3, 2), (-2, 3)] {
        audited.host.db.exec("UPDATE audit_log SET seq = $2 WHERE seq = $1", params![from, to]).await;
    }
    assert_eq!(
        audited.problem().await,
        "audit_log seq 2: prev_hash is not the hash of seq 1 (rows reordered or replaced)"
    );
}

async fn forged_planted_and_missing_checkpoints_are_found(backend: Backend) {
    // Forged: the record changed, its hash recomputed, the signature left as it was.
    let audited = Audited::with_two_checkpoints(backend).await;
    let mut forged = read_document(&audited.file(3));
    forged.record = forged.record.replace("\"count\":3", "\"count\":2");
    forged.record_hash = floh::audit::sha256_hex(forged.record.as_bytes());
    std::fs::write(audited.file(3), serde_json::to_string(&forged).unwrap()).unwrap();
    assert_eq!(
        audited.problem().await,
        "checkpoint checkpoint-000000000003.json: the signature does not verify (forged or altered)"
    );

    // Signed, but by another key.
    let audited = Audited::with_two_checkpoints(backend).await;
    let mut other = read_document(&audited.file(3));
    let stranger = Signer::new(&[9; 32]);
    other.key_id = stranger.key_id();
    other.signature = stranger.sign(other.record.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(audited.file(3), serde_json::to_string(&other).unwrap()).unwrap();
    assert!(audited.problem().await.starts_with(&format!(
        "checkpoint checkpoint-000000000003.json: signed by key {}, not by this host's key",
        stranger.key_id()
    )));

    // Missing from the store: the next one no longer links.
    let audited = Audited::with_two_checkpoints(backend).await;
    std::fs::remove_file(audited.file(3)).unwrap();
    assert_eq!(
        audited.problem().await,
        "checkpoint checkpoint-000000000005.json: does not link to the checkpoint before it (one is missing or replaced)"
    );

    // Missing from the store, and the last: only the table remembers it.
    let audited = Audited::with_two_checkpoints(backend).await;
    std::fs::remove_file(audited.file(5)).unwrap();
    assert!(audited.problem().await.starts_with(
        "checkpoint checkpoint-000000000005.json is in audit_checkpoints but missing from the store"
    ));

    // Planted: a validly signed document the table never recorded.
    let audited = Audited::with_two_checkpoints(backend).await;
    audited.sql("DELETE FROM audit_checkpoints WHERE last_seq = 5").await;
    assert_eq!(
        audited.problem().await,
        "checkpoint checkpoint-000000000005.json: has no audit_checkpoints row (planted?)"
    );
}

#[tokio::test]
async fn the_public_key_is_published_over_http() {
    needs!(Postgres, Redis);
    let db = crate::helpers::TestDb::create().await;
    let host = crate::helpers::InProcess::start(
        crate::helpers::test_env(&db.url(), &crate::services::redis_url()),
        true,
    )
    .await;
    let (base, _stop) = host.serve();
    let key: Value =
        reqwest::get(format!("{base}/api/audit/public-key")).await.unwrap().json().await.unwrap();
    let signer = Signer::new(&hex32(floh::config::vars::DEV_AUDIT_SIGNING_KEY));
    assert_eq!(
        key,
        json!({ "keyId": signer.key_id(), "algorithm": "ed25519", "publicKey": signer.public_key_hex() })
    );
}

#[tokio::test]
async fn checkpoints_go_to_an_s3_bucket_and_are_verified_from_it() {
    needs!(Postgres, Python);
    let s3 = crate::python::S3Server::start("audit").await;
    let settings = floh::config::S3Settings {
        bucket: "audit".into(),
        prefix: "checkpoints/".into(),
        region: "eu-central-1".into(),
        endpoint: s3.endpoint().parse().unwrap(),
        access_key_id: "test".into(),
        secret_access_key: floh::config::Secret::new("test-secret".into()),
    };
    let env = [
        ("AUDIT_CHECKPOINT_STORE", "s3"),
        ("AUDIT_CHECKPOINT_S3_BUCKET", "audit"),
        ("AUDIT_CHECKPOINT_S3_PREFIX", "checkpoints/"),
        ("AUDIT_CHECKPOINT_S3_REGION", "eu-central-1"),
        ("AUDIT_CHECKPOINT_S3_ENDPOINT", &s3.endpoint()),
        ("AUDIT_CHECKPOINT_S3_ACCESS_KEY_ID", "test"),
        ("AUDIT_CHECKPOINT_S3_SECRET_ACCESS_KEY", "test-secret"),
    ];
    // moto refuses anonymous reads, so objects are read with floh's own signed client.
    let client = floh::audit::s3::S3Client::new(settings);
    let store = Store::S3(client.clone());
    let audited = Audited::start_with(Backend::Postgres, &env, store, tempfile::tempdir().unwrap()).await;
    audited.append(3).await;
    let first = audited.checkpoint().await["checkpoint"].clone();
    assert_eq!(first["location"], "s3://audit/checkpoints/checkpoint-000000000003.json");
    let key = "checkpoints/checkpoint-000000000003.json";
    let stored = Document::parse(&client.get(key).await.unwrap().expect("the object exists")).unwrap();
    assert_eq!(stored.verify(&audited.signer()).unwrap().last_seq, 3);
    let public =
        client.get(&format!("checkpoints/public-key-{}.json", audited.signer().key_id())).await.unwrap();
    assert!(public.unwrap().contains(&audited.signer().public_key_hex()));

    audited.append(2).await;
    audited.checkpoint().await;
    assert_eq!(audited.verify().await.unwrap().checkpoints, 2);

    let mut forged = stored.clone();
    forged.record = forged.record.replace("\"count\":3", "\"count\":2");
    forged.record_hash = floh::audit::sha256_hex(forged.record.as_bytes());
    s3.put("audit", key, serde_json::to_string(&forged).unwrap()).await;
    assert_eq!(
        audited.problem().await,
        "checkpoint checkpoint-000000000003.json: the signature does not verify (forged or altered)"
    );
}

#[tokio::test]
async fn checkpoints_are_forwarded_as_rfc5424_syslog_over_tcp() {
    needs!(Postgres);
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("syslog+tcp://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let received = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut frame = String::new();
        socket.read_to_string(&mut frame).await.unwrap();
        frame
    });
    let store = Store::Siem(floh::audit::siem::SiemClient::new(url.parse().unwrap()));
    let env = [("AUDIT_CHECKPOINT_STORE", "siem"), ("AUDIT_CHECKPOINT_SIEM_URL", url.as_str())];
    let audited = Audited::start_with(Backend::Postgres, &env, store, tempfile::tempdir().unwrap()).await;
    audited.append(2).await;
    assert_eq!(audited.checkpoint().await["checkpoint"]["location"], url);

    let frame = received.await.unwrap();
    let (length, message) = frame.split_once(' ').unwrap();
    assert_eq!(length.parse::<usize>().unwrap(), message.len(), "octet counting: {frame}");
    assert!(message.starts_with("<109>1 "), "{message}");
    let fields: Vec<&str> = message.splitn(7, ' ').collect();
    assert_eq!((fields[3], fields[5]), ("floh", "audit-checkpoint"), "{message}");
    let (structured, document) = fields[6].split_once("] ").unwrap();
    assert_eq!(structured, "[checkpoint@32473 name=\"checkpoint-000000000002.json\"");
    let document = Document::parse(document).unwrap();
    assert_eq!(document.verify(&audited.signer()).unwrap().count, 2);

    // A SIEM cannot be read back: verification checks the table's copies.
    assert_eq!(audited.verify().await.unwrap().checkpoints, 1);
    audited.host.db.exec("UPDATE audit_checkpoints SET signature = $1", params!["0".repeat(128)]).await;
    assert!(audited.problem().await.ends_with("the signature does not verify (forged or altered)"));
}

#[tokio::test]
async fn checkpoints_are_posted_as_json_events_to_an_http_collector() {
    needs!(Postgres);
    let (events, mut arrived) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let collector = axum::Router::new().route(
        "/events",
        axum::routing::post(move |axum::Json(event): axum::Json<Value>| {
            let events = events.clone();
            async move {
                events.send(event).unwrap();
                axum::http::StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/events", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, collector).await });
    let store = Store::Siem(floh::audit::siem::SiemClient::new(url.parse().unwrap()));
    let env = [("AUDIT_CHECKPOINT_STORE", "siem"), ("AUDIT_CHECKPOINT_SIEM_URL", url.as_str())];
    let audited = Audited::start_with(Backend::Postgres, &env, store, tempfile::tempdir().unwrap()).await;
    audited.append(1).await;
    audited.checkpoint().await;
    let event = arrived.recv().await.unwrap();
    assert_eq!((&event["source"], &event["type"]), (&json!("floh"), &json!("audit-checkpoint")));
    assert_eq!(event["name"], "checkpoint-000000000001.json");
    let document: Document = serde_json::from_value(event["checkpoint"].clone()).unwrap();
    assert_eq!(document.verify(&audited.signer()).unwrap().last_seq, 1);
}
