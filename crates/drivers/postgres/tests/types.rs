//! Every type of the mapping, PostgreSQL -> step table (DuckDB types and values) -> PostgreSQL
//! (a table created by the writer holds the same values).

mod common;

use common::Db;
use driver_postgres::{PostgresExtractor, PostgresWriter};
use serde_json::json;

const TABLE: &str = "
    CREATE TYPE mood AS ENUM ('sad', 'happy');
    CREATE TABLE everything (
        id integer PRIMARY KEY,
        b boolean, i2 smallint, i4 integer, i8 bigint, f4 real, f8 double precision,
        n numeric(12,2), n38 numeric(38,10), nbig numeric(50,5), nfree numeric,
        t text, vc varchar(10), ch char(3), e mood,
        j json, jb jsonb, bin bytea,
        d date, tm time, ts timestamp, tz timestamptz, iv interval,
        u uuid, ai integer[], at text[], an numeric(6,2)[], ip inet);
    INSERT INTO everything VALUES
      (1, true, -32768, 2147483647, -9223372036854775808, 1.5, 0.1,
       -1234567890.12, 1234567890123456789012345678.0123456789,
       123456789012345678901234567890123456789012345.12345, 0.000000000000000000000000000000000000001,
       'zá\"x', 'abc', 'ab', 'happy',
       '{\"a\": [1, 2]}', '{\"b\": {\"c\": null}}', '\\x00ff10',
       '2024-02-29', '23:59:59.999999', '2024-01-02 03:04:05.123456',
       '2024-01-02 03:04:05.654321+02', '1 year 2 months 3 days 04:05:06.789',
       'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,NULL,3}', '{x,\"y z\"}', '{1.50,-2.25}',
       '192.168.0.1/24'),
      (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
      (3, false, 0, 0, 0, '-Infinity', 'NaN', 0, 0, 0, 'NaN', '', '', '', 'sad',
       'null', '[]', '', 'infinity', '00:00', '-infinity', 'infinity', '-1 days -00:00:01',
       '00000000-0000-0000-0000-000000000000', '{}', '{}', '{}', '::1');
";

#[tokio::test]
async fn every_type_reads_exactly_and_writes_back() {
    let db = Db::new("types").await;
    db.exec(TABLE).await;
    let output = db
        .run
        .run(
            &PostgresExtractor,
            "src",
            db.config(json!({"table": "everything"})),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(output.rows, 3);
    let types = db.duck_types("src");
    let expected = [
        ("id", "INTEGER"),
        ("b", "BOOLEAN"),
        ("i2", "SMALLINT"),
        ("i4", "INTEGER"),
        ("i8", "BIGINT"),
        ("f4", "FLOAT"),
        ("f8", "DOUBLE"),
        ("n", "DECIMAL(12,2)"),
        ("n38", "DECIMAL(38,10)"),
        ("nbig", "VARCHAR"),
        ("nfree", "VARCHAR"),
        ("t", "VARCHAR"),
        ("vc", "VARCHAR"),
        ("ch", "VARCHAR"),
        ("e", "VARCHAR"),
        ("j", "JSON"),
        ("jb", "JSON"),
        ("bin", "BLOB"),
        ("d", "DATE"),
        ("tm", "TIME"),
        ("ts", "TIMESTAMP"),
        ("tz", "TIMESTAMP WITH TIME ZONE"),
        ("iv", "INTERVAL"),
        ("u", "UUID"),
        ("ai", "INTEGER[]"),
        ("at", "VARCHAR[]"),
        ("an", "DECIMAL(6,2)[]"),
        ("ip", "VARCHAR"),
    ];
    let got: Vec<(&str, &str)> = types
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    assert_eq!(got, expected);
    let row1 = db.run.query_strings(
        "SELECT concat_ws('|', b, i2, i4, i8, f4, f8, n, n38, nbig, nfree, t, vc, ch, e, j, jb,
                hex(bin), d, tm, ts, epoch_us(tz), iv, u,
                ai, \"at\", an, ip)
         FROM src WHERE id = 1",
    );
    assert_eq!(
        row1,
        [Some(
            "true|-32768|2147483647|-9223372036854775808|1.5|0.1|-1234567890.12|\
             1234567890123456789012345678.0123456789|\
             123456789012345678901234567890123456789012345.12345|\
             0.000000000000000000000000000000000000001|zá\"x|abc|ab |happy|\
             {\"a\": [1, 2]}|{\"b\": {\"c\": null}}|00FF10|2024-02-29|23:59:59.999999|\
             2024-01-02 03:04:05.123456|1704157445654321|\
             1 year 2 months 3 days 04:05:06.789|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|\
             [1, NULL, 3]|[x, y z]|[1.50, -2.25]|192.168.0.1/24"
                .into()
        )]
    );
    assert_eq!(
        db.run.query_strings(
            "SELECT concat_ws('|', b, i2, i4, i8, f4, f8, n, n38, nbig, nfree, t, vc, ch, e, j, jb,
                bin, d, tm, ts, tz, iv, u, ai, \"at\", an, ip) FROM src WHERE id = 2"
        ),
        [Some(String::new())]
    );
    assert_eq!(
        db.run.query_strings(
            "SELECT concat_ws('|', f4, f8, nfree, d, ts, tz, iv, len(ai), j, jb) FROM src WHERE id = 3"
        ),
        [Some("-inf|nan|NaN|infinity|-infinity|infinity|-1 day -00:00:01|0|null|[]".into())]
    );

    // Back into PostgreSQL: a created table, then the same values as the source, compared as
    // PostgreSQL prints them (casts to the source's types where the step table has none).
    db.run
        .run(
            &PostgresWriter,
            "back",
            db.config(json!({"table": "copy", "create_table": true, "primary_key": ["id"]})),
            &["src"],
        )
        .await
        .unwrap();
    let differences = db
        .strings(
            "SELECT count(*) FROM (
               (SELECT id, b, i2, i4, i8, f4, f8, n, n38, nbig::text, nfree::text, t, vc, ch::text,
                       e::text, j::text, jb, bin, d, tm, ts, tz, iv, u, ai, at, an, ip::text
                FROM everything)
               EXCEPT
               (SELECT id, b, i2, i4, i8, f4, f8, n, n38, nbig, nfree, t, vc, rtrim(ch), e, j::text, jb,
                       bin, d, tm, ts, tz, iv, u, ai, at, an, ip FROM copy)) x",
        )
        .await;
    assert_eq!(differences, [Some("0".into())]);
    assert_eq!(
        db.strings("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'copy'::regclass AND attname IN ('n', 'tz', 'jb', 'u', 'ai', 'iv') ORDER BY attnum").await,
        ["numeric(12,2)", "jsonb", "timestamp with time zone", "interval", "uuid", "integer[]"]
            .map(|s| Some(s.to_owned()))
    );
}

#[tokio::test]
async fn uuids_are_stored_as_duckdb_uuids_also_in_arrays() {
    let db = Db::new("uuids").await;
    let output = db
        .run
        .run(
            &PostgresExtractor,
            "src",
            db.config(
                json!({"query": "SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, \
                ARRAY['00000000-0000-0000-0000-000000000001'::uuid, NULL, \
                      'ffffffff-ffff-ffff-ffff-ffffffffffff'] AS au \
                UNION ALL SELECT NULL, NULL"}),
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(output.rows, 2);
    let types = db.duck_types("src");
    assert_eq!(
        types,
        [
            ("u".to_owned(), "UUID".to_owned()),
            ("au".to_owned(), "UUID[]".to_owned())
        ]
    );
    // DuckDB orders and compares them as uuids: the text form round-trips exactly.
    assert_eq!(
        db.run.query_strings(
            "SELECT concat_ws('|', u, au, u = 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'::UUID) FROM src ORDER BY u NULLS LAST"
        ),
        [
            Some(
                "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|[00000000-0000-0000-0000-000000000001, NULL, \
                 ffffffff-ffff-ffff-ffff-ffffffffffff]|true"
                    .into()
            ),
            Some(String::new())
        ]
    );
}
