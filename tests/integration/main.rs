//! Integration tests against real PostgreSQL and Redis (127.0.0.1) and the real binary.

mod admin;
mod audit;
mod catalogue;
mod cli;
mod console;
mod database;
mod deploy;
mod embedded;
mod escalations;
mod fixtures;
mod health;
mod helpers;
mod job_host;
mod migrations;
mod node;
mod plugins;
mod pool;
mod python;
mod queue;
mod reconciliation;
mod reports;
mod services;
mod shutdown;
mod smtp;
mod traces;
