//! The command line.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "floh",
    version,
    about = "A job host that runs every job type as a sandboxed WebAssembly component"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server and background workers until SIGTERM or SIGINT (the default).
    Serve(ServeArgs),
    /// Validate the configuration and print the effective values, secrets redacted.
    CheckConfig,
    /// Create the database if needed and apply pending migrations.
    Migrate,
    /// Fill the database with example data (migrating it first).
    Seed(SeedArgs),
    /// Enqueue jobs.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Check the audit log and its signed checkpoints.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Check plugin files, or list what a running host has loaded.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the audit_log hash chain and check every checkpoint's signature, link and
    /// coverage; exit 1 naming the first bad row or checkpoint.
    Verify {
        /// The checkpoint store to check, configured by its variables (AUDIT_CHECKPOINT_PATH,
        /// AUDIT_CHECKPOINT_S3_*, AUDIT_CHECKPOINT_SIEM_URL) [default: AUDIT_CHECKPOINT_STORE].
        /// A SIEM cannot be read back: `siem` checks the copies in audit_checkpoints.
        #[arg(long, value_parser = ["file", "s3", "siem"])]
        store: Option<String>,
        /// The folder of the `file` store [default: AUDIT_CHECKPOINT_PATH].
        #[arg(long)]
        path: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Load FILE exactly as the host would and print what it describes; exit 1 with the
    /// reason if the host would refuse it.
    Check {
        /// The plugin's `.wasm` file.
        file: std::path::PathBuf,
    },
    /// List the plugins a running host has loaded (asks its admin API with ADMIN_TOKEN).
    List {
        /// The host's base URL [default: http://127.0.0.1:<PORT>].
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// Do not apply database migrations at start-up.
    #[arg(long)]
    pub no_migrate: bool,
}

#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// Replace the demo rows (ids starting with `demo-`): users, roles and assignments some of
    /// them expired, documents, workflow runs some stuck, schedules, artifacts and old logs.
    #[arg(long, required = true)]
    pub demo: bool,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Add a job to the `workflow-scheduler` queue with the runbook's retry policy; prints
    /// its id.
    Add {
        /// The job type, e.g. `stuck-run-recovery`.
        name: String,
        /// The job's data, JSON.
        #[arg(long, default_value = "{}")]
        data: String,
        /// Run no earlier than this many milliseconds from now.
        #[arg(long)]
        delay: Option<u64>,
        /// A custom job id; adding a job whose id exists already leaves that job alone.
        #[arg(long)]
        job_id: Option<String>,
    },
}
