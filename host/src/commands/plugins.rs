//! `floh plugins check` and `floh plugins list`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::admin::PluginListing;
use crate::config::Settings;
use crate::plugins::loader::{self, LoadedPlugin};
use crate::plugins::runtime::{Runtime, RuntimeOptions};
use crate::plugins::{Capability, runtime_options};

/// Validates `file` with the host's own loader and prints the verdict. Returns whether the
/// host would accept it.
pub async fn check(settings: &Settings, file: &Path) -> anyhow::Result<bool> {
    // The host's engine configuration, without the instance pool or the cache: a check
    // leaves nothing behind.
    let options = RuntimeOptions { pooling: false, cache_dir: None, ..runtime_options(settings) };
    let runtime = Arc::new(Runtime::new(&options)?);
    match loader::load(&runtime, file).await {
        Ok(plugin) => {
            print_plugin(settings, &plugin);
            Ok(true)
        }
        Err(e) => {
            println!("{}: refused", file.display());
            println!("  reason: {e}");
            Ok(false)
        }
    }
}

fn print_plugin(settings: &Settings, plugin: &LoadedPlugin) {
    let info = &plugin.info;
    let policy = settings.plugin_policies.get(&info.name).cloned().unwrap_or_default();
    let list = |capabilities: &mut dyn Iterator<Item = Capability>| {
        let names: Vec<String> = capabilities.map(|c| c.to_string()).collect();
        if names.is_empty() { "none".to_owned() } else { names.join(", ") }
    };
    println!("{}: ok", plugin.file.display());
    println!("  job type:     {}", info.name);
    println!("  version:      {}", info.version);
    println!("  description:  {}", info.description);
    println!("  schedule:     {}", info.default_schedule.as_deref().unwrap_or("none (enqueued on demand)"));
    println!("  needs:        {}", list(&mut info.capabilities.iter().copied()));
    println!("  granted:      {}", list(&mut policy.grants.iter().copied()));
    let missing: Vec<Capability> = info.capabilities.iter().copied().filter(|c| !policy.allows(*c)).collect();
    if !missing.is_empty() {
        println!(
            "  not granted:  {} (add to grants under [plugins.{}] in floh.toml)",
            list(&mut missing.into_iter()),
            info.name
        );
    }
    println!("  imports:      {}", plugin.imports.join(", "));
    println!("  sha256:       {}", plugin.sha256);
}

/// Prints the plugins the host at `url` has loaded.
pub async fn list(settings: &Settings, url: Option<String>) -> anyhow::Result<()> {
    let base = url.unwrap_or_else(|| format!("http://127.0.0.1:{}", settings.listen.port()));
    let endpoint = format!("{}/api/admin/plugins", base.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .get(&endpoint)
        .bearer_auth(settings.admin_token.expose())
        .send()
        .await
        .with_context(|| format!("cannot reach the host at {base}"))?;
    if !response.status().is_success() {
        anyhow::bail!("{endpoint} answered {}", response.status());
    }
    let listing: PluginListing = response.json().await.context("unexpected answer from the admin API")?;
    println!("plugins in {}:", listing.dir);
    if listing.plugins.is_empty() {
        println!("  (no .wasm files)");
    }
    for listed in listing.plugins {
        let plugin = listed.status;
        let loaded_at = plugin.loaded_at.map_or_else(|| "-".to_owned(), |at| at.to_rfc3339());
        println!(
            "  {:<28} {:<10} {:<32} {}  {}  {}",
            plugin.name.as_deref().unwrap_or("-"),
            plugin.version.as_deref().unwrap_or("-"),
            plugin.file,
            &plugin.sha256[..12.min(plugin.sha256.len())],
            loaded_at,
            plugin.status,
        );
        println!("      grants: {}", listed.grants.join(", "));
        if let Some(error) = plugin.error {
            println!("      error: {error}");
        }
    }
    Ok(())
}
