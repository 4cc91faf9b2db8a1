//! Thin entry point: parse the command line, set up logging, run the mode.

use std::process::ExitCode;

use clap::Parser;
use flock_netpol::config::{Cli, Config, LogFormat, Mode};
use flock_netpol::{agent, apply, informers, manifests, render, translate};

/// Exit status for bad input (flags, manifests): the operator must fix it.
const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    let thp = flock_netpol::alloc::configure();
    let config = match Cli::parse().into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("flock-netpol: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    init_tracing(config.log_format);
    if let Err(e) = thp {
        tracing::warn!(
            "cannot turn off transparent huge pages (prctl): {e}; peak memory may be higher"
        );
    }
    match config.mode {
        Mode::DumpScript => dump_script(&config),
        Mode::Once => once(&config),
        Mode::Cleanup => cleanup(&config),
        Mode::Daemon => daemon(config),
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only on a terminal: container logs must stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The snapshot for the one-shot modes: from --manifests, else from the API
/// server (one list of each kind).
fn load_snapshot(config: &Config) -> Result<flock_netpol::snapshot::Snapshot, ExitCode> {
    if !config.manifests.is_empty() {
        return manifests::load(&config.manifests).map_err(|e| {
            eprintln!("flock-netpol: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        });
    }
    let rt = runtime()?;
    rt.block_on(informers::snapshot_once(config)).map_err(|e| {
        eprintln!("flock-netpol: {e:#}");
        ExitCode::FAILURE
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("flock-netpol: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })
}

fn translated(config: &Config) -> Result<flock_netpol::model::RuleSet, ExitCode> {
    let snapshot = load_snapshot(config)?;
    let out = translate::translate(&snapshot, &config.node, &config.table);
    for w in &out.warnings {
        tracing::warn!(object = %w.object, field = %w.field, "{}", w.message);
    }
    Ok(out.ruleset)
}

fn dump_script(config: &Config) -> ExitCode {
    match translated(config) {
        Ok(rs) => {
            print!("{}", render::render(&rs));
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn once(config: &Config) -> ExitCode {
    let rs = match translated(config) {
        Ok(rs) => rs,
        Err(code) => return code,
    };
    match apply::commit_once(&rs) {
        Ok(report) => {
            tracing::info!(table = %rs.table, "{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("flock-netpol: commit failed, the previous ruleset stays in force: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cleanup(config: &Config) -> ExitCode {
    match apply::cleanup(&config.table) {
        Ok(true) => {
            tracing::info!(table = %config.table, "deleted table inet {}", config.table);
            ExitCode::SUCCESS
        }
        Ok(false) => {
            tracing::info!(table = %config.table, "table inet {} was absent", config.table);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("flock-netpol: cleanup failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn daemon(config: Config) -> ExitCode {
    // One thread runs the daemon: it does one sync at a time, and its watch
    // streams and metrics endpoint are idle between events. Worker threads
    // would each keep a heap of their own, whose freed memory the others
    // cannot reuse (peak RSS grows with them). Commits still run on the
    // blocking pool.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("flock-netpol: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(agent::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flock-netpol: {e:#}");
            ExitCode::FAILURE
        }
    }
}
