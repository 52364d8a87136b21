//! The one-shot subcommands besides `serve`: `plugins check|list`, `jobs add`, `audit verify`.

pub mod audit;
pub mod jobs;
pub mod plugins;
