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
}

#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// Do not apply database migrations at start-up.
    #[arg(long)]
    pub no_migrate: bool,
}
