//! document-expiry-check: revokes active role assignments whose role requires a document type
//! the user no longer holds a valid document of.
//!
//! A document is valid while it is not revoked and its `expires_at` is null or later than now
//! (a document expiring exactly now is no longer valid). A renewed document of the same type
//! keeps the assignment. A revoked assignment gets reason "Required document <type> expired"
//! (the first such type by name when several are missing) and one audit event.

use floh_access::Revocation;
use floh_plugin_sdk::{Capability, Job, JobError, Outcome, Plugin, PluginInfo};

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
            sql: "UPDATE role_assignments
                  SET status = 'revoked', revoked_at = $1, updated_at = $1,
                      reason = 'Required document ' || lacking.document_type || ' expired'
                  FROM (SELECT a.id, MIN(r.document_type) AS document_type
                        FROM role_assignments a
                        JOIN role_document_requirements r ON r.role_id = a.role_id
                        WHERE a.status = 'active'
                          AND NOT EXISTS (SELECT 1 FROM documents d
                                          WHERE d.user_id = a.user_id AND d.document_type = r.document_type
                                            AND d.revoked_at IS NULL
                                            AND (d.expires_at IS NULL OR d.expires_at > $1))
                        GROUP BY a.id ORDER BY a.id LIMIT $2) AS lacking
                  WHERE role_assignments.id = lacking.id AND role_assignments.status = 'active'
                  RETURNING role_assignments.id, role_assignments.user_id, role_assignments.role_id,
                            role_assignments.reason, lacking.document_type AS detail",
            detail: "documentType",
            message: "revoked role assignments lacking a valid required document",
        }
        .run()
    }
}

floh_plugin_sdk::export!(DocumentExpiryCheck);
