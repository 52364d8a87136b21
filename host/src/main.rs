use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use floh::app::App;
use floh::cli::{AuditCommand, Cli, Command, JobsCommand, PluginsCommand, ServeArgs};
use floh::commands;
use floh::config::Settings;
use floh::{database, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("floh: {e}");
            eprintln!("floh: refusing to start; fix the values above (see docs/configuration.md)");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::CheckConfig) = cli.command {
        println!("configuration is valid; effective values:");
        for line in settings.redacted_lines() {
            println!("  {line}");
        }
        return ExitCode::SUCCESS;
    }

    let _telemetry =
        telemetry::init(&settings.log_level, settings.log_format, settings.otlp_endpoint.as_ref());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
            Command::Serve(args) => serve(settings, !args.no_migrate).await.map(|()| ExitCode::SUCCESS),
            Command::Migrate => migrate(&settings).await.map(|_| ExitCode::SUCCESS),
            Command::Seed(_) => seed(&settings).await.map(|()| ExitCode::SUCCESS),
            Command::Jobs { command: JobsCommand::Add { name, data, delay, job_id } } => {
                commands::jobs::add(&settings, name, &data, delay, job_id).await.map(|()| ExitCode::SUCCESS)
            }
            Command::Audit { command: AuditCommand::Verify { store, path } } => {
                audit_verify(settings, store, path).await
            }
            Command::Plugins { command: PluginsCommand::Check { file } } => {
                commands::plugins::check(&settings, &file)
                    .await
                    .map(|accepted| if accepted { ExitCode::SUCCESS } else { ExitCode::FAILURE })
            }
            Command::Plugins { command: PluginsCommand::List { url } } => {
                commands::plugins::list(&settings, url).await.map(|()| ExitCode::SUCCESS)
            }
            Command::CheckConfig => unreachable!("handled before the runtime starts"),
        }
    });
    match outcome {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings, migrate: bool) -> anyhow::Result<()> {
    let app = App::start(settings, migrate).await?;
    let router = app.router();
    app.serve(router, termination_signal()).await?;
    Ok(())
}

async fn migrate(settings: &Settings) -> anyhow::Result<database::Db> {
    let pool = database::connect_lazy(&settings.database)?;
    database::migrate(&settings.database, &pool).await?;
    tracing::info!("database is up to date");
    Ok(pool)
}

/// `floh audit verify`, with `--store` standing in for AUDIT_CHECKPOINT_STORE.
async fn audit_verify(
    settings: Settings,
    store: Option<String>,
    path: Option<std::path::PathBuf>,
) -> anyhow::Result<ExitCode> {
    let settings = match store {
        Some(store) => {
            Settings::load_from(std::env::vars().chain([("AUDIT_CHECKPOINT_STORE".to_owned(), store)]))?
        }
        None => settings,
    };
    let intact = commands::audit::verify(&settings, path).await?;
    Ok(if intact { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn seed(settings: &Settings) -> anyhow::Result<()> {
    let pool = migrate(settings).await?;
    let seeded = floh::seed::demo(&pool, chrono::Utc::now()).await.context("cannot seed the demo data")?;
    for (table, rows) in seeded {
        println!("{table}: {rows} demo rows");
    }
    Ok(())
}

/// Resolves on the first SIGTERM (container stop) or SIGINT (Ctrl-C). The only signal
/// handlers of the process are installed here.
async fn termination_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("received SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!("received SIGINT"),
    }
}
