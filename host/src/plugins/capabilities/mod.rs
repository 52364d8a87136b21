//! The host side of every WIT import: one module per capability, all behind [`HostState`].
//!
//! Each call first checks the plugin's grants; an ungranted call returns
//! `host-error::not-granted` and is remembered, so a failed job can name the missing grant.

mod audit;
mod clock;
mod db;
mod http;
mod log;
mod mail;
mod queue;
mod settings;

use std::sync::Arc;

use wasmtime::StoreLimits;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

pub use self::http::{Denial, HttpGate};

use super::Capability;
use super::bindings::floh::plugin::types::{self, HostError};
use crate::audit::Signer;
use crate::clock::Clock;
use crate::config::PluginPolicy;
use crate::database::{Db, Either, Tx};
use crate::queue::JobQueue;
use crate::runtime_settings::RuntimeSettings;

/// What the host lends to plugins: shared by every job run.
pub struct Services {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub settings: RuntimeSettings,
    pub signer: Signer,
    pub queue: Arc<dyn JobQueue>,
    /// `None` when SMTP_URL is not set.
    pub mailer: Option<crate::mail::Mailer>,
    /// Where `audit.publish-checkpoint` puts documents.
    pub checkpoints: crate::audit::store::Store,
}

/// The state of one job run's store.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    /// Outgoing HTTP policy of this run, and what it refused.
    pub(super) http_gate: HttpGate,
    table: ResourceTable,
    pub(super) limits: StoreLimits,
    /// `None` while a plugin is being described at load time: no host calls then.
    pub(super) job: Option<JobContext>,
}

impl HostState {
    pub(super) fn new(wasi: WasiCtx, limits: StoreLimits, job: Option<JobContext>) -> Self {
        let http_gate = HttpGate::new(job.as_ref().map(|job| job.policy.as_ref()));
        Self { wasi, http: WasiHttpCtx::new(), http_gate, table: ResourceTable::new(), limits, job }
    }

    /// The job's context, if `capability` is granted to its plugin.
    fn granted(&mut self, capability: Capability) -> Result<&mut JobContext, HostError> {
        let job = self
            .job
            .as_mut()
            .ok_or_else(|| HostError::Unavailable("host calls are not available in describe()".to_owned()))?;
        if job.policy.allows(capability) {
            Ok(job)
        } else {
            job.denied.push(capability);
            Err(HostError::NotGranted(capability.into()))
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.http_gate }
    }
}

impl types::Host for HostState {}

/// One job run: who runs, what it may do, and its database transaction.
pub struct JobContext {
    pub plugin: String,
    pub job_id: String,
    pub policy: Arc<PluginPolicy>,
    pub services: Arc<Services>,
    /// Begun on the first database statement, so plugins without one hold no connection.
    transaction: Option<Tx>,
    /// Log lines held back while the job holds SQLite's write lock, which storing them on
    /// their own connection would wait for; stored once the transaction ends.
    held_logs: Vec<log::LogLine>,
    /// Capabilities the plugin asked for without a grant.
    pub denied: Vec<Capability>,
}

impl JobContext {
    pub fn new(plugin: String, job_id: String, policy: Arc<PluginPolicy>, services: Arc<Services>) -> Self {
        Self {
            plugin,
            job_id,
            policy,
            services,
            transaction: None,
            held_logs: Vec::new(),
            denied: Vec::new(),
        }
    }

    async fn transaction(&mut self) -> Result<&mut Tx, HostError> {
        if self.transaction.is_none() {
            let transaction = self.services.db.begin().await.map_err(db::host_error)?;
            self.transaction = Some(transaction);
        }
        Ok(self.transaction.as_mut().expect("begun above"))
    }

    /// Commits the job's transaction, if it began one.
    pub async fn commit(&mut self) -> Result<(), sqlx::Error> {
        let committed = match self.transaction.take() {
            Some(transaction) => transaction.commit().await,
            None => Ok(()),
        };
        self.store_held_logs().await;
        committed
    }

    /// Rolls the job's transaction back, if it began one.
    pub async fn rollback(&mut self) {
        if let Some(transaction) = self.transaction.take()
            && let Err(e) = transaction.rollback().await
        {
            tracing::warn!(plugin = %self.plugin, job = %self.job_id, error = %e, "rollback failed; the connection is discarded");
        }
        self.store_held_logs().await;
    }

    /// Stores `line` in system_log outside the job's transaction, so what a job logged stays
    /// even if its work rolls back.
    async fn store_log(&mut self, line: log::LogLine) {
        if matches!(self.transaction, Some(Either::Sqlite(_))) {
            self.held_logs.push(line);
        } else {
            line.store(&self.services.db).await;
        }
    }

    async fn store_held_logs(&mut self) {
        for line in std::mem::take(&mut self.held_logs) {
            line.store(&self.services.db).await;
        }
    }
}

impl From<Capability> for types::Capability {
    fn from(capability: Capability) -> Self {
        match capability {
            Capability::Log => types::Capability::Log,
            Capability::Clock => types::Capability::Clock,
            Capability::Settings => types::Capability::Settings,
            Capability::Db => types::Capability::Db,
            Capability::Queue => types::Capability::Queue,
            Capability::Mail => types::Capability::Mail,
            Capability::Audit => types::Capability::Audit,
            Capability::Http => types::Capability::Http,
        }
    }
}

impl From<types::Capability> for Capability {
    fn from(capability: types::Capability) -> Self {
        match capability {
            types::Capability::Log => Capability::Log,
            types::Capability::Clock => Capability::Clock,
            types::Capability::Settings => Capability::Settings,
            types::Capability::Db => Capability::Db,
            types::Capability::Queue => Capability::Queue,
            types::Capability::Mail => Capability::Mail,
            types::Capability::Audit => Capability::Audit,
            types::Capability::Http => Capability::Http,
        }
    }
}
