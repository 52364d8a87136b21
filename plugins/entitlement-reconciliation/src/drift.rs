//! Drift between what governance wants (desired entitlements) and what a connected system
//! reports (group memberships of its accounts).

use std::collections::{BTreeMap, BTreeSet};

/// A drift finding, identified by everything but its wording.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub kind: Kind,
    pub account_id: Option<String>,
    pub user_id: Option<String>,
    pub entitlement_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Desired, not held.
    Missing,
    /// Held, not desired.
    Unexpected,
    /// An account that matches no user.
    Orphan,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Missing => "missing",
            Kind::Unexpected => "unexpected",
            Kind::Orphan => "orphan",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Kind::Missing, Kind::Unexpected, Kind::Orphan].into_iter().find(|kind| kind.as_str() == text)
    }
}

/// The state of one connector.
pub struct State {
    /// Account id → the user it belongs to, if any.
    pub accounts: BTreeMap<String, Option<String>>,
    /// (account id, entitlement id) the system reports.
    pub held: BTreeSet<(String, String)>,
    /// (user id, entitlement id) governance wants.
    pub desired: BTreeSet<(String, String)>,
}

pub fn findings(state: &State) -> BTreeSet<Finding> {
    let account_of: BTreeMap<&str, &str> = state
        .accounts
        .iter()
        .filter_map(|(account, user)| Some((user.as_deref()?, account.as_str())))
        .collect();
    let mut found = BTreeSet::new();
    for (user, entitlement) in &state.desired {
        let account = account_of.get(user.as_str()).copied();
        let held = account.is_some_and(|a| state.held.contains(&(a.to_owned(), entitlement.clone())));
        if !held {
            found.insert(Finding {
                kind: Kind::Missing,
                account_id: account.map(str::to_owned),
                user_id: Some(user.clone()),
                entitlement_id: Some(entitlement.clone()),
            });
        }
    }
    for (account, entitlement) in &state.held {
        // An orphan account's memberships are part of its own finding.
        let Some(Some(user)) = state.accounts.get(account) else { continue };
        if !state.desired.contains(&(user.clone(), entitlement.clone())) {
            found.insert(Finding {
                kind: Kind::Unexpected,
                account_id: Some(account.clone()),
                user_id: Some(user.clone()),
                entitlement_id: Some(entitlement.clone()),
            });
        }
    }
    for (account, user) in &state.accounts {
        if user.is_none() {
            found.insert(Finding {
                kind: Kind::Orphan,
                account_id: Some(account.clone()),
                user_id: None,
                entitlement_id: None,
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(a: &str, b: &str) -> (String, String) {
        (a.to_owned(), b.to_owned())
    }

    #[test]
    fn missing_unexpected_and_orphans_are_told_apart() {
        let state = State {
            accounts: BTreeMap::from([
                ("acc-alice".to_owned(), Some("alice".to_owned())),
                ("acc-bob".to_owned(), Some("bob".to_owned())),
                ("acc-ghost".to_owned(), None),
            ]),
            held: BTreeSet::from([
                pair("acc-alice", "finance"),
                pair("acc-bob", "admins"),
                pair("acc-ghost", "admins"),
            ]),
            desired: BTreeSet::from([
                pair("alice", "finance"),
                pair("bob", "finance"),
                pair("carol", "finance"),
            ]),
        };
        let found = findings(&state);
        let kinds: Vec<(Kind, Option<&str>, Option<&str>)> =
            found.iter().map(|f| (f.kind, f.user_id.as_deref(), f.entitlement_id.as_deref())).collect();
        assert_eq!(
            kinds,
            [
                (Kind::Missing, Some("carol"), Some("finance")),
                (Kind::Missing, Some("bob"), Some("finance")),
                (Kind::Unexpected, Some("bob"), Some("admins")),
                (Kind::Orphan, None, None),
            ]
        );
    }
}
