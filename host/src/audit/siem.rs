//! Forwarding checkpoints to a SIEM collector: RFC 5424 syslog over TCP (RFC 6587 octet
//! counting), or a JSON event over HTTP.

use tokio::io::AsyncWriteExt;

/// Facility 13 (log audit), severity 5 (notice).
const PRIORITY: u8 = 13 * 8 + 5;
/// floh's structured-data id; 32473 is the private enterprise number RFC 5612 sets aside for
/// documentation and examples.
const SD_ID: &str = "checkpoint@32473";

#[derive(Debug, Clone)]
pub struct SiemClient {
    url: url::Url,
    http: reqwest::Client,
}

impl SiemClient {
    pub fn new(url: url::Url) -> Self {
        Self { url, http: reqwest::Client::new() }
    }

    /// The collector, without credentials.
    pub fn describe(&self) -> String {
        let mut shown = self.url.clone();
        let _ = shown.set_password(None);
        let _ = shown.set_username("");
        shown.to_string()
    }

    pub async fn send(&self, name: &str, document: &str) -> Result<(), String> {
        if self.url.scheme() == "syslog+tcp" {
            self.send_syslog(name, document).await
        } else {
            self.send_http(name, document).await
        }
    }

    async fn send_syslog(&self, name: &str, document: &str) -> Result<(), String> {
        let host = self.url.host_str().unwrap_or_default();
        let port = self.url.port().ok_or("the syslog URL has no port")?;
        let message = syslog_message(name, document, chrono::Utc::now());
        let mut stream = tokio::net::TcpStream::connect((host, port)).await.map_err(|e| e.to_string())?;
        stream
            .write_all(format!("{} {message}", message.len()).as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        stream.shutdown().await.map_err(|e| e.to_string())
    }

    async fn send_http(&self, name: &str, document: &str) -> Result<(), String> {
        let checkpoint: serde_json::Value = serde_json::from_str(document).map_err(|e| e.to_string())?;
        let event = serde_json::json!({ "source": "floh", "type": "audit-checkpoint", "name": name, "checkpoint": checkpoint });
        let response =
            self.http.post(self.url.clone()).json(&event).send().await.map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("the collector answered {}", response.status()))
        }
    }
}

/// `<109>1 TIMESTAMP HOST floh PID audit-checkpoint [checkpoint@32473 name="…"] DOCUMENT`.
pub fn syslog_message(name: &str, document: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    let host = crate::telemetry::host_name().unwrap_or_else(|| "-".to_owned());
    // Structured-data parameter values escape `"`, `\` and `]`.
    let name = name.replace('\\', "\\\\").replace('"', "\\\"").replace(']', "\\]");
    format!(
        "<{PRIORITY}>1 {} {host} floh {} audit-checkpoint [{SD_ID} name=\"{name}\"] {document}",
        at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        std::process::id()
    )
}
