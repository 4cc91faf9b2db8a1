//! The suite driver: for each case and step, write the manifests, compute
//! the expected matrix, make the agent enforce (one-shot, or daemons that
//! watch the files), probe, and report PASS/FAIL with truth tables.
//!
//! Must not: create or delete namespaces; decide expectations itself (the
//! reference evaluator and the case's hand cells do).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::agents::{Agents, Apply, Daemon};
use crate::cases::{self, Case, State};
use crate::expect;
use crate::matrix::{self, Cell, Matrix};
use crate::model;
use crate::netns;
use crate::plan::{node_netns, pod_netns, Topology};
use crate::probe::Prober;

/// Per-probe timeout while polling for convergence in daemon mode.
const QUICK_TIMEOUT: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Once,
    Daemon,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Once => "once",
            Mode::Daemon => "daemon",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Namespace name prefix (as given to `plan`).
    #[arg(long)]
    prefix: String,
    /// The flock-netpol binary.
    #[arg(long)]
    agent: PathBuf,
    #[arg(long, value_enum, default_value_t = Mode::Once)]
    mode: Mode,
    /// How --once mode commits.
    #[arg(long, value_enum, default_value_t = Apply::Netlink)]
    apply: Apply,
    /// Scratch directory (manifests, agent logs).
    #[arg(long)]
    work: PathBuf,
    /// Written at the end: `passed=N failed=M`.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Only cases whose file name contains this.
    #[arg(long)]
    filter: Option<String>,
    /// Daemon mode: longest wait for the probes to match, per step.
    #[arg(long, default_value_t = 20)]
    deadline_secs: u64,
    /// Case files or directories of them.
    #[arg(required = true)]
    cases: Vec<PathBuf>,
}

struct Tally {
    passed: usize,
    failed: usize,
}

impl Tally {
    fn record(&mut self, ok: bool, line: &str) {
        println!("{} {line}", if ok { "PASS" } else { "FAIL" });
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
    }
}

pub fn run(args: RunArgs) -> Result<bool> {
    let base = model::base_objects();
    let topo = Topology::from_objects(&base)?;
    let cases = cases::load_all(&args.cases, args.filter.as_deref())?;
    std::fs::create_dir_all(&args.work)?;
    let agents = Agents {
        bin: args.agent.clone(),
        prefix: args.prefix.clone(),
        nodes: topo.nodes.clone(),
        manifests: args.work.join("manifests"),
        logs: args.work.clone(),
    };
    let prober = Prober::new(&topo, &args.prefix);
    let mut tally = Tally {
        passed: 0,
        failed: 0,
    };
    let mode = args.mode;
    let mut daemons = Vec::new();
    if mode == Mode::Daemon {
        State::from_objects(base.clone())?.write_manifests(&agents.manifests)?;
        daemons = agents.start_daemons()?;
    }
    let driver = Driver {
        args: &args,
        topo: &topo,
        agents: &agents,
        prober: &prober,
    };
    for case in &cases {
        let started = Instant::now();
        match driver.case(case, &mut daemons) {
            Ok(notes) => tally.record(
                true,
                &format!(
                    "{} [{}] {} ({:.1}s)",
                    case.name,
                    mode.as_str(),
                    notes,
                    started.elapsed().as_secs_f64()
                ),
            ),
            Err(e) => tally.record(
                false,
                &format!(
                    "{} [{}] ({})\n  {e:#}",
                    case.name,
                    mode.as_str(),
                    case.file.about
                ),
            ),
        }
    }
    let table = flock_netpol::model::DEFAULT_TABLE;
    if mode == Mode::Daemon {
        let mut stopped = true;
        for d in &mut daemons {
            stopped &= d.stop();
        }
        let kept = topo
            .nodes
            .iter()
            .all(|n| agents.has_table(n, table).unwrap_or(false));
        tally.record(
            stopped && kept,
            &format!("[daemon] SIGTERM stops every daemon (stopped: {stopped}) and keeps table inet {table} (kept: {kept})"),
        );
    }
    if !cases.is_empty() {
        let had = topo
            .nodes
            .iter()
            .all(|n| agents.has_table(n, table).unwrap_or(false));
        let cleaned = agents.cleanup().map(|_| {
            topo.nodes
                .iter()
                .all(|n| !agents.has_table(n, table).unwrap_or(true))
        });
        tally.record(
            had && matches!(cleaned, Ok(true)),
            &format!(
                "[{}] --cleanup removes table inet {table} on every node (present before: {had}; gone after: {cleaned:?})",
                mode.as_str()
            ),
        );
    }
    println!(
        "[{}] {} passed, {} failed",
        mode.as_str(),
        tally.passed,
        tally.failed
    );
    if let Some(path) = &args.summary {
        std::fs::write(
            path,
            format!("passed={} failed={}\n", tally.passed, tally.failed),
        )?;
    }
    Ok(tally.failed == 0)
}

struct Driver<'a> {
    args: &'a RunArgs,
    topo: &'a Topology,
    agents: &'a Agents,
    prober: &'a Prober,
}

impl Driver<'_> {
    /// Ok(notes) when every step matched; Err names the step and shows why.
    fn case(&self, case: &Case, daemons: &mut [Daemon]) -> Result<String> {
        let mut state = State::from_objects(model::base_objects())?;
        let cells = matrix::all_cells(self.topo);
        let mut notes = Vec::new();
        for (i, step) in case.file.steps.iter().enumerate() {
            let label = format!("step {} ({})", i + 1, step.name);
            state.step(step).with_context(|| label.clone())?;
            state.write_manifests(&self.agents.manifests)?;
            let snapshot =
                expect::load_snapshot(&self.agents.manifests).with_context(|| label.clone())?;
            let expected = expect::expected(&snapshot, self.topo);
            expect::check_hand_cells(step, self.topo, &expected).with_context(|| label.clone())?;
            let (actual, note) = match self.args.mode {
                Mode::Once => {
                    self.agents
                        .once(self.args.apply)
                        .with_context(|| label.clone())?;
                    if step.flush_neighbours {
                        self.flush_neighbours()?;
                    }
                    (self.prober.measure(&cells)?, String::new())
                }
                Mode::Daemon => {
                    if step.flush_neighbours {
                        self.flush_neighbours()?;
                    }
                    self.converge(&cells, &expected, daemons)
                        .with_context(|| label.clone())?
                }
            };
            let wrong = matrix::differences(&expected, &actual);
            if !wrong.is_empty() {
                let mut msg = format!("{label}: {} wrong cells{note}", wrong.len());
                for c in wrong.iter().take(12) {
                    let got = if actual.get(c) == Some(&true) {
                        "allowed"
                    } else {
                        "blocked"
                    };
                    msg.push_str(&format!(
                        "\n  {}: {got}, expected the opposite",
                        c.describe(self.topo)
                    ));
                }
                if wrong.len() > 12 {
                    msg.push_str(&format!(
                        "\n  ... and {} more, see the tables",
                        wrong.len() - 12
                    ));
                }
                msg.push('\n');
                msg.push_str(&matrix::truth_tables(self.topo, &expected, &actual, true));
                anyhow::bail!(msg);
            }
            if !note.is_empty() {
                notes.push(note);
            }
        }
        let steps = case.file.steps.len();
        Ok(if notes.is_empty() {
            format!("{steps} steps")
        } else {
            format!("{steps} steps, converged in {}", notes.join(", "))
        })
    }

    /// Probe until the matrix matches or the deadline passes; returns the
    /// last matrix and the convergence time. Polling uses quick probes
    /// (QUICK_TIMEOUT) to time the change; only a full measurement with the
    /// 1 s timeout decides.
    fn converge(
        &self,
        cells: &[Cell],
        expected: &Matrix,
        daemons: &mut [Daemon],
    ) -> Result<(Matrix, String)> {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(self.args.deadline_secs);
        loop {
            for d in daemons.iter_mut() {
                if let Some(how) = d.exited() {
                    anyhow::bail!(
                        "the daemon on {} exited ({how}); its log ends:\n{}",
                        d.node,
                        d.log_tail()
                    );
                }
            }
            // Every probe of a round leaves at its start: a matching round
            // shows the rules were in force by then.
            let seen = start.elapsed();
            let quick = self.prober.measure_with(cells, QUICK_TIMEOUT)?;
            if matrix::differences(expected, &quick).is_empty() || Instant::now() >= deadline {
                let actual = self.prober.measure(cells)?;
                if matrix::differences(expected, &actual).is_empty() {
                    return Ok((actual, format!("{:.2}s", seen.as_secs_f64())));
                }
                if Instant::now() >= deadline {
                    return Ok((
                        actual,
                        format!(" (not converged after {}s)", self.args.deadline_secs),
                    ));
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `ip neigh flush all` in every node and pod namespace.
    fn flush_neighbours(&self) -> Result<()> {
        let names = self
            .topo
            .nodes
            .iter()
            .map(|n| node_netns(&self.args.prefix, n))
            .chain(
                self.topo
                    .endpoints
                    .iter()
                    .map(|e| pod_netns(&self.args.prefix, &e.key)),
            );
        for ns in names {
            let mut cmd = Command::new("ip");
            cmd.args(["neigh", "flush", "all"]);
            netns::command_in(&ns, &mut cmd)?;
            let status = cmd.status().context("run ip neigh flush")?;
            anyhow::ensure!(status.success(), "ip neigh flush all in {ns}: {status}");
        }
        Ok(())
    }
}
