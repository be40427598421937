//! Every MySQL type: MySQL -> DuckDB (checked column by column) -> MySQL (checked value by
//! value against the source), with NULLs, extremes and unicode.

mod common;

use common::Db;
use driver_mysql::{MysqlExtractor, MysqlWriter};
use serde_json::json;

const COLUMNS: &[(&str, &str, &str)] = &[
    // (column, MySQL type, expected DuckDB type)
    ("id", "INT NOT NULL PRIMARY KEY", "INTEGER"),
    ("ti", "TINYINT", "TINYINT"),
    ("tiu", "TINYINT UNSIGNED", "UTINYINT"),
    ("si", "SMALLINT", "SMALLINT"),
    ("siu", "SMALLINT UNSIGNED", "USMALLINT"),
    ("mi", "MEDIUMINT", "INTEGER"),
    ("miu", "MEDIUMINT UNSIGNED", "UINTEGER"),
    ("i", "INT", "INTEGER"),
    ("iu", "INT UNSIGNED", "UINTEGER"),
    ("bi", "BIGINT", "BIGINT"),
    ("biu", "BIGINT UNSIGNED", "UBIGINT"),
    ("d", "DECIMAL(12,2)", "DECIMAL(12,2)"),
    ("du", "DECIMAL(10,4) UNSIGNED", "DECIMAL(10,4)"),
    ("d38", "DECIMAL(38,10)", "DECIMAL(38,10)"),
    ("d65", "DECIMAL(65,30)", "VARCHAR"),
    ("f", "FLOAT", "FLOAT"),
    ("dbl", "DOUBLE", "DOUBLE"),
    ("dt", "DATE", "DATE"),
    ("dtm", "DATETIME(6)", "TIMESTAMP"),
    ("dt0", "DATETIME", "TIMESTAMP"),
    ("ts", "TIMESTAMP(6) NULL", "TIMESTAMP"),
    ("tm", "TIME(6)", "INTERVAL"),
    ("yr", "YEAR", "SMALLINT"),
    ("b1", "BIT(1)", "BOOLEAN"),
    ("b12", "BIT(12)", "UBIGINT"),
    ("e", "ENUM('a','b c','ü')", "VARCHAR"),
    ("st", "SET('x','y','z')", "VARCHAR"),
    ("c", "CHAR(4)", "VARCHAR"),
    ("vc", "VARCHAR(200)", "VARCHAR"),
    ("tx", "LONGTEXT", "VARCHAR"),
    ("bn", "BINARY(4)", "BLOB"),
    ("vb", "VARBINARY(20)", "BLOB"),
    ("bl", "BLOB", "BLOB"),
    ("js", "JSON", "JSON"),
];

async fn source(db: &Db) {
    let defs: Vec<String> = COLUMNS
        .iter()
        .map(|(c, t, _)| format!("`{c}` {t}"))
        .collect();
    db.exec(&format!("CREATE TABLE src ({})", defs.join(", ")))
        .await;
    db.exec(
        "INSERT INTO src VALUES
        (1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
         -9223372036854775808, 18446744073709551615, -9999999999.99, 999999.9999,
         1234567890123456789012345678.0123456789,
         -12345678901234567890123456789012345.123456789012345678901234567890,
         1.5, 2.2250738585072014e-308, '1000-01-01', '9999-12-31 23:59:59.999999',
         '1970-01-01 00:00:00', '2038-01-19 03:14:07.123456', '-838:59:59.000000', 2155, b'1',
         b'101010101010', 'b c', 'x,z', 'ab', 'žluťoučký kůň 🐴 \"q\" ''s''',
         'tab\there\nnewline \\\\ backslash', 0x00FF10AB, 0x00, 0x000102FF5C090A,
         '{\"a\": [1, \"ü\"], \"b\": null}'),
        (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL, NULL, NULL, NULL, NULL),
        (3, 127, 0, 32767, 0, 8388607, 0, 2147483647, 0, 9223372036854775807, 0, 0.01, 0,
         -0.0000000001, 0.000000000000000000000000000001, -3.25, 1e300, '2024-02-29',
         '2024-02-29 12:34:56.000001', '2000-01-01 00:00:00', '1970-01-01 00:00:01',
         '100:00:00.5', 1901, b'0', b'0', 'ü', '', '', '', '', 0x61626364, X'', X'',
         '[]')",
    )
    .await;
}

#[tokio::test]
async fn every_type_round_trips_mysql_duckdb_mysql() {
    let db = Db::new("types").await;
    source(&db).await;

    let out = db
        .run
        .run(
            &MysqlExtractor,
            "read",
            db.config(json!({"table": "src"})),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(out.rows, 3);

    // Column by column: the DuckDB type of each MySQL type.
    let types = db.duck_types("read");
    let expected: Vec<(String, String)> = COLUMNS
        .iter()
        .map(|(c, _, d)| ((*c).to_owned(), (*d).to_owned()))
        .collect();
    assert_eq!(types, expected);

    // Values in DuckDB, exactly.
    let value = |sql: &str| db.run.query_strings(sql).remove(0);
    let v = |col: &str, id: i32| {
        value(&format!(
            "SELECT CAST({col} AS VARCHAR) FROM \"read\" WHERE id = {id}"
        ))
    };
    assert_eq!(v("biu", 1).as_deref(), Some("18446744073709551615"));
    assert_eq!(v("bi", 1).as_deref(), Some("-9223372036854775808"));
    assert_eq!(v("d", 1).as_deref(), Some("-9999999999.99"));
    assert_eq!(
        v("d38", 1).as_deref(),
        Some("1234567890123456789012345678.0123456789")
    );
    assert_eq!(
        v("d65", 1).as_deref(),
        Some("-12345678901234567890123456789012345.123456789012345678901234567890")
    );
    assert_eq!(v("dtm", 1).as_deref(), Some("9999-12-31 23:59:59.999999"));
    assert_eq!(v("ts", 1).as_deref(), Some("2038-01-19 03:14:07.123456"));
    assert_eq!(v("tm", 1).as_deref(), Some("-838:59:59"));
    assert_eq!(v("tm", 3).as_deref(), Some("100:00:00.5"));
    assert_eq!(v("yr", 1).as_deref(), Some("2155"));
    assert_eq!(v("b1", 1).as_deref(), Some("true"));
    assert_eq!(v("b12", 1).as_deref(), Some("2730"));
    assert_eq!(v("st", 1).as_deref(), Some("x,z"));
    assert_eq!(v("vc", 1).as_deref(), Some("žluťoučký kůň 🐴 \"q\" 's'"));
    assert_eq!(v("hex(bl)", 1).as_deref(), Some("000102FF5C090A"));
    assert_eq!(v("js->>'$.a[1]'", 1).as_deref(), Some("ü"));
    assert_eq!(v("dbl", 3).as_deref(), Some("1e+300"));
    for (column, _, _) in &COLUMNS[1..] {
        assert_eq!(v(column, 2), None, "{column} of the NULL row");
    }

    // Back to MySQL: the same table shape, the same values.
    db.exec("CREATE TABLE dst LIKE src").await;
    let written = db
        .run
        .run(
            &MysqlWriter,
            "write",
            db.config(json!({"table": "dst"})),
            &["read"],
        )
        .await
        .unwrap();
    assert_eq!(written.rows, 3);
    let src = db.rows("SELECT * FROM src ORDER BY id").await;
    let dst = db.rows("SELECT * FROM dst ORDER BY id").await;
    for (s, d) in src.iter().zip(&dst) {
        for (i, (a, b)) in s.iter().zip(d).enumerate() {
            assert_eq!(a, b, "column {} of row {:?}", COLUMNS[i].0, s[0]);
        }
    }
    assert_eq!(src.len(), dst.len());
}

#[tokio::test]
async fn zero_dates_become_null_and_empty_results_keep_their_columns() {
    let db = Db::new("zero").await;
    db.exec("SET SESSION sql_mode = ''; CREATE TABLE z (id INT, d DATE, t DATETIME); INSERT INTO z VALUES (1, '0000-00-00', '0000-00-00 00:00:00'), (2, '2024-00-00', '2024-01-02 03:04:05')").await;
    db.run
        .run(
            &MysqlExtractor,
            "zeros",
            db.config(json!({"query": "SELECT * FROM z ORDER BY id;"})),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        db.run.query_strings("SELECT CAST(d AS VARCHAR) || '|' || coalesce(CAST(t AS VARCHAR), 'null') FROM zeros ORDER BY id"),
        [None, None]
    );
    assert_eq!(
        db.run
            .query_strings("SELECT coalesce(CAST(t AS VARCHAR), 'null') FROM zeros ORDER BY id"),
        [Some("null".into()), Some("2024-01-02 03:04:05".into())]
    );

    let out = db
        .run
        .run(
            &MysqlExtractor,
            "empty",
            db.config(json!({"query": "SELECT id, d FROM z WHERE id < 0"})),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(out.rows, 0);
    assert_eq!(
        db.duck_types("empty"),
        [
            ("id".to_owned(), "INTEGER".to_owned()),
            ("d".to_owned(), "DATE".to_owned())
        ]
    );
}
