//! A real SMTP server for the mail tests: `tests/node/smtp-sink.mjs` (the `smtp-server` npm
//! package) on a free port of 127.0.0.1, reporting each message it receives.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::Value;

pub struct SmtpSink {
    pub port: u16,
    child: Child,
    _stdin: ChildStdin,
    received: Receiver<Value>,
}

impl SmtpSink {
    pub fn start() -> Self {
        let mut child = Command::new("node")
            .arg("smtp-sink.mjs")
            .current_dir(crate::node::installed())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node on PATH");
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first: Value = serde_json::from_str(&lines.next().expect("the sink starts").unwrap()).unwrap();
        let port = first["port"].as_u64().expect("the sink reports its port") as u16;
        let (sender, received) = channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if sender.send(serde_json::from_str(&line).unwrap()).is_err() {
                    break;
                }
            }
        });
        Self { port, child, _stdin: stdin, received }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The next message received, waiting up to 10 s.
    pub fn next(&self) -> Value {
        self.received.recv_timeout(Duration::from_secs(10)).expect("a message arrives")
    }

    /// Whether a message arrives within `wait`.
    pub fn nothing_within(&self, wait: Duration) -> bool {
        self.received.recv_timeout(wait).is_err()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
