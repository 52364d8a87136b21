//! The few S3 calls the checkpoint store makes (GET, conditional PUT, ListObjectsV2), with
//! path-style URLs and AWS Signature Version 4, against any S3-compatible endpoint.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::sha256_hex;
use crate::config::S3Settings;

#[derive(Debug, thiserror::Error)]
#[error("S3 {operation} {key}: {reason}")]
pub struct S3Error {
    operation: &'static str,
    key: String,
    reason: String,
}

#[derive(Debug, Clone)]
pub struct S3Client {
    settings: S3Settings,
    http: reqwest::Client,
}

/// Characters left as they are in a SigV4 canonical URI or query (RFC 3986 unreserved).
fn encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(byte as char),
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// What SigV4 signs: the request without its body, whose hash is given.
pub struct Signable<'a> {
    pub method: &'a str,
    pub host: &'a str,
    /// Already URI-encoded.
    pub path: &'a str,
    /// Unencoded pairs.
    pub query: &'a [(&'a str, &'a str)],
    /// Lower-case names; `host`, `x-amz-date` and `x-amz-content-sha256` are added.
    pub headers: &'a [(&'a str, &'a str)],
    pub payload_sha256: &'a str,
}

/// The `Authorization` header value and the `x-amz-date` of a request signed at `at`.
pub fn authorization(
    request: &Signable<'_>,
    region: &str,
    access_key_id: &str,
    secret: &str,
    at: DateTime<Utc>,
) -> (String, String) {
    let amz_date = at.format("%Y%m%dT%H%M%SZ").to_string();
    let day = &amz_date[..8];
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), request.host.into()),
        ("x-amz-content-sha256".into(), request.payload_sha256.into()),
        ("x-amz-date".into(), amz_date.clone()),
    ];
    headers.extend(request.headers.iter().map(|(k, v)| (k.to_string(), v.trim().to_string())));
    headers.sort();
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let mut query: Vec<(String, String)> =
        request.query.iter().map(|(k, v)| (encode(k, false), encode(v, false))).collect();
    query.sort();
    let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let canonical = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed}\n{}",
        request.method,
        request.path,
        query.join("&"),
        request.payload_sha256
    );
    let scope = format!("{day}/{region}/s3/aws4_request");
    let to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", sha256_hex(canonical.as_bytes()));
    let key = ["s3", "aws4_request"]
        .iter()
        .fold(hmac(&hmac(format!("AWS4{secret}").as_bytes(), day), region), |key, part| hmac(&key, part));
    let signature = hex::encode(hmac(&key, &to_sign));
    (
        format!(
            "AWS4-HMAC-SHA256 Credential={access_key_id}/{scope}, SignedHeaders={signed}, Signature={signature}"
        ),
        amz_date,
    )
}

impl S3Client {
    pub fn new(settings: S3Settings) -> Self {
        Self { settings, http: reqwest::Client::new() }
    }

    /// `s3://bucket/prefix`, for messages.
    pub fn describe(&self) -> String {
        format!("s3://{}/{}", self.settings.bucket, self.settings.prefix)
    }

    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.settings.prefix)
    }

    async fn send(
        &self,
        operation: &'static str,
        method: reqwest::Method,
        key: &str,
        query: &[(&str, &str)],
        extra: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<(u16, String), S3Error> {
        let fail = |reason: String| S3Error { operation, key: key.to_owned(), reason };
        let endpoint = &self.settings.endpoint;
        let host = match endpoint.port() {
            Some(port) => format!("{}:{port}", endpoint.host_str().unwrap_or_default()),
            None => endpoint.host_str().unwrap_or_default().to_owned(),
        };
        let base = endpoint.path().trim_end_matches('/');
        let path = encode(&format!("{base}/{}/{key}", self.settings.bucket), true);
        let path = path.trim_end_matches('/').to_owned();
        let payload = format!("{:x}", Sha256::digest(&body));
        let signable = Signable {
            method: method.as_str(),
            host: &host,
            path: &path,
            query,
            headers: extra,
            payload_sha256: &payload,
        };
        let (authorization, amz_date) = authorization(
            &signable,
            &self.settings.region,
            &self.settings.access_key_id,
            self.settings.secret_access_key.expose(),
            Utc::now(),
        );
        let mut url = endpoint.clone();
        url.set_path(&path);
        let mut request = self
            .http
            .request(method, url)
            .query(query)
            .header("authorization", authorization)
            .header("x-amz-date", amz_date)
            .header("x-amz-content-sha256", payload)
            .body(body);
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let response = request.send().await.map_err(|e| fail(e.to_string()))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| fail(e.to_string()))?;
        Ok((status, text))
    }

    /// The object's content, or `None` if it does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<String>, S3Error> {
        match self.send("GET", reqwest::Method::GET, key, &[], &[], Vec::new()).await? {
            (200, text) => Ok(Some(text)),
            (404, _) => Ok(None),
            (status, text) => {
                Err(S3Error { operation: "GET", key: key.into(), reason: format!("{status}: {text}") })
            }
        }
    }

    /// Creates the object unless it exists (`If-None-Match: *`); false if it existed.
    pub async fn put_new(&self, key: &str, body: &str) -> Result<bool, S3Error> {
        let headers = [("content-type", "application/json"), ("if-none-match", "*")];
        match self.send("PUT", reqwest::Method::PUT, key, &[], &headers, body.as_bytes().to_vec()).await? {
            (200, _) => Ok(true),
            (412, _) | (409, _) => Ok(false),
            (status, text) => {
                Err(S3Error { operation: "PUT", key: key.into(), reason: format!("{status}: {text}") })
            }
        }
    }

    /// Every key under the prefix (ListObjectsV2, following continuation tokens).
    pub async fn list(&self) -> Result<Vec<String>, S3Error> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("list-type", "2"), ("prefix", self.settings.prefix.as_str())];
            if let Some(token) = &token {
                query.push(("continuation-token", token.as_str()));
            }
            let (status, xml) = self.send("LIST", reqwest::Method::GET, "", &query, &[], Vec::new()).await?;
            if status != 200 {
                return Err(S3Error {
                    operation: "LIST",
                    key: self.describe(),
                    reason: format!("{status}: {xml}"),
                });
            }
            keys.extend(elements(&xml, "Key"));
            token = elements(&xml, "NextContinuationToken").into_iter().next();
            if token.is_none() {
                return Ok(keys);
            }
        }
    }
}

/// The texts of every `<tag>…</tag>` in `xml`, unescaped.
fn elements(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once(&close).map(|(text, _)| text))
        .map(|text| {
            text.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GET Object example of AWS's "Signature Calculations for the Authorization Header".
    #[test]
    fn signatures_match_the_aws_documentation_example() {
        let at = DateTime::parse_from_rfc3339("2013-05-24T00:00:00Z").unwrap().with_timezone(&Utc);
        let request = Signable {
            method: "GET",
            host: "examplebucket.s3.amazonaws.com",
            path: "/test.txt",
            query: &[],
            headers: &[("range", "bytes=0-9")],
            payload_sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        };
        let (authorization, date) = authorization(
            &request,
            "us-east-1",
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            at,
        );
        assert_eq!(date, "20130524T000000Z");
        assert_eq!(
            authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn list_responses_give_their_keys() {
        let xml = "<ListBucketResult><Contents><Key>a/checkpoint-1.json</Key></Contents>\
                   <Contents><Key>a/x&amp;y.json</Key></Contents><NextContinuationToken>t1</NextContinuationToken></ListBucketResult>";
        assert_eq!(elements(xml, "Key"), ["a/checkpoint-1.json", "a/x&y.json"]);
        assert_eq!(elements(xml, "NextContinuationToken"), ["t1"]);
    }
}
