//! A SCIM 2.0 client (RFC 7644) over the host's outgoing HTTP: paged listing of Users and
//! Groups, and group membership changes.

use floh_plugin_sdk::http::{HttpError, Request};
use serde::Deserialize;
use serde_json::json;

const MEDIA_TYPE: &str = "application/scim+json";

pub struct Client {
    base: String,
    token: Option<String>,
    page_size: usize,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub user_name: String,
    pub external_id: Option<String>,
    #[serde(default)]
    pub emails: Vec<Email>,
}

#[derive(Debug, Deserialize)]
pub struct Email {
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    pub display_name: String,
    #[serde(default)]
    pub members: Vec<Member>,
}

#[derive(Debug, Deserialize)]
pub struct Member {
    pub value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListResponse<T> {
    total_results: usize,
    #[serde(rename = "Resources", default = "Vec::new")]
    resources: Vec<T>,
}

impl Client {
    pub fn new(base: &str, token: Option<String>, page_size: usize) -> Self {
        Self { base: base.trim_end_matches('/').to_owned(), token, page_size }
    }

    fn request(&self, method: &'static str, path: &str) -> Request {
        let request = Request::new(method, &format!("{}{path}", self.base)).header("accept", MEDIA_TYPE);
        match &self.token {
            Some(token) => request.bearer(token),
            None => request,
        }
    }

    pub fn users(&self) -> Result<Vec<User>, HttpError> {
        self.list("Users")
    }

    pub fn groups(&self) -> Result<Vec<Group>, HttpError> {
        self.list("Groups")
    }

    /// Every resource of `kind`, page by page (`startIndex` from 1, `count` per page).
    fn list<T: serde::de::DeserializeOwned>(&self, kind: &str) -> Result<Vec<T>, HttpError> {
        let mut all = Vec::new();
        loop {
            let path = format!("/{kind}?startIndex={}&count={}", all.len() + 1, self.page_size);
            let page: ListResponse<T> = self.request("GET", &path).send()?.success()?.json()?;
            let got = page.resources.len();
            all.extend(page.resources);
            if got == 0 || all.len() >= page.total_results {
                return Ok(all);
            }
        }
    }

    /// Adds (`add`) or removes the user `member` to or from `group`.
    pub fn change_membership(&self, group: &str, member: &str, add: bool) -> Result<(), HttpError> {
        let operation = if add {
            json!({ "op": "add", "path": "members", "value": [{ "value": member }] })
        } else {
            json!({ "op": "remove", "path": format!("members[value eq \"{member}\"]") })
        };
        let body = json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [operation] });
        self.request("PATCH", &format!("/Groups/{group}"))
            .header("content-type", MEDIA_TYPE)
            .json(&body)?
            .send()?
            .success()?;
        Ok(())
    }
}
