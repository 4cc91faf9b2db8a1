//! The command line. Every flag can also come from an environment variable.
//! Validated once, here; the rest of the program reads a `Config`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::model::DEFAULT_TABLE;

/// Kubernetes NetworkPolicy enforcement for one node, programmed into
/// nftables over netlink (no `nft` binary needed).
///
/// Modes (default: the daemon):
///
///   daemon         watch the API server (or --manifests files) and keep this
///                  node's nftables table in line with the policies.
///
///   --dump-script  print the complete nft script this node would commit, then
///                  exit; needs no privileges. Audit it, diff it, or check it
///                  with `nft -c -f`.
///
///   --once         build the ruleset once, commit it as one kernel
///                  transaction, exit.
///
///   --cleanup      delete this agent's table (and nothing else), exit.
#[derive(Debug, Clone, Parser)]
#[command(name = "flock-netpol", version, verbatim_doc_comment)]
pub struct Cli {
    /// Name of this node: pods whose spec.nodeName equals it are enforced here.
    /// Default: $NODE_NAME, then the host name.
    #[arg(long, env = "NODE_NAME")]
    pub node: Option<String>,

    /// Read cluster objects (Pods, Namespaces, NetworkPolicies) from this file
    /// or directory of .yaml/.yml/.json files instead of the API server.
    /// Repeatable. In daemon mode the files are watched.
    #[arg(
        long = "manifests",
        env = "FLOCK_NETPOL_MANIFESTS",
        value_delimiter = ','
    )]
    pub manifests: Vec<PathBuf>,

    /// Print the nft script for this node and exit.
    #[arg(long, env = "FLOCK_NETPOL_DUMP_SCRIPT", conflicts_with_all = ["once", "cleanup"])]
    pub dump_script: bool,

    /// Commit the ruleset once and exit.
    #[arg(long, env = "FLOCK_NETPOL_ONCE", conflicts_with = "cleanup")]
    pub once: bool,

    /// Delete our nftables table and exit (no error when it is absent).
    #[arg(long, env = "FLOCK_NETPOL_CLEANUP")]
    pub cleanup: bool,

    /// Name of our nftables table (family inet). Nothing outside it is touched.
    #[arg(long, env = "FLOCK_NETPOL_TABLE", default_value = DEFAULT_TABLE)]
    pub table: String,

    /// Kubeconfig file for the API server (default: in-cluster config, then
    /// $KUBECONFIG, then ~/.kube/config).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Address of the HTTP server for /metrics, /healthz and /readyz
    /// ("off" disables it).
    #[arg(
        long,
        env = "FLOCK_NETPOL_METRICS_ADDR",
        default_value = "0.0.0.0:9743"
    )]
    pub metrics_addr: String,

    /// Quiet time after a change before a sync, in milliseconds.
    #[arg(long, env = "FLOCK_NETPOL_DEBOUNCE_MS", default_value_t = 100)]
    pub debounce_ms: u64,

    /// Longest a sync may be postponed under constant churn, in milliseconds.
    #[arg(long, env = "FLOCK_NETPOL_MAX_DELAY_MS", default_value_t = 1000)]
    pub max_delay_ms: u64,

    /// Full resync period, in seconds (re-commit even when nothing changed
    /// would be skipped; repairs a table someone else altered). 0 disables it.
    #[arg(long, env = "FLOCK_NETPOL_RESYNC_SECONDS", default_value_t = 300)]
    pub resync_seconds: u64,

    /// Log format.
    #[arg(long, env = "FLOCK_NETPOL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// What the process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Daemon,
    DumpScript,
    Once,
    Cleanup,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    pub node: String,
    pub manifests: Vec<PathBuf>,
    pub table: String,
    pub kubeconfig: Option<PathBuf>,
    /// `None` when disabled.
    pub metrics_addr: Option<SocketAddr>,
    pub debounce: Duration,
    pub max_delay: Duration,
    /// `None` when disabled.
    pub resync: Option<Duration>,
    pub log_format: LogFormat,
}

/// A flag that does not make sense; the message names it.
#[derive(Debug, thiserror::Error)]
#[error("invalid {flag}: {message}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub message: String,
}

impl Cli {
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let mode = if self.dump_script {
            Mode::DumpScript
        } else if self.once {
            Mode::Once
        } else if self.cleanup {
            Mode::Cleanup
        } else {
            Mode::Daemon
        };
        let node = match self.node.filter(|n| !n.is_empty()) {
            Some(n) => n,
            None => hostname().ok_or_else(|| ConfigError {
                flag: "--node",
                message: "not given, NODE_NAME is unset and the host name is unreadable".into(),
            })?,
        };
        if !valid_table_name(&self.table) {
            return Err(ConfigError {
                flag: "--table",
                message: format!(
                    "{:?}: use 1-63 characters of [A-Za-z0-9_-], starting with a letter",
                    self.table
                ),
            });
        }
        let metrics_addr = if self.metrics_addr == "off" || self.metrics_addr.is_empty() {
            None
        } else {
            Some(self.metrics_addr.parse().map_err(|e| ConfigError {
                flag: "--metrics-addr",
                message: format!("{:?}: {e} (want IP:PORT or \"off\")", self.metrics_addr),
            })?)
        };
        if self.debounce_ms > self.max_delay_ms {
            return Err(ConfigError {
                flag: "--debounce-ms",
                message: format!(
                    "{} is above --max-delay-ms {}",
                    self.debounce_ms, self.max_delay_ms
                ),
            });
        }
        Ok(Config {
            mode,
            node,
            manifests: self.manifests,
            table: self.table,
            kubeconfig: self.kubeconfig,
            metrics_addr,
            debounce: Duration::from_millis(self.debounce_ms),
            max_delay: Duration::from_millis(self.max_delay_ms),
            resync: (self.resync_seconds > 0).then(|| Duration::from_secs(self.resync_seconds)),
            log_format: self.log_format,
        })
    }
}

fn valid_table_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn hostname() -> Option<String> {
    let name = nix::unistd::gethostname().ok()?.into_string().ok()?;
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        let mut full = vec!["flock-netpol"];
        full.extend_from_slice(args);
        Cli::try_parse_from(full)
            .expect("clap accepts")
            .into_config()
    }

    #[test]
    fn dump_script_mode_with_repeated_manifests() {
        let c = parse(&[
            "--node",
            "n1",
            "--manifests",
            "a.yaml",
            "--manifests",
            "dir",
            "--dump-script",
        ])
        .unwrap();
        assert_eq!(c.mode, Mode::DumpScript);
        assert_eq!(c.node, "n1");
        assert_eq!(c.manifests.len(), 2);
        assert_eq!(c.table, DEFAULT_TABLE);
    }

    #[test]
    fn a_bad_table_name_is_refused_naming_the_flag() {
        let e = parse(&["--node", "n1", "--table", "bad name"]).unwrap_err();
        assert_eq!(e.flag, "--table");
    }

    #[test]
    fn metrics_can_be_switched_off() {
        assert!(parse(&["--node", "n", "--metrics-addr", "off"])
            .unwrap()
            .metrics_addr
            .is_none());
        assert!(parse(&["--node", "n", "--metrics-addr", "nonsense"]).is_err());
    }
}
