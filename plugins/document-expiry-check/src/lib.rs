//! document-expiry-check: revokes active role assignments whose role requires a document type
//! the user no longer holds a valid document of.
//!
//! A document is valid while it is not revoked and its `expires_at` is null or later than now
//! (a document expiring exactly now is no longer valid). A renewed document of the same type
//! keeps the assignment. A revoked assignment gets reason "Required document <type> expired"
//! (the first such type by name when several are missing) and one audit event.

use floh_access::Revocation;
use floh_plugin_sdk::{Capability, Job, JobError, Outcome, Plugin, PluginInfo};

/// The first (by name) required document type the `role_assignments` row in scope has no
/// valid document for at `$1`, or NULL. A correlated subquery rather than a join, because
/// SQLite's RETURNING can only read the updated table.
macro_rules! missing_document_type {
    () => {
        "(SELECT MIN(r.document_type) FROM role_document_requirements r
          WHERE r.role_id = role_assignments.role_id
            AND NOT EXISTS (SELECT 1 FROM documents d
                            WHERE d.user_id = role_assignments.user_id
                              AND d.document_type = r.document_type
                              AND d.revoked_at IS NULL
                              AND (d.expires_at IS NULL OR d.expires_at > $1)))"
    };
}

struct DocumentExpiryCheck;

impl Plugin for DocumentExpiryCheck {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "document-expiry-check",
            env!("CARGO_PKG_VERSION"),
            "Revokes role assignments whose required document expired",
        )
        .schedule("0 * * * *")
        .needs(&[Capability::Db, Capability::Audit])
    }

    fn run(_job: Job) -> Result<Outcome, JobError> {
        Revocation {
            actor: "system:document-expiry-check",
            sql: concat!(
                "UPDATE role_assignments
                 SET status = 'revoked', revoked_at = $1, updated_at = $1,
                     reason = 'Required document ' || ",
                missing_document_type!(),
                " || ' expired'
                 WHERE status = 'active'
                   AND id IN (SELECT id FROM role_assignments
                              WHERE status = 'active' AND ",
                missing_document_type!(),
                " IS NOT NULL
                              ORDER BY id LIMIT $2)
                 RETURNING id, user_id, role_id, reason, ",
                missing_document_type!(),
                " AS detail"
            ),
            detail: "documentType",
            message: "revoked role assignments lacking a valid required document",
        }
        .run()
    }
}

floh_plugin_sdk::export!(DocumentExpiryCheck);
