"""CSV -> MariaDB table with dlt, as its documentation shows it (bench/run.sh csv-mariadb).

The filesystem source lists the file, its `read_csv` reader parses it with pandas in chunks,
and the pipeline loads the rows through dlt's SQLAlchemy destination (PyMySQL) into table `t`
of database DATASET (dlt's dataset is a MySQL database). Telemetry is off and the pipelines
directory is a scratch one, so nothing leaves the machine or the bench directory.

Usage: python dlt_csv_mariadb.py INPUT.csv MYSQL_URL DATASET PIPELINES_DIR
  (MYSQL_URL: mysql://root@127.0.0.1:3306/osiris_bench)
"""

import os
import sys

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

import dlt  # noqa: E402
from dlt.sources.filesystem import filesystem, read_csv  # noqa: E402


def main(src: str, url: str, dataset: str, pipelines_dir: str) -> None:
    files = filesystem(
        bucket_url="file://" + os.path.dirname(os.path.abspath(src)),
        file_glob=os.path.basename(src),
    )
    pipeline = dlt.pipeline(
        pipeline_name="bench_csv_mariadb",
        destination=dlt.destinations.sqlalchemy(url.replace("mysql://", "mysql+pymysql://", 1)),
        dataset_name=dataset,
        pipelines_dir=pipelines_dir,
    )
    info = pipeline.run((files | read_csv()).with_name("t"))
    info.raise_on_failed_jobs()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4])
