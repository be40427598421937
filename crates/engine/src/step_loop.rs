//! The one step loop ([`run_with`]): runs a prepared plan with a [`StepExecutor`], starting
//! every step whose `needs` have finished, at most [`StepExecutor::jobs`] at a time (ADR 0034),
//! and stopping at the first failed step or on cancellation. In this process a step runs
//! through [`Engine::run_step`] ([`InProcess`]); a remote host plugs in an executor that runs
//! each step on its worker.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use driver_api::csv_errors;
use driver_api::{DriverError, ErrorClass, InputTable, StepContext, StepInputs};
use execution_context::{CancellationToken, ExecutionContext, object};
use futures::stream::{FuturesUnordered, StreamExt};
use pipeline::{Step, StepMode};
use serde_json::{Map, Value};

use crate::{Engine, PreparedPlan, PreparedStep, RunOutcome, StepReport, StepStatus, millis};

/// How long a cancelled step may take to stop and roll back before it is abandoned.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// Live progress of a run, for terminals and remote hosts. Events go to the session's
/// `events.jsonl` regardless.
pub trait RunObserver: Send + Sync {
    /// A step is about to start (`index`, its position in the plan, counts from 0). With
    /// `--jobs` above 1 several steps may have started and not yet finished.
    fn step_started(&self, _step: &Step, _index: usize, _total: usize) {}
    /// A step ended.
    fn step_finished(&self, _report: &StepReport) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl RunObserver for NoObserver {}

impl Engine {
    /// Runs a prepared plan against `exec`, up to `jobs` independent steps at a time (1: one
    /// after the other in plan order), stopping at the first failed step or on cancellation.
    /// Relative paths in step configs resolve against `base_dir`. The plan's secrets are
    /// registered with the run's redactor first.
    pub async fn run(
        &self,
        prepared: &PreparedPlan,
        exec: &Arc<ExecutionContext>,
        base_dir: &Path,
        observer: &dyn RunObserver,
        jobs: usize,
    ) -> RunOutcome {
        self.run_seeded(prepared, exec, base_dir, observer, HashMap::new(), jobs)
            .await
    }

    /// Like [`run`](Self::run), with tables of steps that are not in the plan already present in
    /// the run database (`seed`: step id -> table), e.g. copied from an earlier session to replay
    /// part of a pipeline.
    pub async fn run_seeded(
        &self,
        prepared: &PreparedPlan,
        exec: &Arc<ExecutionContext>,
        base_dir: &Path,
        observer: &dyn RunObserver,
        seed: HashMap<String, InputTable>,
        jobs: usize,
    ) -> RunOutcome {
        let executor = InProcess {
            engine: self,
            exec,
            base_dir,
            jobs,
        };
        run_with(prepared, exec, observer, seed, &executor).await
    }

    /// Runs one step of a plan in this process: its events and metrics, its artifacts, the
    /// driver call with the tables of earlier steps (`outputs`: step id -> table) and the
    /// classification of its error. The step loop ([`run_with`]) calls it through
    /// [`InProcess`]; a remote worker calls it for each step the host asks it to run. `cancel`
    /// stops the step (a child of the run's token, see [`StepExecutor::execute_step`]).
    pub async fn run_step(
        &self,
        prepared: &PreparedStep,
        exec: &Arc<ExecutionContext>,
        base_dir: &Path,
        outputs: &HashMap<String, InputTable>,
        cancel: &CancellationToken,
    ) -> StepReport {
        let step = &prepared.step;
        let started = Instant::now();
        let emitter = exec.step_emitter(&step.id);
        emitter.event(
            "step_start",
            object([
                ("component", step.component.clone().into()),
                ("mode", step.mode.as_str().into()),
            ]),
        );
        let result = self
            .execute(prepared, exec, base_dir, outputs, cancel)
            .await;
        let duration_ms = millis(started.elapsed());
        let mut state = None;
        let status = match result {
            Ok(output) => {
                state = output.state;
                let metric = if step.mode == StepMode::Read {
                    "rows_read"
                } else {
                    "rows_written"
                };
                emitter.metric(metric, output.rows);
                emitter.metric("step_duration_ms", duration_ms);
                let table = output.table.map(|t| t.as_str().to_owned());
                let mut fields = object([
                    ("component", step.component.clone().into()),
                    ("rows", output.rows.into()),
                    ("duration_ms", duration_ms.into()),
                ]);
                if let Some(table) = &table {
                    fields.insert("table".into(), table.clone().into());
                }
                if output.view {
                    fields.insert("materialize".into(), "view".into());
                }
                emitter.event("step_complete", fields);
                StepStatus::Ok {
                    rows: output.rows,
                    table,
                    view: output.view,
                }
            }
            Err(error) => {
                let mut message = error.to_string();
                if let (DriverError::Config { key: Some(key), .. }, Some(source)) =
                    (&error, &prepared.source)
                {
                    message = source.annotate(key, &message);
                }
                let message = exec.redactor().redact(&message).into_owned();
                emitter.metric("step_duration_ms", duration_ms);
                emitter.event(
                    "step_failed",
                    object([
                        ("component", step.component.clone().into()),
                        ("error_class", error.class().as_str().into()),
                        ("error", message.clone().into()),
                        ("duration_ms", duration_ms.into()),
                    ]),
                );
                StepStatus::Failed {
                    error_class: error.class(),
                    error: message,
                }
            }
        };
        StepReport {
            step_id: step.id.clone(),
            component: step.component.clone(),
            mode: step.mode,
            status,
            duration_ms,
            state,
        }
    }

    async fn execute(
        &self,
        prepared: &PreparedStep,
        exec: &Arc<ExecutionContext>,
        base_dir: &Path,
        outputs: &HashMap<String, InputTable>,
        cancel: &CancellationToken,
    ) -> Result<driver_api::StepOutput, DriverError> {
        let step = &prepared.step;
        let driver = self
            .drivers
            .get(&step.component)
            .ok_or_else(|| DriverError::Unsupported {
                operation: format!("component `{}` (no driver in this build)", step.component),
            })?;
        let ctx = StepContext::new(exec, &step.id, &step.component, base_dir)?
            .with_cancellation(cancel.clone())
            .with_state(prepared.state.clone());
        if let Some(connection) = &prepared.connection {
            ctx.event(
                "connection_resolved",
                object([
                    ("connection", connection.to_string().into()),
                    (
                        "fields",
                        prepared.config.keys().cloned().collect::<Vec<_>>().into(),
                    ),
                ]),
            );
        }
        write_cleaned_config(&ctx, &prepared.masked_config());

        let mut inputs = StepInputs::new();
        for (from, table) in input_tables(step, outputs)? {
            ctx.event(
                "inputs_resolved",
                object([
                    ("from_step", from.into()),
                    ("table", table.table.as_str().into()),
                    ("rows", table.rows.into()),
                ]),
            );
            inputs.insert(from.to_owned(), table.clone());
        }

        let cancel = ctx.cancellation().clone();
        let run = driver.run_json(&ctx, Value::Object(prepared.config.clone()), inputs);
        tokio::pin!(run);
        let result = tokio::select! {
            result = &mut run => result,
            () = cancel.cancelled() => {
                // Drivers see the same token: give them time to interrupt their work and roll
                // back, rather than abandoning a thread that could still commit a table.
                match tokio::time::timeout(CANCEL_GRACE, &mut run).await {
                    Ok(Ok(output)) => Ok(output),
                    Ok(Err(_)) | Err(_) => Err(DriverError::Cancelled),
                }
            }
        };
        match result {
            Err(error) => Err(explain_view_read(&ctx, error, step, outputs).await),
            ok => ok,
        }
    }
}

/// A step's error: when it is a bad row of a CSV file one of the step's inputs keeps as a
/// view, the file, line and source step instead of DuckDB's own advice
/// ([`driver_api::csv_errors::explain_view_read`]); any other error as it is. Any step can
/// meet one: a SQL step, a writer, a COPY.
async fn explain_view_read(
    ctx: &StepContext,
    error: DriverError,
    step: &Step,
    outputs: &HashMap<String, InputTable>,
) -> DriverError {
    let Some((context, message)) = csv_errors::csv_read_failure(&error) else {
        return error;
    };
    let sources: Vec<(String, driver_api::TableName)> = match input_tables(step, outputs) {
        Ok(tables) if !tables.is_empty() => tables
            .into_iter()
            .map(|(id, input)| (id.to_owned(), input.table.clone()))
            .collect(),
        _ => return error,
    };
    ctx.run_blocking(move |conn, _| {
        Ok(csv_errors::explain_view_read(
            conn, &context, &message, &sources,
        ))
    })
    .await
    .unwrap_or(error)
}

/// The tables `step` reads, from the tables of earlier steps (`outputs`: step id -> table):
/// the steps its `inputs` name, or else every step in its `needs` that produced a table. A
/// needed step without a table (a writer) only orders the run. Every adapter wires inputs
/// through this function.
pub fn input_tables<'a>(
    step: &'a Step,
    outputs: &'a HashMap<String, InputTable>,
) -> Result<Vec<(&'a str, &'a InputTable)>, DriverError> {
    if step.inputs.is_empty() {
        return Ok(step
            .needs
            .iter()
            .filter_map(|need| Some((need.as_str(), outputs.get(need)?)))
            .collect());
    }
    step.inputs
        .iter()
        .map(|input| match outputs.get(input) {
            Some(table) => Ok((input.as_str(), table)),
            None => Err(DriverError::Config {
                key: Some("inputs".into()),
                message: format!("step '{input}' produced no table to read"),
            }),
        })
        .collect()
}

/// Runs steps for [`run_with`]: in this process ([`InProcess`]) or on a remote worker.
pub trait StepExecutor {
    /// How many steps may run at the same time (`--jobs`); 0 counts as 1. An executor that
    /// can run only one step at a time (a remote worker, ADR 0034) keeps the default, 1.
    fn jobs(&self) -> usize {
        1
    }

    /// Runs `step` with the tables of earlier steps (`outputs`: step id -> table) and reports
    /// what happened. The step stops when `cancel` is cancelled: by the run's cancellation
    /// (Ctrl-C) or because a step running in parallel failed. The step's events and metrics
    /// reach the run's `events.jsonl` / `metrics.jsonl` through the executor (written or
    /// forwarded). With [`jobs`](Self::jobs) above 1, several calls run at once.
    fn execute_step(
        &self,
        step: &PreparedStep,
        outputs: &HashMap<String, InputTable>,
        cancel: &CancellationToken,
    ) -> impl Future<Output = StepReport>;
}

/// Runs steps in this process with an [`Engine`].
#[derive(Debug)]
pub struct InProcess<'a> {
    /// The engine (drivers and specs).
    pub engine: &'a Engine,
    /// The run's context.
    pub exec: &'a Arc<ExecutionContext>,
    /// Directory relative paths resolve against.
    pub base_dir: &'a Path,
    /// How many steps may run at the same time.
    pub jobs: usize,
}

impl StepExecutor for InProcess<'_> {
    fn jobs(&self) -> usize {
        self.jobs
    }

    fn execute_step(
        &self,
        step: &PreparedStep,
        outputs: &HashMap<String, InputTable>,
        cancel: &CancellationToken,
    ) -> impl Future<Output = StepReport> {
        self.engine
            .run_step(step, self.exec, self.base_dir, outputs, cancel)
    }
}

/// The steps each step of `plan` waits for, by position: those named in its `needs` and
/// `inputs` that are in the plan (steps outside it, replayed from another session, are
/// already there). Plan order is topological, so every one comes earlier.
fn dependencies(plan: &PreparedPlan) -> Vec<Vec<usize>> {
    let position: HashMap<&str, usize> = plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.step.id.as_str(), i))
        .collect();
    plan.steps
        .iter()
        .map(|s| {
            let mut deps: Vec<usize> = s
                .step
                .needs
                .iter()
                .chain(&s.step.inputs)
                .filter_map(|id| position.get(id.as_str()).copied())
                .collect();
            deps.sort_unstable();
            deps.dedup();
            deps
        })
        .collect()
}

/// The step loop: runs a prepared plan with `executor`, starting each step once the steps it
/// needs have finished, at most [`StepExecutor::jobs`] at a time and in plan order among
/// those ready (so one job runs the plan exactly in order). The first failed step stops the
/// run: no further step starts, and steps running beside it are cancelled (their reports say
/// which step failed). Cancelling `exec` (Ctrl-C) cancels every running step. Reports come
/// back in plan order. Emits `run_start`, then `run_complete` or `run_error`, and the
/// `run_duration_ms` metric. The plan's secrets are registered with the run's redactor first.
/// `seed` holds tables of steps outside the plan already present in the run database.
pub async fn run_with(
    prepared: &PreparedPlan,
    exec: &Arc<ExecutionContext>,
    observer: &dyn RunObserver,
    seed: HashMap<String, InputTable>,
    executor: &impl StepExecutor,
) -> RunOutcome {
    let started = Instant::now();
    for secret in &prepared.secrets {
        exec.redactor().add_secret(secret);
    }
    let plan = &prepared.plan;
    let total = prepared.steps.len();
    let jobs = executor.jobs().max(1);
    exec.event(
        "run_start",
        object([
            ("pipeline", plan.name.clone().into()),
            ("steps_total", total.into()),
            ("jobs", jobs.into()),
            (
                "session_dir",
                exec.session_dir().display().to_string().into(),
            ),
        ]),
    );
    let dependencies = dependencies(prepared);
    let mut outputs = seed;
    let mut reports: Vec<Option<StepReport>> = vec![None; total];
    let mut started_steps = vec![false; total];
    let mut finished = vec![false; total];
    // Cancelled when a step fails, to stop the steps running beside it; a child of the run's
    // token, so Ctrl-C reaches every step through it too.
    let siblings = exec.cancellation().child_token();
    // The first step that failed (not by cancellation), and whether no step may start.
    let mut failed: Option<String> = None;
    let mut stop = false;
    let mut running = FuturesUnordered::new();
    loop {
        if !stop && !exec.cancellation().is_cancelled() {
            for (index, prepared_step) in prepared.steps.iter().enumerate() {
                if running.len() >= jobs {
                    break;
                }
                if started_steps[index] || !dependencies[index].iter().all(|&d| finished[d]) {
                    continue;
                }
                started_steps[index] = true;
                observer.step_started(&prepared_step.step, index, total);
                // Each step gets the tables finished so far; the map is small (names and row
                // counts), and the copy lets steps finish while others hold theirs.
                let inputs = outputs.clone();
                let cancel = siblings.child_token();
                running.push(async move {
                    let report = executor.execute_step(prepared_step, &inputs, &cancel).await;
                    (index, report)
                });
            }
        }
        let Some((index, mut report)) = running.next().await else {
            break;
        };
        let step = &prepared.steps[index].step;
        match &mut report.status {
            StepStatus::Ok { rows, table, .. } => {
                finished[index] = true;
                if let Some(table) = table {
                    match driver_api::TableName::new(table.clone()) {
                        Ok(table) => {
                            outputs.insert(step.id.clone(), InputTable { table, rows: *rows });
                        }
                        Err(error) => {
                            tracing::warn!(%error, step = %step.id, "step reported an unusable table name")
                        }
                    }
                }
            }
            StepStatus::Failed { error_class, error } => {
                stop = true;
                siblings.cancel();
                let cancelled = *error_class == ErrorClass::Cancelled;
                match &failed {
                    Some(first) if cancelled && !exec.cancellation().is_cancelled() => {
                        *error = format!("cancelled because step '{first}' failed");
                    }
                    None if !cancelled => failed = Some(step.id.clone()),
                    _ => {}
                }
            }
        }
        observer.step_finished(&report);
        reports[index] = Some(report);
    }
    let steps: Vec<StepReport> = reports.into_iter().flatten().collect();
    let cancelled = failed.is_none()
        && (exec.cancellation().is_cancelled()
            || steps.iter().any(|s| {
                matches!(
                    s.status,
                    StepStatus::Failed {
                        error_class: ErrorClass::Cancelled,
                        ..
                    }
                )
            }));
    let outcome = RunOutcome {
        steps,
        steps_total: total,
        cancelled,
        duration_ms: millis(started.elapsed()),
    };
    if outcome.ok() {
        exec.event(
            "run_complete",
            object([
                ("pipeline", plan.name.clone().into()),
                ("steps_completed", outcome.steps_completed().into()),
                ("duration_ms", outcome.duration_ms.into()),
            ]),
        );
    } else {
        let mut fields = object([
            ("pipeline", plan.name.clone().into()),
            ("steps_completed", outcome.steps_completed().into()),
            ("steps_total", total.into()),
            ("duration_ms", outcome.duration_ms.into()),
            ("cancelled", cancelled.into()),
        ]);
        if let Some(failed) = outcome.failed_step() {
            fields.insert("step_id".into(), failed.step_id.clone().into());
            if let StepStatus::Failed { error, .. } = &failed.status {
                fields.insert("error".into(), error.clone().into());
            }
        }
        exec.event("run_error", fields);
    }
    exec.metric("run_duration_ms", outcome.duration_ms, Map::new());
    outcome
}

/// Writes `artifacts/<step>/cleaned_config.json`: the config the driver received, with secret
/// keys masked by the caller and every secret value scrubbed by the run's redactor.
fn write_cleaned_config(ctx: &StepContext, config: &Map<String, Value>) {
    let path = ctx.artifacts_dir().join("cleaned_config.json");
    let text = serde_json::to_string_pretty(config).expect("JSON always serializes");
    let text = ctx
        .execution_context()
        .redactor()
        .redact(&text)
        .into_owned();
    if let Err(error) = std::fs::write(&path, text + "\n") {
        tracing::warn!(%error, path = %path.display(), "cannot write cleaned_config.json");
    } else {
        ctx.event(
            "artifact_created",
            object([
                ("artifact_type", "cleaned_config".into()),
                ("path", path.display().to_string().into()),
            ]),
        );
    }
}
