//! floh: a job host whose job types are WebAssembly components.
//!
//! # Layout
//!
//! - [`config`] reads defaults, `floh.toml` and the environment into one validated
//!   [`config::Settings`]; its `vars` table is the single source of every variable's name and
//!   default.
//! - [`database`] owns the PostgreSQL pool and the migrations; [`redis_conn`] owns the Redis
//!   connection, which reconnects by itself.
//! - [`health`] answers the probes; [`http`] assembles the routes and serves them.
//! - [`shutdown`] is the one shutdown mechanism: a token every task watches and a registry of
//!   tasks that shutdown waits for.
//! - [`app`] builds everything from the settings and runs it; `main.rs` only parses the
//!   command line, installs signal handlers and reports how things ended.

pub mod admin;
pub mod app;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod console;
pub mod database;
pub mod health;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod plugins;
pub mod queue;
pub mod redis_conn;
pub mod runtime_settings;
pub mod scheduler;
pub mod seed;
pub mod shutdown;
pub mod telemetry;
