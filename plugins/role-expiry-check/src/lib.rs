//! role-expiry-check: revokes every active role assignment whose `expires_at` has passed.
//!
//! An assignment expiring exactly now is revoked; one without expiry, or expiring later, is
//! untouched. The row becomes `revoked` with `revoked_at` = now and reason
//! "Role assignment expired", and one audit event records each revocation. The condition is
//! re-read at run time, so a second run finds nothing to do.

use floh_access::Revocation;
use floh_plugin_sdk::{Capability, Job, JobError, Outcome, Plugin, PluginInfo};

struct RoleExpiryCheck;

impl Plugin for RoleExpiryCheck {
    fn describe() -> PluginInfo {
        PluginInfo::new("role-expiry-check", env!("CARGO_PKG_VERSION"), "Revokes expired role assignments")
            .schedule("0 * * * *")
            .needs(&[Capability::Db, Capability::Audit])
    }

    fn run(_job: Job) -> Result<Outcome, JobError> {
        Revocation {
            actor: "system:role-expiry-check",
            sql: "UPDATE role_assignments
                  SET status = 'revoked', revoked_at = $1, reason = 'Role assignment expired', updated_at = $1
                  WHERE status = 'active'
                    AND id IN (SELECT id FROM role_assignments
                               WHERE status = 'active' AND expires_at <= $1
                               ORDER BY expires_at, id LIMIT $2)
                  RETURNING id, user_id, role_id, reason, expires_at AS detail",
            detail: "expiresAt",
            message: "revoked expired role assignments",
        }
        .run()
    }
}

floh_plugin_sdk::export!(RoleExpiryCheck);
