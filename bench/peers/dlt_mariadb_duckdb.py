"""MariaDB table -> DuckDB table with dlt, as its documentation shows it (bench/run.sh
mariadb-duckdb).

The `sql_database` source reads the table with the ConnectorX backend (Arrow batches, the fast
path dlt's documentation recommends for large tables), and the pipeline loads them into table
`t` of a DuckDB file. Telemetry is off and the pipelines directory is a scratch one, so nothing
leaves the machine or the bench directory.

Usage: python dlt_mariadb_duckdb.py MYSQL_URL TABLE OUTPUT.duckdb PIPELINES_DIR
  (MYSQL_URL: mysql://root@127.0.0.1:3306/osiris_bench)
"""

import os
import sys

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

import dlt  # noqa: E402
from dlt.sources.sql_database import sql_table  # noqa: E402


def main(url: str, table: str, db: str, pipelines_dir: str) -> None:
    source = sql_table(
        credentials=url.replace("mysql://", "mysql+pymysql://", 1),
        table=table,
        backend="connectorx",
        # ConnectorX connects by itself, with its own URL scheme.
        backend_kwargs={"conn": url},
    )
    pipeline = dlt.pipeline(
        pipeline_name="bench_mariadb_duckdb",
        destination=dlt.destinations.duckdb(db),
        dataset_name="bench",
        pipelines_dir=pipelines_dir,
    )
    info = pipeline.run(source.with_name("t"))
    info.raise_on_failed_jobs()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4])
