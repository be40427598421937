"""CSV -> DuckDB table with dlt, as its documentation shows it (bench/run.sh csv-table).

The filesystem source lists the file, its `read_csv` reader parses it with pandas in chunks,
and the pipeline normalizes and loads the rows into table `t` of a DuckDB file. Telemetry is
off and the pipelines directory is a scratch one, so nothing leaves the machine or the bench
directory.

Usage: python dlt_csv_table.py INPUT.csv OUTPUT.duckdb PIPELINES_DIR
"""

import os
import sys

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

import dlt  # noqa: E402
from dlt.sources.filesystem import filesystem, read_csv  # noqa: E402


def main(src: str, db: str, pipelines_dir: str) -> None:
    files = filesystem(
        bucket_url="file://" + os.path.dirname(os.path.abspath(src)),
        file_glob=os.path.basename(src),
    )
    pipeline = dlt.pipeline(
        pipeline_name="bench_csv_table",
        destination=dlt.destinations.duckdb(db),
        dataset_name="bench",
        pipelines_dir=pipelines_dir,
    )
    info = pipeline.run((files | read_csv()).with_name("t"))
    info.raise_on_failed_jobs()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
