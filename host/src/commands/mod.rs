//! The one-shot subcommands besides `serve`: `plugins check|list`, `jobs add`.

pub mod jobs;
pub mod plugins;
