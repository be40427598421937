//! `filesystem.csv_writer`: an upstream table into one CSV file.
//!
//! DuckDB writes the file with one `COPY (SELECT <columns> FROM <table>) TO <temp file>` (in
//! parallel, formatting values itself); the temporary file sits next to the target and is
//! renamed over it only when everything succeeded, so a failed or cancelled write never
//! leaves a partial file or a half-replaced one. `COPY` writes UTF-8 only: for latin-1, ASCII
//! and UTF-16 the temporary file is transcoded, streaming, into a second temporary file.
//!
//! Values are written as DuckDB prints them: NULL as an empty field, an empty string as `""`,
//! DECIMAL exactly (`1.50`), dates as `2024-01-02`, timestamps as ISO 8601 with a space
//! separator and only the fractional digits needed (`2024-01-02 03:04:05.12`), TIMESTAMPTZ with
//! its offset (`+00`). No TIMESTAMPFORMAT is set on purpose: DuckDB would apply it to
//! TIMESTAMPTZ too and drop the offset, and pad every fraction to six digits.
//! A target ending in `.gz` or `.zst` is compressed, as DuckDB and pandas infer it.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use driver_api::{
    Driver, DriverError, Result, StepContext, StepInputs, StepOutput, TableName, quote_identifier,
    quote_literal,
};
use serde::Deserialize;
use serde::de::{self, Deserializer};
use tokio_util::sync::CancellationToken;

use crate::FilesystemConnection;
use crate::encoding::{Target, TranscodeError, transcode_file};
use crate::files::{TempFile, copy_error, prepare_directory, reported_write, write_error};
use crate::options::{Codec, CsvChar, Encoding, QuoteChar};

/// The `filesystem.csv_writer` driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct CsvWriter;

/// Configuration of a `filesystem.csv_writer` step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The output file, replaced if it exists. Relative paths resolve against the pipeline
    /// file's directory. A name ending in `.gz` or `.zst` is written compressed.
    pub path: String,
    /// Field delimiter: one ASCII character. Default `,`.
    #[serde(default = "comma")]
    pub delimiter: CsvChar,
    /// Write a header row with the column names. Default `true`.
    #[serde(default = "yes")]
    pub header: bool,
    /// Text encoding of the file. Default `utf-8`.
    #[serde(default)]
    pub encoding: Encoding,
    /// Line terminator. Default `lf`. Line breaks inside values are written as they are.
    #[serde(default)]
    pub newline: Newline,
    /// Which fields are quoted. Default `minimal`.
    #[serde(default)]
    pub quoting: Quoting,
    /// The quote character: one ASCII character other than a line break and the delimiter.
    /// Default `"`. A quote character inside a quoted value is written twice.
    #[serde(default)]
    pub quotechar: QuoteChar,
    /// Create missing parent directories of `path`. Default `true`; with `false` a missing
    /// directory is an error.
    #[serde(default = "yes")]
    pub create_dirs: bool,
    /// `true`: columns in byte-wise order of their names (upper case before lower case), as
    /// the Python Osiris wrote them. Default `false`: the table's own column order.
    #[serde(default)]
    pub sort_columns: bool,
    /// Accepted for compatibility with the Python Osiris; has no effect: DuckDB streams the
    /// table to the file in parallel chunks of its own.
    #[serde(default)]
    pub chunk_size: Option<u64>,
}

fn comma() -> CsvChar {
    CsvChar::COMMA
}

fn yes() -> bool {
    true
}

/// The transcoding of DuckDB's UTF-8 output a file in `encoding` needs, if any.
fn transcode_to(encoding: Encoding) -> Option<Target> {
    match encoding {
        Encoding::Utf8 => None,
        Encoding::Utf16 => Some(Target::Utf16),
        Encoding::Ascii => Some(Target::Ascii),
        Encoding::Latin1 => Some(Target::Latin1),
    }
}

/// Line terminator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Newline {
    /// `\n`.
    #[default]
    Lf,
    /// `\r\n`.
    Crlf,
}

/// Which fields are quoted with `"` (inner quotes are always doubled).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Quoting {
    /// Only fields that need it: containing the delimiter, a quote or a line break, and the
    /// empty string (so that it differs from NULL).
    #[default]
    Minimal,
    /// Every field except NULL, and the header.
    All,
    /// Every field except NULL of columns that are not numeric (integer, floating point or
    /// DECIMAL), and those columns' header names.
    Nonnumeric,
}

impl<'de> Deserialize<'de> for Quoting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match String::deserialize(deserializer)?.as_str() {
            "minimal" => Ok(Self::Minimal),
            "all" => Ok(Self::All),
            "nonnumeric" => Ok(Self::Nonnumeric),
            other => Err(de::Error::custom(format!(
                "unknown quoting {other:?}; supported are minimal, all and nonnumeric"
            ))),
        }
    }
}

#[async_trait]
impl Driver for CsvWriter {
    const NAME: &'static str = "filesystem.csv_writer";
    type Connection = FilesystemConnection;
    type Config = Config;

    async fn run(
        &self,
        ctx: &StepContext,
        connection: FilesystemConnection,
        config: Config,
        inputs: StepInputs,
    ) -> Result<StepOutput> {
        let plan = Plan::new(ctx, &connection, config)?;
        let path = plan.path.clone();
        reported_write(ctx, &path, inputs, move |conn, cancel, input| {
            plan.write(conn, input, cancel)
        })
        .await
    }
}

/// A validated configuration, ready to run.
#[derive(Debug)]
struct Plan {
    path: PathBuf,
    codec: Codec,
    config: Config,
}

impl Plan {
    fn new(ctx: &StepContext, connection: &FilesystemConnection, config: Config) -> Result<Self> {
        if config.path.is_empty() {
            return Err(DriverError::config("path", "must not be empty"));
        }
        let path = connection.resolve(ctx, &config.path);
        if path.file_name().is_none() {
            return Err(DriverError::config(
                "path",
                format!("{} does not name a file", path.display()),
            ));
        }
        if config.quotechar.byte() == config.delimiter.byte() {
            return Err(DriverError::config(
                "quotechar",
                "the quote character cannot be the delimiter",
            ));
        }
        if config.chunk_size.is_some() {
            ctx.warn_config(
                "chunk_size",
                "has no effect: DuckDB streams the table to the file in parallel chunks of its own",
            );
        }
        let codec = Codec::from_extension(&path);
        if codec != Codec::None && config.encoding != Encoding::Utf8 {
            return Err(DriverError::config(
                "encoding",
                format!(
                    "a compressed output ({}) can only be written as utf-8",
                    path.display()
                ),
            ));
        }
        Ok(Self {
            path,
            codec,
            config,
        })
    }

    /// Writes the file; returns the rows written and the file's size in bytes.
    fn write(
        &self,
        conn: &duckdb::Connection,
        table: &TableName,
        cancel: &CancellationToken,
    ) -> Result<(u64, u64)> {
        let dir = self.prepare_directory()?;
        let columns = table_columns(conn, table)?;
        let sql_for = |target: &Path| self.copy_sql(table, &columns, target);

        let copied = TempFile::new(&dir, &self.path);
        let rows = conn
            .execute(&sql_for(&copied.path), [])
            .map_err(|e| self.copy_error(e))? as u64;
        if cancel.is_cancelled() {
            return Err(DriverError::Cancelled);
        }
        let finished = match transcode_to(self.config.encoding) {
            None => copied,
            Some(target) => {
                let encoded = TempFile::new(&dir, &self.path);
                transcode_file(&copied.path, &encoded.path, target, cancel)
                    .map_err(|e| self.transcode_error(e))?;
                encoded
            }
        };
        let bytes = std::fs::metadata(&finished.path)
            .map(|m| m.len())
            .unwrap_or_default();
        if cancel.is_cancelled() {
            return Err(DriverError::Cancelled);
        }
        finished
            .persist(&self.path)
            .map_err(|e| write_error(format!("cannot replace {}", self.path.display()), e))?;
        Ok((rows, bytes))
    }

    /// Checks the target and returns its directory, created if allowed.
    fn prepare_directory(&self) -> Result<PathBuf> {
        if self.path.is_dir() {
            return Err(DriverError::config(
                "path",
                format!("{} is a directory; give a file name", self.path.display()),
            ));
        }
        prepare_directory(&self.path, self.config.create_dirs)
    }

    /// The `COPY` statement writing `columns` of `table` to `target`.
    fn copy_sql(&self, table: &TableName, columns: &[Column], target: &Path) -> String {
        let mut ordered: Vec<&Column> = columns.iter().collect();
        if self.config.sort_columns {
            ordered.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        }
        let select = ordered
            .iter()
            .map(|c| quote_identifier(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        let c = &self.config;
        let mut options = format!(
            "FORMAT csv, DELIMITER {delim}, HEADER {header}, QUOTE {quote}, ESCAPE {quote}, \
             NULLSTR '', NEW_LINE {newline}, COMPRESSION {codec}",
            delim = quote_literal(&c.delimiter.as_string()),
            quote = quote_literal(&c.quotechar.as_string()),
            header = c.header,
            newline = match c.newline {
                Newline::Lf => "'\\n'",
                Newline::Crlf => "'\\r\\n'",
            },
            codec = quote_literal(self.codec.duckdb_name()),
        );
        match c.quoting {
            Quoting::Minimal => {}
            Quoting::All => options.push_str(", FORCE_QUOTE *"),
            Quoting::Nonnumeric => {
                let quoted: Vec<String> = ordered
                    .iter()
                    .filter(|c| !is_numeric(&c.type_name))
                    .map(|c| quote_identifier(&c.name))
                    .collect();
                if !quoted.is_empty() {
                    options.push_str(&format!(", FORCE_QUOTE ({})", quoted.join(", ")));
                }
            }
        }
        format!(
            "COPY (SELECT {select} FROM {table}) TO {target} ({options})",
            target = quote_literal(&target.to_string_lossy())
        )
    }

    fn copy_error(&self, error: duckdb::Error) -> DriverError {
        copy_error(&self.path, error)
    }

    fn transcode_error(&self, error: TranscodeError) -> DriverError {
        let path = self.path.display();
        match error {
            TranscodeError::Unencodable { line, ch, encoding } => DriverError::data(format!(
                "{path} line {line}: character {ch:?} (U+{:04X}) cannot be written as {encoding}; choose encoding utf-8 or utf-16{}",
                u32::from(ch),
                if encoding == "ascii" && u32::from(ch) <= 0xFF {
                    " (or latin-1)"
                } else {
                    ""
                }
            )),
            TranscodeError::InvalidUtf8 { line } => DriverError::data(format!(
                "{path} line {line}: DuckDB wrote bytes that are not UTF-8 (a BLOB column?); they cannot be transcoded"
            )),
            TranscodeError::Io(e) => write_error(format!("cannot write {path}"), e),
            TranscodeError::Cancelled => DriverError::Cancelled,
        }
    }
}

/// A column of the input table.
#[derive(Debug)]
struct Column {
    name: String,
    type_name: String,
}

fn table_columns(conn: &duckdb::Connection, table: &TableName) -> Result<Vec<Column>> {
    let err = |e| DriverError::duckdb(format!("cannot read the columns of table {table}"), e);
    let mut stmt = conn.prepare(&format!("DESCRIBE {table}")).map_err(err)?;
    let columns = stmt
        .query_map([], |row| {
            Ok(Column {
                name: row.get(0)?,
                type_name: row.get(1)?,
            })
        })
        .map_err(err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    Ok(columns)
}

fn is_numeric(type_name: &str) -> bool {
    matches!(
        type_name,
        "TINYINT"
            | "SMALLINT"
            | "INTEGER"
            | "BIGINT"
            | "HUGEINT"
            | "UTINYINT"
            | "USMALLINT"
            | "UINTEGER"
            | "UBIGINT"
            | "UHUGEINT"
            | "FLOAT"
            | "DOUBLE"
    ) || type_name.starts_with("DECIMAL")
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use driver_api::ErrorClass;
    use driver_api::testing::TestRun;
    use serde_json::{Value, json};

    use super::*;
    use crate::CsvExtractor;

    const STEP: &str = "write-csv";

    fn setup(create: &str) -> (tempfile::TempDir, TestRun) {
        let dir = tempfile::tempdir().unwrap();
        let run = TestRun::new(dir.path());
        run.connection().execute_batch(create).unwrap();
        (dir, run)
    }

    async fn write(run: &TestRun, config: Value) -> Result<StepOutput> {
        run.run(&CsvWriter, STEP, config, &["src"]).await
    }

    /// Writes table `src` with `config` (plus `path: out.csv`) and returns the file's bytes.
    async fn written(run: &TestRun, dir: &Path, mut config: Value) -> Vec<u8> {
        config["path"] = json!("out.csv");
        write(run, config).await.unwrap();
        std::fs::read(dir.join("out.csv")).unwrap()
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    /// Files in `dir` whose name marks them as our temporary files.
    fn temp_files(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".osiris-tmp"))
            .collect()
    }

    const SMALL: &str =
        "CREATE TABLE src AS SELECT * FROM (VALUES (1, 'x'), (NULL, NULL)) v(id, s)";

    #[tokio::test]
    async fn values_are_written_exactly() {
        let (dir, run) = setup(
            "CREATE TABLE src AS SELECT * FROM (VALUES
               (1, 'plain', 'say \"hi\"', 'a,b', '', 1.50::DECIMAL(10,2), 2.5::DOUBLE, true,
                DATE '2024-01-02', TIMESTAMP '2024-01-02 03:04:05',
                TIMESTAMP '2024-01-02 03:04:05.12', TIMESTAMPTZ '2024-01-02 03:04:05+02',
                'two' || chr(10) || 'lines'),
               (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
             ) v(id, s, q, d, e, \"dec\", dbl, b, day, ts, tsf, tz, nl)",
        );
        let out = write(&run, json!({"path": "out.csv"})).await.unwrap();
        assert_eq!(out, StepOutput::written(2));
        assert_eq!(
            text(std::fs::read(dir.path().join("out.csv")).unwrap()),
            "id,s,q,d,e,dec,dbl,b,day,ts,tsf,tz,nl\n\
             1,plain,\"say \"\"hi\"\"\",\"a,b\",\"\",1.50,2.5,true,2024-01-02,2024-01-02 03:04:05,\
             2024-01-02 03:04:05.12,2024-01-02 01:04:05+00,\"two\nlines\"\n\
             2,,,,,,,,,,,,\n"
        );
        assert!(temp_files(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn delimiter_header_and_newline_options() {
        let (dir, run) =
            setup("CREATE TABLE src AS SELECT * FROM (VALUES (1, 'a;b', 'c,d')) v(id, s, t)");
        assert_eq!(
            text(written(&run, dir.path(), json!({"delimiter": ";"})).await),
            "id;s;t\n1;\"a;b\";c,d\n"
        );
        assert_eq!(
            text(
                written(
                    &run,
                    dir.path(),
                    json!({"delimiter": "\t", "header": false})
                )
                .await
            ),
            "1\ta;b\tc,d\n"
        );
        assert_eq!(
            text(written(&run, dir.path(), json!({"newline": "crlf"})).await),
            "id,s,t\r\n1,a;b,\"c,d\"\r\n"
        );
    }

    #[tokio::test]
    async fn quoting_all_and_nonnumeric() {
        let (dir, run) = setup(
            "CREATE TABLE src AS SELECT * FROM (VALUES
               (1, 'x', 1.50::DECIMAL(4,2), 0.5::DOUBLE, DATE '2024-01-02', true),
               (NULL, NULL, NULL, NULL, NULL, NULL)
             ) v(id, s, amount, f, day, b)",
        );
        assert_eq!(
            text(written(&run, dir.path(), json!({"quoting": "all"})).await),
            "\"id\",\"s\",\"amount\",\"f\",\"day\",\"b\"\n\
             \"1\",\"x\",\"1.50\",\"0.5\",\"2024-01-02\",\"true\"\n,,,,,\n"
        );
        assert_eq!(
            text(written(&run, dir.path(), json!({"quoting": "nonnumeric"})).await),
            "id,\"s\",amount,f,\"day\",\"b\"\n1,\"x\",1.50,0.5,\"2024-01-02\",\"true\"\n,,,,,\n"
        );
    }

    #[tokio::test]
    async fn sort_columns_orders_names_byte_wise() {
        let (dir, run) = setup("CREATE TABLE src AS SELECT 1 AS b, 2 AS a, 3 AS \"C\", 4 AS _x");
        assert_eq!(
            text(written(&run, dir.path(), json!({})).await),
            "b,a,C,_x\n1,2,3,4\n"
        );
        assert_eq!(
            text(written(&run, dir.path(), json!({"sort_columns": true})).await),
            "C,_x,a,b\n3,4,2,1\n"
        );
    }

    #[tokio::test]
    async fn latin1_ascii_and_utf16_bytes() {
        let (dir, run) = setup("CREATE TABLE src AS SELECT 'José' AS name");
        assert_eq!(
            written(&run, dir.path(), json!({"encoding": "latin-1"})).await,
            b"name\nJos\xE9\n"
        );
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend("name\nJosé\n".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(
            written(&run, dir.path(), json!({"encoding": "utf-16"})).await,
            utf16
        );
        run.connection()
            .execute_batch("CREATE OR REPLACE TABLE src AS SELECT 'plain' AS name")
            .unwrap();
        assert_eq!(
            written(&run, dir.path(), json!({"encoding": "ascii"})).await,
            b"name\nplain\n"
        );
        assert!(temp_files(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn unencodable_character_fails_and_leaves_the_target_untouched() {
        let (dir, run) =
            setup("CREATE TABLE src AS SELECT * FROM (VALUES ('a'), ('price 5 €')) v(note)");
        let target = dir.path().join("out.csv");
        std::fs::write(&target, "previous content\n").unwrap();
        let error = write(&run, json!({"path": "out.csv", "encoding": "latin-1"}))
            .await
            .unwrap_err();
        assert_eq!(error.class(), ErrorClass::Data);
        assert_eq!(
            error.to_string(),
            format!(
                "{} line 3: character '€' (U+20AC) cannot be written as latin-1; choose encoding utf-8 or utf-16",
                target.display()
            )
        );
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "previous content\n"
        );
        assert!(temp_files(dir.path()).is_empty(), "temporary files removed");
    }

    #[tokio::test]
    async fn missing_directory_is_created_unless_create_dirs_is_false() {
        let (dir, run) = setup(SMALL);
        let error = write(
            &run,
            json!({"path": "missing/out.csv", "create_dirs": false}),
        )
        .await
        .unwrap_err();
        assert_eq!(error.class(), ErrorClass::Io);
        assert!(
            error.to_string().contains("create_dirs is false"),
            "{error}"
        );
        assert!(!dir.path().join("missing").exists());

        write(&run, json!({"path": "new/sub/out.csv"}))
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("new/sub/out.csv")).unwrap(),
            "id,s\n1,x\n,\n"
        );
    }

    #[tokio::test]
    async fn empty_table_writes_only_the_header() {
        let (dir, run) = setup("CREATE TABLE src (id INTEGER, \"odd, name\" VARCHAR)");
        assert_eq!(
            text(written(&run, dir.path(), json!({})).await),
            "id,\"odd, name\"\n"
        );
    }

    #[tokio::test]
    async fn quotechar_sets_the_quote_character() {
        let (dir, run) = setup(
            "CREATE TABLE src AS SELECT * FROM (VALUES (1, 'a,b', 'it''s'), (2, 'plain', NULL)) v(id, s, t)",
        );
        assert_eq!(
            text(written(&run, dir.path(), json!({"quotechar": "'"})).await),
            "id,s,t\n1,'a,b','it''s'\n2,plain,\n"
        );
        assert_eq!(
            text(written(&run, dir.path(), json!({"quotechar": "\""})).await),
            "id,s,t\n1,\"a,b\",it's\n2,plain,\n"
        );
        let error = write(&run, json!({"path": "x.csv", "quotechar": ","}))
            .await
            .unwrap_err();
        assert_eq!(error.class(), ErrorClass::Config);
    }

    #[tokio::test]
    async fn chunk_size_is_accepted_with_a_warning() {
        let (dir, run) = setup(SMALL);
        written(&run, dir.path(), json!({"chunk_size": 500})).await;
        let events = std::fs::read_to_string(dir.path().join("session/events.jsonl")).unwrap();
        assert!(
            events
                .lines()
                .any(|l| l.contains("\"event\":\"config.warning\"")
                    && l.contains("\"key\":\"chunk_size\"")),
            "{events}"
        );
    }

    #[tokio::test]
    async fn a_directory_without_write_permission_is_a_config_error_naming_the_path() {
        let (_dir, run) = setup(SMALL);
        // /sys refuses new files even to root, so this holds whoever runs the tests.
        let error = write(&run, json!({"path": "/sys/osiris-test-out.csv"}))
            .await
            .unwrap_err();
        assert_eq!(error.class(), ErrorClass::Config, "{error}");
        let message = error.to_string();
        assert!(
            message.contains("cannot write /sys/osiris-test-out.csv: permission denied"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn directory_target_is_a_config_error() {
        let (dir, run) = setup(SMALL);
        std::fs::create_dir(dir.path().join("out.csv")).unwrap();
        let error = write(&run, json!({"path": "out.csv"})).await.unwrap_err();
        assert_eq!(error.class(), ErrorClass::Config);
    }

    #[tokio::test]
    async fn gz_target_is_compressed() {
        let (dir, run) = setup(SMALL);
        write(&run, json!({"path": "out.csv.gz"})).await.unwrap();
        let mut content = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(dir.path().join("out.csv.gz")).unwrap())
            .read_to_string(&mut content)
            .unwrap();
        assert_eq!(content, "id,s\n1,x\n,\n");
        let error = write(&run, json!({"path": "out.csv.gz", "encoding": "latin-1"}))
            .await
            .unwrap_err();
        assert_eq!(error.class(), ErrorClass::Config);
    }

    #[tokio::test]
    async fn extract_then_write_reproduces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let run = TestRun::new(dir.path());
        // Values in DuckDB's canonical form round-trip byte for byte; `dtype` keeps the
        // trailing zero of an amount that would otherwise be read as DOUBLE.
        let original = "id,name,amount,price,day,at,flag,note\n\
                        1,\"Smith, Jo\",1.50,2.5,2024-01-02,2024-01-02 03:04:05,true,\"say \"\"hi\"\"\"\n\
                        2,,-3.25,-0.125,2024-02-29,2024-02-29 23:59:59.5,false,\"\"\n\
                        3,\"two\nlines\",,,,,,\n";
        std::fs::write(dir.path().join("in.csv"), original).unwrap();
        run.run(
            &CsvExtractor,
            "src",
            json!({"path": "in.csv", "dtype": {"amount": "DECIMAL(10,2)"}}),
            &[],
        )
        .await
        .unwrap();
        write(&run, json!({"path": "out.csv"})).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out.csv")).unwrap(),
            original
        );
    }

    #[tokio::test]
    async fn rows_written_metric_and_events() {
        let (dir, run) = setup(SMALL);
        write(&run, json!({"path": "out.csv"})).await.unwrap();
        let session = dir.path().join("session");
        let events = std::fs::read_to_string(session.join("events.jsonl")).unwrap();
        assert!(events.contains("\"event\":\"write.start\""), "{events}");
        assert!(events.contains("\"event\":\"write.complete\""), "{events}");
        let metrics = std::fs::read_to_string(session.join("metrics.jsonl")).unwrap();
        assert!(
            metrics
                .lines()
                .any(|l| l.contains("\"metric\":\"rows_written\"") && l.contains("\"value\":2")),
            "{metrics}"
        );
    }

    /// The spec's `configSchema` and this `Config` describe the same fields, and every spec
    /// example is a valid `Config`.
    #[test]
    fn spec_and_config_agree() {
        driver_api::testing::assert_spec_matches::<CsvWriter>();
    }
}
