//! netns-probe: the engine of netns-test.sh. It describes the simulated
//! cluster for the script (`plan`), runs the pods' echo servers (`serve`),
//! measures reachability matrices (`matrix`), and runs the case files against
//! the agent (`run`), comparing real traffic with the reference evaluator
//! and with each case's hand-written cells.
//!
//! Must not: create or delete namespaces or links (the script owns the
//! topology and its cleanup), or send traffic outside them.

mod agents;
mod cases;
mod expect;
mod matrix;
mod model;
mod netns;
mod plan;
mod probe;
mod run;
mod serve;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "netns-probe",
    about = "Engine of netns-test.sh (run it as root, through the script)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// Which cluster: the suite's base model, or the pods of a manifest file.
#[derive(Args, Clone)]
struct ClusterArg {
    /// Manifest file whose Pods are the endpoints (default: the base model
    /// x/y/z with a/b/c).
    #[arg(long)]
    cluster: Option<PathBuf>,
    /// Prefix of every namespace name (netns-test.sh uses fnp-PID-).
    #[arg(long)]
    prefix: String,
}

impl ClusterArg {
    fn topology(&self) -> Result<plan::Topology> {
        plan::Topology::from_objects(&self.objects()?)
    }

    fn objects(&self) -> Result<Vec<serde_json::Value>> {
        match &self.cluster {
            None => Ok(model::base_objects()),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("read {}", path.display()))?;
                plan::parse_objects(&text).with_context(|| format!("parse {}", path.display()))
            }
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Print the topology plan the script builds the namespaces from.
    Plan(ClusterArg),
    /// Run the echo servers in every pod namespace until killed.
    Serve {
        #[command(flatten)]
        cluster: ClusterArg,
        /// Written once every server is bound.
        #[arg(long)]
        ready: Option<PathBuf>,
    },
    /// Measure and print the reachability matrix once.
    Matrix(ClusterArg),
    /// Run case files against the agent in the base-model cluster.
    Run(run::RunArgs),
}

fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("netns-probe: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<std::process::ExitCode> {
    match Cli::parse().cmd {
        Cmd::Plan(c) => print!("{}", c.topology()?.plan_text(&c.prefix)),
        Cmd::Serve { cluster, ready } => {
            serve::serve(&cluster.topology()?, &cluster.prefix, ready.as_deref())?
        }
        Cmd::Matrix(c) => {
            let topo = c.topology()?;
            let cells = matrix::all_cells(&topo);
            let actual = probe::Prober::new(&topo, &c.prefix).measure(&cells)?;
            print!("{}", matrix::compact_table(&topo, &actual));
        }
        Cmd::Run(args) => {
            if !run::run(args)? {
                return Ok(std::process::ExitCode::FAILURE);
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
