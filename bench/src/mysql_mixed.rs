//! The MariaDB side of the MySQL benchmarks: the client's connection flags, running SQL through
//! it, and the generator of the `mixed` table (ten columns of the types extractors meet most).

use std::process::Command;

use anyhow::{Context, Result, bail};

/// Flags of every `mariadb` client call: TCP to 127.0.0.1:3306 as root without a password.
pub const CLIENT: &[&str] = &[
    "--protocol=tcp",
    "-h",
    "127.0.0.1",
    "-P",
    "3306",
    "-u",
    "root",
];

/// Runs SQL with the mariadb client; returns its output (tab-separated, no headers).
pub fn sql(database: Option<&str>, statement: &str) -> Result<String> {
    let mut command = Command::new("mariadb");
    command
        .args(CLIENT)
        .args(["--local-infile=1", "-N", "-B", "-e", statement]);
    if let Some(db) = database {
        command.arg(db);
    }
    let output = command.output().context("cannot run the mariadb client")?;
    if !output.status.success() {
        bail!("{statement}: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Columns of a `mixed` table.
pub const COLUMNS: &str = "id BIGINT PRIMARY KEY, qty INT NOT NULL, amount DECIMAL(12,2) NOT NULL, \
    price DOUBLE NOT NULL, name VARCHAR(64) NOT NULL, status ENUM('open','paid','cancelled') NOT NULL, \
    created DATETIME(6) NOT NULL, day DATE NOT NULL, flag TINYINT(1) NOT NULL, note VARCHAR(100) NULL";

/// Makes `db` hold table `table` with `rows` generated rows of [`COLUMNS`] (ids 1..=rows),
/// unless it already has exactly that many. Creates the database if needed.
pub fn ensure_mixed(db: &str, table: &str, rows: u64) -> Result<()> {
    sql(
        None,
        &format!("CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4"),
    )?;
    let have = sql(
        Some(db),
        &format!(
            "SELECT IFNULL((SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}'), -1)"
        ),
    )?;
    if have != "-1"
        && sql(Some(db), &format!("SELECT COUNT(*) FROM `{table}`"))? == rows.to_string()
    {
        return Ok(());
    }
    println!("creating {db}.{table} with {rows} rows (once; kept for later runs)");
    sql(
        Some(db),
        &format!(
            "DROP TABLE IF EXISTS `{table}`; CREATE TABLE `{table}` ({COLUMNS}) CHARACTER SET utf8mb4;
             INSERT INTO `{table}` SELECT seq, seq % 1000, (seq % 10000000) / 100, seq * 1.000001,
               CONCAT('customer-', seq % 50000, '-', LEFT(MD5(seq % 997), 12)),
               ELT(1 + seq % 3, 'open', 'paid', 'cancelled'),
               TIMESTAMP '2020-01-01 00:00:00' + INTERVAL seq SECOND + INTERVAL (seq % 999983) MICROSECOND,
               DATE '2020-01-01' + INTERVAL (seq % 3000) DAY, seq % 2,
               IF(seq % 5 = 0, NULL, CONCAT('note ', seq))
             FROM seq_1_to_{rows}"
        ),
    )?;
    Ok(())
}
