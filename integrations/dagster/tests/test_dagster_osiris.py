"""dagster_osiris against real Dagster, the real `osiris` binary ($OSIRIS_BIN) and MariaDB.

Run by tests/it/orchestration.rs, which creates a scratch MariaDB database holding
examples/mysql/shop.sql and passes its name in $MYSQL_DATABASE; $OSIRIS_REPO is the repository.
"""

import csv
import json
import os
import shutil
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.reconstruct import ReconstructableJob  # this file, loaded by path

from dagster_osiris import OsirisPipeline, osiris_assets

REPO = Path(os.environ["OSIRIS_REPO"])


def mysql_project(tmp: Path, broken_sql: bool = False) -> Path:
    for name in ["osiris_connections.yaml", "mysql_to_csv.yaml"]:
        shutil.copy(REPO / "examples/mysql" / name, tmp / name)
    pipeline = tmp / "mysql_to_csv.yaml"
    if broken_sql:
        text = pipeline.read_text().replace("GROUP BY c.country", "GROUP BY GROUP BY")
        pipeline.write_text(text)
    return pipeline


def orders_project(tmp: Path) -> Path:
    shutil.copytree(REPO / "examples/orders", tmp, dirs_exist_ok=True)
    for leftover in [".osiris_sessions", "output"]:
        shutil.rmtree(tmp / leftover, ignore_errors=True)
    return tmp / "pipeline.yaml"


def key(*path):
    return dg.AssetKey(list(path))


def materializations(result):
    return {
        e.asset_key: e.step_materialization_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }


def test_one_asset_per_step_with_needs_as_deps_and_component_metadata(tmp_path):
    assets = osiris_assets(mysql_project(tmp_path))
    specs = {spec.key: spec for spec in assets.specs}
    assert set(specs) == {key("mysql-revenue", s) for s in ["customers", "orders", "revenue", "write-revenue"]}
    revenue = specs[key("mysql-revenue", "revenue")]
    assert {d.asset_key for d in revenue.deps} == {key("mysql-revenue", "customers"), key("mysql-revenue", "orders")}
    assert revenue.metadata["component"] == "duckdb.processor"
    assert revenue.metadata["component_title"] == "DuckDB SQL processor"
    customers = specs[key("mysql-revenue", "customers")]
    assert customers.metadata["component"] == "mysql.extractor"
    assert customers.description and customers.description == customers.metadata["component_title"]
    assert assets.can_subset


def test_materialize_runs_the_pipeline_and_reports_rows_duration_session_and_database(tmp_path):
    pipeline = mysql_project(tmp_path)
    with dg.instance_for_test() as instance:
        result = dg.materialize([osiris_assets(pipeline)], instance=instance)
        assert result.success
        meta = materializations(result)
        assert set(meta) == {key("mysql-revenue", s) for s in ["customers", "orders", "revenue", "write-revenue"]}
        assert meta[key("mysql-revenue", "customers")]["rows"].value == 3
        assert meta[key("mysql-revenue", "orders")]["rows"].value == 3  # the cancelled one is filtered
        assert meta[key("mysql-revenue", "revenue")]["rows"].value == 2
        assert meta[key("mysql-revenue", "revenue")]["table"].value == "revenue"
        sessions = {m["session_id"].value for m in meta.values()}
        assert len(sessions) == 1, sessions
        session = sessions.pop()
        database = Path(meta[key("mysql-revenue", "revenue")]["run_database"].value)
        assert database == tmp_path / ".osiris_sessions" / session / "pipeline_data.duckdb"
        assert database.is_file()
        assert all(m["duration_ms"].value >= 0 for m in meta.values())
        with open(tmp_path / "output/revenue_by_country.csv") as f:
            assert list(csv.reader(f)) == [["country", "orders", "revenue"], ["CZ", "2", "140.49"], ["SK", "1", "80.00"]]
        # Nothing but paths on the command line: the database name comes from the environment.
        logs = [e.message for e in instance.all_logs(result.run_id) if e.message and "running " in e.message]
        assert logs and not any(os.environ["MYSQL_DATABASE"] in m for m in logs), logs


def test_a_subset_replays_from_the_session_of_the_upstream_materialization(tmp_path):
    pipeline = mysql_project(tmp_path)
    assets = osiris_assets(pipeline)
    with dg.instance_for_test() as instance:
        # Nothing materialized yet: a subset has no session to replay from.
        early = dg.materialize([assets], instance=instance, selection=[key("mysql-revenue", "revenue")], raise_on_error=False)
        assert not early.success
        failure = early.get_step_failure_events()[0].step_failure_data
        assert "was never materialized" in failure.user_failure_data.description

        full = dg.materialize([assets], instance=instance)
        first = materializations(full)[key("mysql-revenue", "customers")]["session_id"].value
        (tmp_path / "output/revenue_by_country.csv").unlink()

        sub = dg.materialize([assets], instance=instance, selection=[key("mysql-revenue", "revenue")])
        assert sub.success
        meta = materializations(sub)
        assert set(meta) == {key("mysql-revenue", "revenue")}
        replay = meta[key("mysql-revenue", "revenue")]["session_id"].value
        assert replay != first
        assert meta[key("mysql-revenue", "revenue")]["rows"].value == 2
        # Exactly the selected step ran (`osiris run --only`): the extractors' tables came from
        # the first session, and the writer after it did not run.
        status = json.loads((tmp_path / ".osiris_sessions" / replay / "status.json").read_text())
        assert status["steps_total"] == 1, status
        assert not (tmp_path / "output/revenue_by_country.csv").exists()


def test_a_failed_step_fails_its_asset_and_the_ones_after_it_with_the_step_message(tmp_path):
    pipeline = mysql_project(tmp_path, broken_sql=True)
    with dg.instance_for_test() as instance:
        result = dg.materialize([osiris_assets(pipeline)], instance=instance, raise_on_error=False)
        assert not result.success
        assert set(materializations(result)) == {key("mysql-revenue", "customers"), key("mysql-revenue", "orders")}
        failure = result.get_step_failure_events()[0].step_failure_data
        message = failure.user_failure_data.description
        assert "step `revenue` failed (config)" in message, message
        assert "syntax error" in message, message
        # The failed step's asset and the one after it were planned by the run and never
        # materialized: Dagster shows them as failed.
        records = instance.get_records_for_run(
            result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
        ).records
        planned = {r.event_log_entry.dagster_event.asset_key for r in records}
        failed = planned - set(materializations(result))
        assert instance.get_latest_materialization_event(key("mysql-revenue", "write-revenue")) is None
        assert failed == {key("mysql-revenue", "revenue"), key("mysql-revenue", "write-revenue")}, failed


def two_pipelines_job():
    """Both example pipelines in one job on the multiprocess executor (reconstructable)."""
    assets = [
        osiris_assets(os.environ["OSIRIS_TEST_MYSQL_PIPELINE"]),
        osiris_assets(os.environ["OSIRIS_TEST_ORDERS_PIPELINE"]),
    ]
    defs = dg.Definitions(
        assets=assets,
        jobs=[dg.define_asset_job("both", executor_def=dg.multiprocess_executor.configured({"max_concurrent": 2, "start_method": {"spawn": {}}}))],
    )
    return defs.resolve_job_def("both")


def test_two_independent_pipelines_run_at_once_on_the_multiprocess_executor(tmp_path, monkeypatch):
    (tmp_path / "m").mkdir()
    (tmp_path / "o").mkdir()
    monkeypatch.setenv("OSIRIS_TEST_MYSQL_PIPELINE", str(mysql_project(tmp_path / "m")))
    monkeypatch.setenv("OSIRIS_TEST_ORDERS_PIPELINE", str(orders_project(tmp_path / "o")))
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        job = ReconstructableJob.for_file(__file__, "two_pipelines_job")
        with dg.execute_job(job, instance=instance) as result:
            assert result.success
            meta = materializations(result)
            assert meta[key("mysql-revenue", "revenue")]["rows"].value == 2
            assert meta[key("orders-revenue", "revenue_by_customer")]["rows"].value == 5
            starts = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START]
            assert len(starts) == 2
            pids = {e.pid for e in starts}
            # Each pipeline's op ran in its own child process.
            assert len(pids) == 2 and os.getpid() not in pids, pids
    assert (tmp_path / "o/output/revenue_by_customer.csv").is_file()
    assert (tmp_path / "m/output/revenue_by_country.csv").is_file()


def test_a_bad_pipeline_file_is_refused_with_its_path(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsteps:\n  - id: a\n    needs: [nope]\n")
    with pytest.raises(dg.DagsterInvariantViolationError, match="step `a`, key `needs`: unknown step `nope`"):
        OsirisPipeline(bad)
