"""CSV -> GROUP BY -> CSV with pandas, as a user would write it (bench/run.sh csv-groupby-csv).

Reads only the 5 columns the aggregate needs (`usecols`), like DuckDB's projection pushdown,
and writes the same columns, names and order as the SQL of bench/src/movement.rs:

    SELECT status, day, count(*) AS n, sum(qty) AS qty, max(amount) AS max_amount,
           min(price) AS min_price FROM src GROUP BY status, day ORDER BY status, day

Usage: python pandas_groupby.py INPUT.csv OUTPUT.csv
"""

import sys

import pandas as pd


def main(src: str, out: str) -> None:
    frame = pd.read_csv(
        src,
        usecols=["status", "day", "qty", "amount", "price"],
        dtype={"status": "string", "day": "string"},
    )
    result = (
        frame.groupby(["status", "day"], sort=True)
        .agg(
            n=("qty", "size"),
            qty=("qty", "sum"),
            max_amount=("amount", "max"),
            min_price=("price", "min"),
        )
        .reset_index()
    )
    result.to_csv(out, index=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
