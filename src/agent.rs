//! The daemon: informers (or watched manifests) -> reconcile loop -> apply.

use crate::config::Config;

/// Run until SIGTERM/SIGINT. Never deletes the table on the way out.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let _ = config;
    anyhow::bail!("daemon mode is not built yet; use --dump-script")
}
