//! Redis: one multiplexed connection that reconnects by itself after Redis restarts.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

#[derive(Debug, thiserror::Error)]
#[error("REDIS_URL is not a valid Redis URL: {0}")]
pub struct RedisUrlError(#[source] redis::RedisError);

/// A cheap-to-clone handle on the shared Redis connection.
#[derive(Clone)]
pub struct Redis {
    manager: ConnectionManager,
}

impl Redis {
    /// Prepares the connection without connecting: the host starts while Redis is down and
    /// connects on first use. `timeout` bounds each connection attempt and each reply.
    pub fn connect_lazy(url: &str, timeout: Duration) -> Result<Self, RedisUrlError> {
        let client = redis::Client::open(url).map_err(RedisUrlError)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            // Fail fast and let the next command try again: callers (health checks, the
            // worker) have their own retry loops, and a long internal retry would hide outages.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_lazy_with_config(client, config).map_err(RedisUrlError)?;
        Ok(Self { manager })
    }

    /// The connection, for modules that issue commands.
    pub fn connection(&self) -> ConnectionManager {
        self.manager.clone()
    }

    /// Round-trips a PING, bounded by `timeout`.
    pub async fn ping(&self, timeout: Duration) -> Result<(), String> {
        let mut conn = self.connection();
        let cmd = redis::cmd("PING");
        let ping = cmd.query_async::<String>(&mut conn);
        match tokio::time::timeout(timeout, ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        }
    }
}
