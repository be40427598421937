//! Postgres DDL for a missing destination table, from the DuckDB types of the step table.

use driver_api::quote_identifier;

/// The Postgres column type for a DuckDB column type (as `duckdb_columns()` spells it).
/// 64-bit integers become `bigint`; integers wider than that and unsigned 64-bit ones
/// `numeric`, so that no value can overflow.
pub fn pg_type_for(duckdb_type: &str) -> String {
    let upper = duckdb_type.trim().to_ascii_uppercase();
    if upper.ends_with(']')
        || upper.starts_with("STRUCT")
        || upper.starts_with("MAP")
        || upper.starts_with("UNION")
        || upper == "JSON"
    {
        return "jsonb".into();
    }
    if let Some(args) = upper
        .strip_prefix("DECIMAL(")
        .or_else(|| upper.strip_prefix("NUMERIC("))
    {
        let args = args.trim_end_matches(')');
        return format!("numeric({})", args.replace(' ', ""));
    }
    if upper.starts_with("ENUM") {
        return "text".into();
    }
    match upper.as_str() {
        "BOOLEAN" => "boolean",
        "TINYINT" | "SMALLINT" => "smallint",
        "INTEGER" => "integer",
        "BIGINT" | "UTINYINT" | "USMALLINT" | "UINTEGER" => "bigint",
        "UBIGINT" | "HUGEINT" | "UHUGEINT" | "VARINT" | "BIGNUM" => "numeric",
        "FLOAT" | "REAL" => "real",
        "DOUBLE" => "double precision",
        "DATE" => "date",
        "TIME" => "time",
        "TIME WITH TIME ZONE" => "timetz",
        "TIMESTAMP" | "TIMESTAMP_S" | "TIMESTAMP_MS" | "TIMESTAMP_NS" => "timestamp",
        "TIMESTAMP WITH TIME ZONE" => "timestamptz",
        "INTERVAL" => "interval",
        "UUID" => "uuid",
        "BLOB" => "bytea",
        _ => "text",
    }
    .into()
}

/// `CREATE TABLE "schema"."table" (...)` with the columns' types and `PRIMARY KEY`.
pub fn create_table(
    schema: &str,
    table: &str,
    columns: &[(String, String)],
    primary_key: &[String],
) -> String {
    let mut lines: Vec<String> = columns
        .iter()
        .map(|(name, duck)| {
            let not_null = if primary_key.contains(name) {
                " NOT NULL"
            } else {
                ""
            };
            format!(
                "    {} {}{not_null}",
                quote_identifier(name),
                pg_type_for(duck)
            )
        })
        .collect();
    if !primary_key.is_empty() {
        lines.push(format!(
            "    PRIMARY KEY ({})",
            primary_key
                .iter()
                .map(|c| quote_identifier(c))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    format!(
        "CREATE TABLE {}.{} (\n{}\n);\n",
        quote_identifier(schema),
        quote_identifier(table),
        lines.join(",\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_map_without_overflow_or_loss() {
        assert_eq!(pg_type_for("BIGINT"), "bigint");
        assert_eq!(pg_type_for("UINTEGER"), "bigint");
        assert_eq!(pg_type_for("HUGEINT"), "numeric");
        assert_eq!(pg_type_for("DECIMAL(18,3)"), "numeric(18,3)");
        assert_eq!(pg_type_for("TIMESTAMP WITH TIME ZONE"), "timestamptz");
        assert_eq!(pg_type_for("INTEGER[]"), "jsonb");
        assert_eq!(pg_type_for("STRUCT(a INTEGER)"), "jsonb");
        assert_eq!(pg_type_for("JSON"), "jsonb");
        assert_eq!(pg_type_for("BLOB"), "bytea");
        assert_eq!(pg_type_for("VARCHAR"), "text");
    }

    #[test]
    fn create_table_quotes_identifiers_and_adds_the_key() {
        let ddl = create_table(
            "public",
            "my \"table\"",
            &[
                ("id".into(), "BIGINT".into()),
                ("Name".into(), "VARCHAR".into()),
            ],
            &["id".into()],
        );
        assert_eq!(
            ddl,
            "CREATE TABLE \"public\".\"my \"\"table\"\"\" (\n    \"id\" bigint NOT NULL,\n    \"Name\" text,\n    PRIMARY KEY (\"id\")\n);\n"
        );
    }
}
