//! Watches PLUGINS_DIR and resyncs the registry after changes settle.

use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, PollWatcher, RecommendedWatcher, RecursiveMode, Watcher};

use super::registry::Registry;
use crate::shutdown::Lifecycle;

/// Events closer together than this are handled as one change.
const DEBOUNCE: Duration = Duration::from_millis(150);
/// Interval of the polling fallback, used where file system notifications are unavailable.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Starts watching; the task ends at shutdown.
pub fn spawn(lifecycle: &Lifecycle, registry: Arc<Registry>) {
    let (changed, mut changes) = tokio::sync::mpsc::unbounded_channel::<()>();
    let on_event = move |event: notify::Result<Event>| {
        if event.is_ok_and(|event| is_change(&event.kind)) {
            let _ = changed.send(());
        }
    };
    let dir = registry.dir().to_owned();
    let watcher: Box<dyn Watcher + Send> = match watch(
        RecommendedWatcher::new(on_event.clone(), notify::Config::default()),
        &dir,
    ) {
        Ok(watcher) => Box::new(watcher),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "file notifications unavailable; polling PLUGINS_DIR every {POLL_INTERVAL:?}");
            match watch(
                PollWatcher::new(on_event, notify::Config::default().with_poll_interval(POLL_INTERVAL)),
                &dir,
            ) {
                Ok(watcher) => Box::new(watcher),
                Err(e) => {
                    tracing::error!(dir = %dir.display(), error = %e, "cannot watch PLUGINS_DIR; plugins load only at start");
                    return;
                }
            }
        }
    };
    let stop = lifecycle.shutdown_started();
    lifecycle.spawn("plugin watcher", async move {
        let _watcher = watcher;
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                change = changes.recv() => {
                    if change.is_none() {
                        break;
                    }
                    tokio::time::sleep(DEBOUNCE).await;
                    while changes.try_recv().is_ok() {}
                    registry.sync().await;
                }
            }
        }
    });
}

fn watch<W: Watcher>(watcher: notify::Result<W>, dir: &std::path::Path) -> notify::Result<W> {
    let mut watcher = watcher?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

/// Our own reads of plugin files show up as access events; only a writer closing a file
/// (or a create, rename, write or removal) is a change.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}
