"""OML pipelines as Dagster assets, materialized by the `osiris` binary.

    from dagster import Definitions
    from dagster_osiris import osiris_assets

    defs = Definitions(assets=[osiris_assets("pipelines/orders.yaml")])

Each step of the pipeline is one asset (key `[<pipeline name>, <step id>]`, deps from `needs`,
the component and its title as metadata). Materializing runs `osiris run <pipeline> --json` once
for the selected steps; a subset of the steps runs alone (`--only` / `--session`) on the tables
of the latest materialization of the steps it needs. Secrets stay in
`osiris_connections.yaml` and the environment: the command line holds only paths and step ids.
See docs/orchestration.md.
"""

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import dagster as dg
import yaml

__all__ = ["osiris_assets", "find_binary", "OsirisPipeline", "OsirisStep"]

#: Environment variable naming the `osiris` binary (else it is looked up on PATH).
BINARY_ENV = "OSIRIS_BIN"


def find_binary(binary: Optional[str] = None) -> str:
    """The `osiris` binary: `binary`, else `$OSIRIS_BIN`, else `osiris` on PATH."""
    candidate = binary or os.environ.get(BINARY_ENV) or shutil.which("osiris")
    if not candidate:
        raise dg.DagsterInvariantViolationError(
            f"the osiris binary was not found: put it on PATH, set ${BINARY_ENV}, or pass binary="
        )
    return candidate


class OsirisStep:
    """One step of an OML pipeline, as far as Dagster needs it."""

    def __init__(self, raw: Mapping[str, Any], where: str):
        if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
            raise dg.DagsterInvariantViolationError(f"{where}: a step without a string `id`")
        self.id: str = raw["id"]
        self.component: str = str(raw.get("component", ""))
        self.mode: str = str(raw.get("mode", ""))
        needs = raw.get("needs") or []
        if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
            raise dg.DagsterInvariantViolationError(
                f"{where}: step `{self.id}`, key `needs`: expected a list of step ids"
            )
        self.needs: list[str] = needs
        self.description: Optional[str] = raw.get("description")


class OsirisPipeline:
    """An OML pipeline file: its name and steps (in file order)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).resolve()
        try:
            doc = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as e:
            raise dg.DagsterInvariantViolationError(f"{self.path}: cannot read the pipeline: {e}")
        if not isinstance(doc, Mapping) or not isinstance(doc.get("steps"), list):
            raise dg.DagsterInvariantViolationError(f"{self.path}: not an OML pipeline (no `steps` list)")
        self.name: str = str(doc.get("name") or self.path.stem)
        self.description: Optional[str] = doc.get("description")
        self.steps = [OsirisStep(s, str(self.path)) for s in doc["steps"]]
        self.by_id = {s.id: s for s in self.steps}
        for step in self.steps:
            for need in step.needs:
                if need not in self.by_id:
                    raise dg.DagsterInvariantViolationError(
                        f"{self.path}: step `{step.id}`, key `needs`: unknown step `{need}`"
                    )

    def ancestors(self, step_id: str) -> set[str]:
        """Every step `step_id` depends on, directly or not."""
        seen: set[str] = set()
        todo = list(self.by_id[step_id].needs)
        while todo:
            s = todo.pop()
            if s not in seen:
                seen.add(s)
                todo.extend(self.by_id[s].needs)
        return seen


def _component_titles(binary: str) -> dict[str, str]:
    """Component name -> title, from `osiris components list --json` (empty if that fails)."""
    try:
        out = subprocess.run(
            [binary, "components", "list", "--json"], capture_output=True, text=True, timeout=60
        )
        return {c["name"]: c.get("title", "") for c in json.loads(out.stdout)}
    except (OSError, ValueError, KeyError, TypeError, subprocess.TimeoutExpired):
        return {}


def _asset_name(text: str) -> str:
    """A Dagster op name made of `text` (letters, digits, underscores)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def osiris_assets(
    pipeline: str | os.PathLike,
    *,
    binary: Optional[str] = None,
    sessions_dir: Optional[str | os.PathLike] = None,
    connections: Optional[str | os.PathLike] = None,
    key_prefix: Optional[Sequence[str]] = None,
    group_name: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
) -> dg.AssetsDefinition:
    """The steps of `pipeline` as one subsettable multi-asset.

    binary: the `osiris` binary (default `$OSIRIS_BIN`, then PATH), found when the assets run.
    sessions_dir: where the runs keep their sessions (default `.osiris_sessions` beside the
      pipeline); replays of a subset look up earlier sessions there.
    connections: the connections file (default: osiris's own lookup from the pipeline's directory).
    key_prefix: asset key prefix (default: `[<pipeline name>]`).
    env: extra environment variables for osiris (e.g. `MYSQL_DATABASE`); secrets belong here
      or in the environment, never on the command line.
    """
    pipe = OsirisPipeline(pipeline)
    prefix = list(key_prefix) if key_prefix is not None else [pipe.name]
    keys = {s.id: dg.AssetKey([*prefix, s.id]) for s in pipe.steps}
    step_of = {k: s for s, k in keys.items()}
    try:
        titles = _component_titles(find_binary(binary))
    except dg.DagsterInvariantViolationError:
        titles = {}  # the binary may exist only where the assets run
    sessions = Path(sessions_dir).resolve() if sessions_dir else pipe.path.parent / ".osiris_sessions"
    specs = [
        dg.AssetSpec(
            key=keys[s.id],
            deps=[keys[n] for n in s.needs],
            description=s.description or titles.get(s.component) or f"{s.component} ({s.mode})",
            group_name=group_name,
            metadata={
                "component": s.component,
                "component_title": titles.get(s.component, ""),
                "mode": s.mode,
                "pipeline": str(pipe.path),
                "step_id": s.id,
            },
            kinds={"osiris"},
        )
        for s in pipe.steps
    ]

    @dg.multi_asset(
        name=_asset_name(f"osiris_{'_'.join(prefix)}"),
        specs=specs,
        can_subset=True,
        description=pipe.description,
    )
    def _run(context: dg.AssetExecutionContext):
        selected = {step_of[k] for k in context.selected_asset_keys}
        runner = _Runner(context, pipe, find_binary(binary), sessions, connections, env)
        yield from runner.materialize(selected, keys)

    return _run


class _Runner:
    def __init__(self, context, pipe: OsirisPipeline, binary: str, sessions: Path, connections, env):
        self.context = context
        self.pipe = pipe
        self.binary = binary
        self.sessions = sessions
        self.connections = Path(connections).resolve() if connections else None
        self.env = {**os.environ, **(env or {})}

    def materialize(self, selected: set[str], keys: Mapping[str, dg.AssetKey]):
        if selected == set(self.pipe.by_id):
            plan = [(None, None)]
        else:
            plan = [self._replay_plan(selected, keys)]
        results: dict[str, dict] = {}
        for only, base in plan:
            report = self._run(only, base)
            for step in report.get("steps", []):
                results[step["step_id"]] = {**step, "_report": report}
            failed = next((s for s in report.get("steps", []) if s.get("status") == "failed"), None)
            if report.get("status") != "ok":
                yield from self._results(selected, results, keys)
                if failed:
                    message = f"osiris step `{failed['step_id']}` failed ({failed.get('error_class')}): {failed.get('error')}"
                else:
                    message = f"osiris run {report.get('status')}: {report.get('message') or report.get('reason') or report}"
                raise dg.Failure(
                    description=message,
                    metadata={
                        "session_id": str(report.get("session_id")),
                        "exit_code": report.get("exit_code"),
                    },
                    # A failed step may be the world's fault (a connection): a RetryPolicy may
                    # retry it; a refused run (wrong input) is never retried.
                    allow_retries=True,
                )
        yield from self._results(selected, results, keys)

    def _results(self, selected, results, keys):
        for step_id in [s.id for s in self.pipe.steps]:
            step = results.pop(step_id, None)
            if step is None or step_id not in selected or step.get("status") != "ok":
                continue
            report = step["_report"]
            metadata = {
                "rows": dg.MetadataValue.int(int(step.get("rows") or 0)),
                "duration_ms": dg.MetadataValue.int(int(step.get("duration_ms") or 0)),
                "session_id": dg.MetadataValue.text(report["session_id"]),
                "run_database": dg.MetadataValue.path(report["database"]),
                "dagster/row_count": dg.MetadataValue.int(int(step.get("rows") or 0)),
            }
            if step.get("table"):
                metadata["table"] = dg.MetadataValue.text(step["table"])
            yield dg.MaterializeResult(asset_key=keys[step_id], metadata=metadata)

    def _replay_plan(self, selected: set[str], keys) -> tuple[list[str], str]:
        """`(steps, base session)`: exactly the selected steps, in pipeline order (`osiris run
        --only`), on the tables they need from the session of the newest materialization of
        those steps (of any step of the pipeline if they need none)."""
        only = [s.id for s in self.pipe.steps if s.id in selected]
        needed = set().union(*(self.pipe.ancestors(s) for s in selected)) - selected
        newest = None
        for step_id in sorted(needed or set(self.pipe.by_id)):
            event = self.context.instance.get_latest_materialization_event(keys[step_id])
            if event is None or event.asset_materialization is None:
                if needed:
                    raise dg.Failure(
                        description=f"cannot replay {sorted(selected)}: step `{step_id}` was never materialized; materialize it (or the whole pipeline) first",
                        allow_retries=False,
                    )
                continue
            session = event.asset_materialization.metadata.get("session_id")
            if session is not None and (newest is None or event.timestamp > newest[0]):
                newest = (event.timestamp, session.value)
        if newest is None:
            raise dg.Failure(
                description=f"cannot replay {sorted(selected)}: no earlier osiris session of `{self.pipe.name}`; materialize the whole pipeline first",
                allow_retries=False,
            )
        return only, newest[1]

    def _run(self, only: Optional[list[str]], base: Optional[str]) -> dict:
        cmd = [self.binary, "run", str(self.pipe.path), "--json", "--sessions-dir", str(self.sessions)]
        if self.connections:
            cmd += ["--connections", str(self.connections)]
        if only is not None:
            cmd += ["--only", ",".join(only), "--session", base]
        self.context.log.info(f"running {' '.join(cmd)}")
        proc = subprocess.Popen(
            cmd, cwd=self.pipe.path.parent, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            stdout, stderr = proc.communicate()
        except BaseException:
            # Dagster interrupts a terminated run: let osiris cancel cleanly (exit 143).
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            raise
        if stderr.strip():
            self.context.log.debug(stderr[-4000:])
        try:
            report = json.loads(stdout)
        except ValueError:
            raise dg.Failure(
                description=f"osiris exited {proc.returncode} without a JSON report: {stderr.strip()[-2000:]}",
                allow_retries=False,
            )
        if report.get("status") == "error":
            raise dg.Failure(
                description=f"osiris refused the run (exit {report.get('exit_code')}, {report.get('error_class')}): {report.get('message')}"
                + "".join(f"\n  {e.get('step') or ''} {e.get('key') or ''}: {e.get('message')}" for e in report.get("errors", [])),
                allow_retries=False,
            )
        return report
