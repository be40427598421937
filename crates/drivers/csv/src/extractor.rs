//! `filesystem.csv_extractor`: one CSV file into the step's table.
//!
//! The whole load is one statement, `CREATE TABLE <step> AS SELECT ... FROM read_csv(...)`,
//! inside a transaction (so a failed read leaves no table): DuckDB's reader parses the file in
//! parallel, detects column types from a sample and writes the table without any row passing
//! through Rust. Every dialect option is passed explicitly (delimiter, quote, escape, header,
//! skip, comment), because DuckDB's sniffer otherwise guesses them: it silently drops lines
//! starting with `#` and reads a ragged file as one column. A `DESCRIBE` of the same
//! `read_csv(...)` runs first only when column names are needed (`header: false`, `columns`,
//! `dtype`, `parse_dates`). Errors are explained by the `diagnose` module.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU64;
use std::path::PathBuf;

use async_trait::async_trait;
use driver_api::{
    Driver, DriverError, Result, StepContext, StepInputs, StepOutput, TableName, quote_identifier,
    quote_literal, replace_table_as,
};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use tokio_util::sync::CancellationToken;

use crate::FilesystemConnection;
use crate::diagnose::{Dialect, Scan, Start, explain, is_csv_error, probe, scan, too_short};
use crate::encoding::{InvalidUtf16, decode_utf16_file};
use crate::files::{
    Materialize, bind_while_fingerprinting, check_columns, drop_view, fell_back_to_table,
    input_file_size, replace_view_as, reported_extract,
};
use crate::options::{Codec, CsvChar, Encoding, reject_glob_characters};

/// The `filesystem.csv_extractor` driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct CsvExtractor;

/// Configuration of a `filesystem.csv_extractor` step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The CSV file. Relative paths resolve against the pipeline file's directory.
    pub path: String,
    /// Field delimiter: one ASCII character. Default `,`.
    #[serde(default = "comma")]
    pub delimiter: CsvChar,
    /// Text encoding of the file. Default `utf-8`.
    #[serde(default)]
    pub encoding: Encoding,
    /// `true` (default): the first row (after `skip_rows`) names the columns. `false`: there is
    /// no header and the columns are named `"0"`, `"1"`, ... An integer `N`: the `N`-th line
    /// after `skip_rows` (0-based) is the header and the lines before it are skipped.
    #[serde(default)]
    pub header: Header,
    /// Columns to keep, in this order (select and reorder). Default: all, in file order.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Physical lines skipped at the start of the file, before the header. Default 0.
    #[serde(default)]
    pub skip_rows: u64,
    /// Read at most this many data rows (at least 1). Default: all.
    #[serde(default)]
    pub limit: Option<NonZeroU64>,
    /// Extra unquoted values read as NULL (e.g. `NA`). An empty unquoted field is always NULL;
    /// a quoted empty field (`""`) is an empty string.
    #[serde(default)]
    pub na_values: Vec<String>,
    /// Lines starting with this ASCII character are skipped. Default: none (a line starting
    /// with `#` is data).
    #[serde(default)]
    pub comment: Option<CsvChar>,
    /// Compression of the file. Default `infer` (from the extension: `.gz` gzip, `.zst` zstd,
    /// `.bz2` bzip2, `.xz` xz, `.zip` a zip archive holding one file).
    #[serde(default)]
    pub compression: Compression,
    /// Blank lines are skipped. `false` is accepted with a warning and has no effect: DuckDB's
    /// reader always skips them (in a one-column file a blank line reads as NULL).
    #[serde(default = "yes")]
    pub skip_blank_lines: bool,
    /// The longest line (record) accepted, in bytes; default 2,000,000 (DuckDB's default). A
    /// longer line fails the step naming it; the limit also bounds every read of the file
    /// before DuckDB's.
    #[serde(default)]
    pub max_line_size: Option<NonZeroU64>,
    /// Column types by column name: DuckDB type names (`VARCHAR`, `BIGINT`, `DECIMAL(12,2)`,
    /// `DATE`, ...) or pandas dtype names (`float64`, `int64`, `Int64`, `str`, `object`,
    /// `string`, `bool`, `category`, `datetime64[ns]`; see [`duckdb_type`]). Columns not listed
    /// get the type DuckDB detects from a sample of the file. With `header: false` the names
    /// are `"0"`, `"1"`, ...
    #[serde(default)]
    pub dtype: BTreeMap<String, String>,
    /// Date detection. Absent or `true`: columns that look like dates, times or timestamps get
    /// those types. `false`: no date detection, such columns stay VARCHAR (pandas' default).
    /// A list of column names: those columns are read as TIMESTAMP, the rest detected.
    #[serde(default)]
    pub parse_dates: Option<ParseDates>,
    /// Accepted for compatibility with the Python Osiris; has no effect: DuckDB reads the
    /// whole file in parallel chunks of its own.
    #[serde(default)]
    pub chunk_size: Option<u64>,
    /// `view` (default): the step is a view over the file; nothing is read until a later step
    /// reads it, and then only the columns and rows it needs (ADR 0036). `table`: every row is
    /// read, checked and kept in the step's table now. UTF-16, bz2, xz and zip input is always
    /// kept as a table (DuckDB reads a decoded scratch copy that the run removes).
    #[serde(default)]
    pub materialize: Materialize,
}

fn comma() -> CsvChar {
    CsvChar::COMMA
}

fn yes() -> bool {
    true
}

/// DuckDB's default `max_line_size`.
const DEFAULT_MAX_LINE_SIZE: u64 = 2_000_000;

/// The DuckDB type for a `dtype` value: pandas dtype names (what Python Osiris pipelines use)
/// map to the DuckDB type holding the same values; anything else is taken as a DuckDB type name.
pub fn duckdb_type(dtype: &str) -> &str {
    match dtype {
        "float64" | "float" | "Float64" => "DOUBLE",
        "float32" | "Float32" => "FLOAT",
        "int64" | "Int64" | "int" => "BIGINT",
        "int32" | "Int32" => "INTEGER",
        "int16" | "Int16" => "SMALLINT",
        "int8" | "Int8" => "TINYINT",
        // pandas' `category` holds labels; an ENUM would need its values up front.
        "str" | "object" | "string" | "category" => "VARCHAR",
        "bool" | "boolean" => "BOOLEAN",
        "datetime64[ns]" | "datetime64" | "datetime64[us]" | "datetime64[ms]" | "datetime64[s]" => {
            "TIMESTAMP"
        }
        other => other,
    }
}

/// The encoding DuckDB reads: UTF-16 is decoded to a UTF-8 copy beforehand, ASCII is read as
/// its superset UTF-8.
fn duckdb_encoding(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Utf8 | Encoding::Ascii | Encoding::Utf16 => "utf-8",
        Encoding::Latin1 => "latin-1",
    }
}

/// Compression of the input file. DuckDB reads gzip and zstd itself; bz2, xz and zip are
/// decompressed in a stream into a plain scratch copy first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    /// From the file name: `.gz`, `.zst`, `.bz2`, `.xz`, `.zip`; anything else plain.
    #[default]
    Infer,
    /// A known codec (or plain text).
    Codec(Codec),
}

impl<'de> Deserialize<'de> for Compression {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        match name.as_str() {
            "infer" => Ok(Self::Infer),
            "none" => Ok(Self::Codec(Codec::None)),
            "gzip" => Ok(Self::Codec(Codec::Gzip)),
            "zstd" => Ok(Self::Codec(Codec::Zstd)),
            "bz2" => Ok(Self::Codec(Codec::Bzip2)),
            "xz" => Ok(Self::Codec(Codec::Xz)),
            "zip" => Ok(Self::Codec(Codec::Zip)),
            _ => Err(de::Error::custom(format!(
                "unknown compression {name:?}; supported are infer, none, gzip, zstd, bz2, xz and zip"
            ))),
        }
    }
}

/// The decompressed bytes of an opened input file: a failure to read them is a failure to
/// decompress (the file itself opened), told apart from failures writing the scratch copy.
struct Decompressed<'a>(&'a mut dyn std::io::Read);

impl std::io::Read for Decompressed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf).map_err(|error| match error.kind() {
            std::io::ErrorKind::Interrupted | std::io::ErrorKind::UnexpectedEof => error,
            _ if error.get_ref().is_some_and(|e| e.is::<InvalidUtf16>()) => error,
            _ => std::io::Error::new(std::io::ErrorKind::InvalidData, error),
        })
    }
}

/// Which row holds the column names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// No header: columns are named `"0"`, `"1"`, ... (`header: false`).
    None,
    /// The header is this line (0-based) after `skip_rows`; `true` is line 0.
    Row(u64),
}

impl Default for Header {
    fn default() -> Self {
        Self::Row(0)
    }
}

impl<'de> Deserialize<'de> for Header {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeaderVisitor;
        impl Visitor<'_> for HeaderVisitor {
            type Value = Header;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or a non-negative row index")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Header, E> {
                Ok(if v { Header::Row(0) } else { Header::None })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Header, E> {
                Ok(Header::Row(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Header, E> {
                u64::try_from(v)
                    .map(Header::Row)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
        }
        deserializer.deserialize_any(HeaderVisitor)
    }
}

/// The `parse_dates` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseDates {
    /// `true`: detect date/time columns; `false`: do not.
    Detect(bool),
    /// Read these columns as TIMESTAMP.
    Columns(Vec<String>),
}

impl<'de> Deserialize<'de> for ParseDates {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ParseDatesVisitor;
        impl<'de> Visitor<'de> for ParseDatesVisitor {
            type Value = ParseDates;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or a list of column names")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ParseDates, E> {
                Ok(ParseDates::Detect(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ParseDates, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(ParseDates::Columns(names))
            }
        }
        deserializer.deserialize_any(ParseDatesVisitor)
    }
}

#[async_trait]
impl Driver for CsvExtractor {
    const NAME: &'static str = "filesystem.csv_extractor";
    type Connection = FilesystemConnection;
    type Config = Config;

    async fn run(
        &self,
        ctx: &StepContext,
        connection: FilesystemConnection,
        config: Config,
        _inputs: StepInputs,
    ) -> Result<StepOutput> {
        let plan = Plan::new(ctx, &connection, config)?;
        if let Some(reason) = plan.table_instead_of_view() {
            fell_back_to_table(ctx, reason);
        }
        let path = plan.dialect.path.display().to_string();
        reported_extract(ctx, path, move |conn, cancel, table| {
            plan.extract(conn, table, cancel)
        })
        .await
    }
}

/// A validated configuration, ready to run.
#[derive(Debug)]
struct Plan {
    dialect: Dialect,
    /// UTF-16 input is decoded into a UTF-8 copy in this directory first, and bz2, xz and zip
    /// input decompressed into a plain copy.
    utf16: bool,
    scratch_dir: PathBuf,
    duckdb_encoding: &'static str,
    columns: Option<Vec<String>>,
    limit: Option<NonZeroU64>,
    nullstr: Vec<String>,
    dtype: BTreeMap<String, String>,
    parse_dates: Option<ParseDates>,
    materialize: Materialize,
}

/// The date format `sniff_csv` reports for ISO dates, which DuckDB's reader casts instead.
const ISO_DATE: &str = "%Y-%m-%d";

/// DuckDB's sniffer's decisions for one `read_csv(...)`: the columns in file order with their
/// types, and the date/timestamp formats it detected.
#[derive(Debug)]
struct Sniffed {
    columns: Vec<(String, String)>,
    dateformat: Option<String>,
    timestampformat: Option<String>,
}

impl Plan {
    /// Why a step asked for a view is kept as a table (the view would read another file than
    /// the one DuckDB can read correctly), or `None`.
    fn table_instead_of_view(&self) -> Option<&'static str> {
        if self.materialize != Materialize::View {
            None
        } else if self.utf16 {
            Some("utf-16 input is decoded into a scratch copy that the run removes")
        } else if !self.dialect.codec.duckdb_reads() {
            Some("bz2, xz and zip input is decompressed into a scratch copy that the run removes")
        } else {
            None
        }
    }

    /// Whether the step becomes a view.
    fn as_view(&self) -> bool {
        self.materialize == Materialize::View && self.table_instead_of_view().is_none()
    }

    fn new(ctx: &StepContext, connection: &FilesystemConnection, config: Config) -> Result<Self> {
        if config.path.is_empty() {
            return Err(DriverError::config("path", "must not be empty"));
        }
        // Absolute: a view keeps the path, and must read the same file after the run.
        let path = connection.resolve(ctx, &config.path);
        let path = std::path::absolute(&path).unwrap_or(path);
        reject_glob_characters(&path).map_err(|m| DriverError::config("path", m))?;
        if config.comment == Some(config.delimiter) {
            return Err(DriverError::config(
                "comment",
                "the comment prefix cannot be the delimiter",
            ));
        }
        check_columns(config.columns.as_deref())?;
        if let Some(ParseDates::Columns(dates)) = &config.parse_dates
            && let Some(both) = dates.iter().find(|c| config.dtype.contains_key(*c))
        {
            return Err(DriverError::config(
                "parse_dates",
                format!("column {both:?} also has a type in `dtype`; keep one of the two"),
            ));
        }
        let (header, skip_header) = match config.header {
            Header::None => (false, 0),
            Header::Row(n) => (true, n),
        };
        let codec = match config.compression {
            Compression::Infer => Codec::from_extension_any(&path),
            Compression::Codec(codec) => codec,
        };
        if !config.skip_blank_lines {
            ctx.warn_config(
                "skip_blank_lines",
                "false has no effect: DuckDB's CSV reader always skips blank lines",
            );
        }
        if config.chunk_size.is_some() {
            ctx.warn_config(
                "chunk_size",
                "has no effect: DuckDB reads the whole file in parallel chunks of its own",
            );
        }
        let dtype = config
            .dtype
            .into_iter()
            .map(|(column, ty)| {
                let ty = duckdb_type(&ty).to_owned();
                (column, ty)
            })
            .collect();
        let mut nullstr = vec![String::new()];
        nullstr.extend(config.na_values.into_iter().filter(|v| !v.is_empty()));
        Ok(Self {
            dialect: Dialect {
                shown: path.clone(),
                path,
                codec,
                encoding: config.encoding.name(),
                delimiter: config.delimiter.byte(),
                comment: config.comment.map(CsvChar::byte),
                skip_lines: config.skip_rows.saturating_add(skip_header),
                header,
                max_line_size: config
                    .max_line_size
                    .map_or(DEFAULT_MAX_LINE_SIZE, NonZeroU64::get),
            },
            utf16: config.encoding == Encoding::Utf16,
            scratch_dir: ctx.artifacts_dir().to_owned(),
            duckdb_encoding: duckdb_encoding(config.encoding),
            columns: config.columns,
            limit: config.limit,
            nullstr,
            dtype,
            parse_dates: config.parse_dates,
            materialize: config.materialize,
        })
    }

    /// Creates the step's table or view; returns the table's row count (`None` for a view: no
    /// row was read) and the file's size in bytes.
    fn extract(
        &self,
        conn: &duckdb::Connection,
        table: &TableName,
        cancel: &CancellationToken,
    ) -> Result<(Option<u64>, u64)> {
        let path = &self.dialect.path;
        let size = input_file_size(path, "CSV")?;
        drop_view(conn, table)?;
        let copy = if self.utf16 || !self.dialect.codec.duckdb_reads() {
            Some(self.plain_copy()?)
        } else {
            None
        };
        let mut reading = match &copy {
            Some(copy) => Dialect {
                path: copy.to_path_buf(),
                codec: Codec::None,
                ..self.dialect.clone()
            },
            None => self.dialect.clone(),
        };
        match probe(&reading) {
            Start::Empty => return self.extract_empty(conn, table).map(|rows| (Some(rows), 0)),
            Start::TooShort { lines } => return Err(too_short(&self.dialect, lines)),
            Start::LineTooLong { line } => {
                return Err(DriverError::data(format!(
                    "{} line {line}: longer than `max_line_size` ({} bytes); if the file is right, raise `max_line_size`",
                    self.dialect.shown.display(),
                    self.dialect.max_line_size
                )));
            }
            Start::Content { blank_lines } => reading.skip_lines += blank_lines,
        }
        let explained = |error| match error {
            DriverError::DuckDb { source, .. } => explain(source, &reading),
            other => other,
        };
        if self.as_view() {
            // Strict mode, like the table's first read: DuckDB binds the view now (the header,
            // the sniffed types, `columns`), and reads the rows when the view is read.
            let (query, record) =
                bind_while_fingerprinting("csv", std::slice::from_ref(path), cancel, || {
                    self.view_query(conn, &reading).map_err(explained)
                })?;
            if cancel.is_cancelled() {
                return Err(DriverError::Cancelled);
            }
            replace_view_as(conn, table, &query, &record).map_err(explained)?;
            return Ok((None, size));
        }
        let rows = match self.load(conn, table, &reading, cancel, true) {
            // DuckDB's strict mode refuses a file whose records end in both LF and CRLF; when
            // our own scan finds it otherwise well-formed, it is read again without strict mode.
            Err(DriverError::DuckDb { source, .. })
                if is_csv_error(&source)
                    && matches!(
                        scan(&reading),
                        Ok(Scan::Consistent {
                            mixed_line_breaks: true
                        })
                    ) =>
            {
                self.load(conn, table, &reading, cancel, false)
                    .map_err(explained)?
            }
            other => other.map_err(explained)?,
        };
        Ok((Some(rows), size))
    }

    /// Creates the step table with DuckDB's reader (`strict`: DuckDB's `strict_mode`); DuckDB's
    /// own errors come back unexplained.
    fn load(
        &self,
        conn: &duckdb::Connection,
        table: &TableName,
        reading: &Dialect,
        cancel: &CancellationToken,
        strict: bool,
    ) -> Result<u64> {
        let query = self.query(conn, reading, strict)?;
        if cancel.is_cancelled() {
            return Err(DriverError::Cancelled);
        }
        replace_table_as(conn, table, &query)
    }

    /// The one query reading the file into the step, the same for a table and a view (so both
    /// give the same columns, types and values).
    fn query(&self, conn: &duckdb::Connection, reading: &Dialect, strict: bool) -> Result<String> {
        let names = if self.needs_names() {
            Some(self.describe(conn, reading, strict)?)
        } else {
            None
        };
        let (select, types) = self.projection(names.as_deref())?;
        let mut query = format!(
            "SELECT {select} FROM {}",
            self.read_csv(reading, &types, strict)
        );
        if let Some(limit) = self.limit {
            query.push_str(&format!(" LIMIT {limit}"));
        }
        Ok(query)
    }

    /// The view's query: [`query`](Self::query) with DuckDB's sniffing done once, now. The
    /// `read_csv(...)` call carries the columns with the types the sniffer chose (and the date
    /// and timestamp formats it found), with `auto_detect = false`: every later read of the
    /// view (the next step, `sessions query`, a replay) binds it without sniffing the file
    /// again, which costs as much as a small query (tens of milliseconds at 1M rows), and
    /// gives the types the step had when it ran.
    fn view_query(&self, conn: &duckdb::Connection, reading: &Dialect) -> Result<String> {
        let names = if self.needs_names() {
            Some(self.describe(conn, reading, true)?)
        } else {
            None
        };
        let (select, types) = self.projection(names.as_deref())?;
        let sniffed = self.sniff(conn, reading, &types)?;
        let mut query = format!(
            "SELECT {select} FROM {}",
            self.read_csv_as(reading, &[], true, Some(&sniffed))
        );
        if let Some(limit) = self.limit {
            query.push_str(&format!(" LIMIT {limit}"));
        }
        Ok(query)
    }

    /// What DuckDB's sniffer decides for the step's `read_csv(...)` (`sniff_csv` with the same
    /// options, strict).
    fn sniff(
        &self,
        conn: &duckdb::Connection,
        reading: &Dialect,
        types: &[(String, String)],
    ) -> Result<Sniffed> {
        let call = self.read_csv(reading, types, true);
        let call = call
            .strip_prefix("read_csv(")
            .expect("read_csv() builds a read_csv call");
        let sql = format!(
            "SELECT to_json(Columns)::VARCHAR, DateFormat, TimestampFormat FROM sniff_csv({call}"
        );
        let explain = |e| DriverError::duckdb("cannot read the CSV header", e);
        let (columns, dateformat, timestampformat): (String, Option<String>, Option<String>) = conn
            .query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(explain)?;
        #[derive(Deserialize)]
        struct Column {
            name: String,
            r#type: String,
        }
        let columns: Vec<Column> = serde_json::from_str(&columns).map_err(|e| {
            DriverError::data(format!("DuckDB's sniffer gave unreadable columns: {e}"))
        })?;
        Ok(Sniffed {
            columns: columns.into_iter().map(|c| (c.name, c.r#type)).collect(),
            // `sniff_csv` names ISO dates `%Y-%m-%d`, but DuckDB's own read does not apply that
            // format: it casts them, which also takes `2024/01/02` or `2024-01-02 00:00:00`
            // past the sample. Pinned, the format refused those rows (a view then differed
            // from the table of the same file) and cost 8% of a 1M-row aggregate through the
            // view (0.243 s against 0.225 s).
            dateformat: dateformat.filter(|format| format != ISO_DATE),
            timestampformat,
        })
    }

    /// Writes the input as plain text into a scratch copy (removed when dropped): decompresses
    /// bz2, xz and zip, which DuckDB cannot read, and decodes UTF-16, which DuckDB 1.5 reads
    /// wrongly (it rejects characters beyond U+FFFF and reads big-endian files as empty). Both
    /// stream: memory stays bounded whatever the file's size.
    fn plain_copy(&self) -> Result<tempfile::TempPath> {
        let shown = self.dialect.shown.display();
        let copy = tempfile::Builder::new()
            .prefix("plain-copy-")
            .suffix(".csv")
            .tempfile_in(&self.scratch_dir)
            .map_err(|e| DriverError::io(format!("cannot read {shown}: no scratch file"), e))?
            .into_temp_path();
        let codec = self.dialect.codec;
        let result = self.dialect.with_bytes(|input| {
            let mut input = Decompressed(input);
            if self.utf16 {
                decode_utf16_file(&mut input, &copy)
            } else {
                let mut out = std::io::BufWriter::new(std::fs::File::create(&copy)?);
                std::io::copy(&mut input, &mut out)?;
                std::io::Write::flush(&mut out)
            }
        });
        result.map_err(|error| {
            if let Some(invalid) = error.get_ref().and_then(|e| e.downcast_ref::<InvalidUtf16>()) {
                return DriverError::data(format!(
                    "{shown} line {}: the bytes are not valid utf-16; set `encoding` to the file's encoding (utf-8, utf-16 or latin-1)",
                    invalid.line
                ));
            }
            let decompressing = matches!(
                error.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            );
            if decompressing && codec != Codec::None {
                DriverError::data(format!(
                    "{shown}: cannot read it as {}: {error}; check `compression`",
                    codec.name()
                ))
            } else {
                DriverError::io(format!("cannot read input file {shown}"), error)
            }
        })?;
        Ok(copy)
    }

    /// An empty file becomes an empty table when `columns` names its columns.
    fn extract_empty(&self, conn: &duckdb::Connection, table: &TableName) -> Result<u64> {
        let Some(columns) = &self.columns else {
            return Err(DriverError::data(format!(
                "{} is empty (no header, no rows); to get an empty table, name its columns in `columns`",
                self.dialect.shown.display()
            )));
        };
        let select = columns
            .iter()
            .map(|c| format!("CAST(NULL AS VARCHAR) AS {}", quote_identifier(c)))
            .collect::<Vec<_>>()
            .join(", ");
        replace_table_as(conn, table, &format!("SELECT {select} LIMIT 0"))
    }

    fn needs_names(&self) -> bool {
        !self.dialect.header
            || self.columns.is_some()
            || !self.dtype.is_empty()
            || matches!(self.parse_dates, Some(ParseDates::Columns(_)))
    }

    /// The column names DuckDB gives the file (`column0`, ... without a header).
    fn describe(
        &self,
        conn: &duckdb::Connection,
        reading: &Dialect,
        strict: bool,
    ) -> Result<Vec<String>> {
        let sql = format!(
            "DESCRIBE SELECT * FROM {}",
            self.read_csv(reading, &[], strict)
        );
        let explain = |e| DriverError::duckdb("cannot read the CSV header", e);
        let mut stmt = conn.prepare(&sql).map_err(explain)?;
        let names = stmt
            .query_map([], |row| row.get::<_, String>(0))
            .map_err(explain)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(explain)?;
        Ok(names)
    }

    /// The SELECT list and the `types` option, from the names DuckDB gives the columns.
    fn projection(&self, names: Option<&[String]>) -> Result<(String, Vec<(String, String)>)> {
        let Some(names) = names else {
            return Ok(("*".into(), Vec::new()));
        };
        // What the user calls each column: its header name, or its position without a header.
        let visible: Vec<String> = if self.dialect.header {
            names.to_vec()
        } else {
            (0..names.len()).map(|i| i.to_string()).collect()
        };
        let duckdb_name = |key: &str, name: &str| -> Result<&String> {
            visible
                .iter()
                .position(|v| v == name)
                .map(|i| &names[i])
                .ok_or_else(|| {
                    DriverError::config(
                        key,
                        format!(
                            "{} has no column {name:?}; its columns are {}",
                            self.dialect.shown.display(),
                            visible
                                .iter()
                                .map(|v| format!("{v:?}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })
        };
        let mut types = Vec::new();
        for (column, ty) in &self.dtype {
            types.push((duckdb_name("dtype", column)?.clone(), ty.clone()));
        }
        if let Some(ParseDates::Columns(dates)) = &self.parse_dates {
            for column in dates {
                types.push((
                    duckdb_name("parse_dates", column)?.clone(),
                    "TIMESTAMP".into(),
                ));
            }
        }
        let item = |name: &str| -> Result<String> {
            let source = duckdb_name("columns", name)?;
            Ok(if self.dialect.header {
                quote_identifier(source)
            } else {
                format!("{} AS {}", quote_identifier(source), quote_identifier(name))
            })
        };
        let select = match &self.columns {
            Some(columns) => columns
                .iter()
                .map(|c| item(c))
                .collect::<Result<Vec<_>>>()?
                .join(", "),
            None if self.dialect.header => "*".into(),
            None => visible
                .iter()
                .map(|c| item(c))
                .collect::<Result<Vec<_>>>()?
                .join(", "),
        };
        Ok((select, types))
    }

    /// The `read_csv(...)` call, every dialect option explicit.
    fn read_csv(&self, d: &Dialect, types: &[(String, String)], strict: bool) -> String {
        self.read_csv_as(d, types, strict, None)
    }

    /// The `read_csv(...)` call; with `sniffed`, the sniffer's decisions are written into it
    /// (`auto_detect = false`, `columns`, the date formats) instead of `types`.
    fn read_csv_as(
        &self,
        d: &Dialect,
        types: &[(String, String)],
        strict: bool,
        sniffed: Option<&Sniffed>,
    ) -> String {
        let comment = d
            .comment
            .map(|c| char::from(c).to_string())
            .unwrap_or_default();
        let nullstr = self
            .nullstr
            .iter()
            .map(|v| quote_literal(v))
            .collect::<Vec<_>>()
            .join(", ");
        let mut sql = format!(
            "read_csv({path}, delim = {delim}, quote = '\"', escape = '\"', header = {header}, \
             skip = {skip}, comment = {comment}, encoding = {encoding}, compression = {codec}, \
             nullstr = [{nullstr}], allow_quoted_nulls = false, strict_mode = {strict}, \
             max_line_size = {max_line_size}",
            path = quote_literal(&d.path.to_string_lossy()),
            delim = quote_literal(&char::from(d.delimiter).to_string()),
            header = d.header,
            skip = d.skip_lines,
            comment = quote_literal(&comment),
            encoding = quote_literal(self.duckdb_encoding),
            codec = quote_literal(d.codec.duckdb_name()),
            max_line_size = d.max_line_size,
        );
        if !types.is_empty() {
            let entries = types
                .iter()
                .map(|(column, ty)| format!("{}: {}", quote_literal(column), quote_literal(ty)))
                .collect::<Vec<_>>()
                .join(", ");
            sql.push_str(&format!(", types = {{{entries}}}"));
        }
        if let Some(sniffed) = sniffed {
            let entries = sniffed
                .columns
                .iter()
                .map(|(column, ty)| format!("{}: {}", quote_literal(column), quote_literal(ty)))
                .collect::<Vec<_>>()
                .join(", ");
            sql.push_str(&format!(", auto_detect = false, columns = {{{entries}}}"));
            for (option, format) in [
                ("dateformat", &sniffed.dateformat),
                ("timestampformat", &sniffed.timestampformat),
            ] {
                if let Some(format) = format {
                    sql.push_str(&format!(", {option} = {}", quote_literal(format)));
                }
            }
        } else if self.parse_dates == Some(ParseDates::Detect(false)) {
            sql.push_str(", auto_type_candidates = ['BOOLEAN', 'BIGINT', 'DOUBLE', 'VARCHAR']");
        }
        sql.push(')');
        sql
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::{Path, PathBuf};

    use driver_api::ErrorClass;
    use driver_api::testing::TestRun;
    use serde_json::{Value, json};

    use super::*;

    const STEP: &str = "read-csv";

    fn setup() -> (tempfile::TempDir, TestRun) {
        let dir = tempfile::tempdir().unwrap();
        let run = TestRun::new(dir.path());
        (dir, run)
    }

    fn file(dir: &Path, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    /// The existing tests check the table path (row counts, errors while reading); view tests say
    /// `materialize: view`.
    fn table_unless_said(mut config: Value) -> Value {
        if let Some(object) = config.as_object_mut() {
            object.entry("materialize").or_insert("table".into());
        }
        config
    }

    async fn extract(run: &TestRun, config: Value) -> Result<StepOutput> {
        run.run(&CsvExtractor, STEP, table_unless_said(config), &[])
            .await
    }

    /// Every row of the step table, each value as text (NULL as `None`).
    fn rows(run: &TestRun) -> Vec<Vec<Option<String>>> {
        let conn = run.connection();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT COLUMNS(*)::VARCHAR FROM {}",
                quote_identifier(STEP)
            ))
            .unwrap();
        let mut result = stmt.query([]).unwrap();
        let mut out = Vec::new();
        while let Some(row) = result.next().unwrap() {
            let width = row.as_ref().column_count();
            out.push((0..width).map(|i| row.get(i).unwrap()).collect());
        }
        out
    }

    fn text(values: &[&str]) -> Vec<Option<String>> {
        values
            .iter()
            .map(|v| (*v != "NULL").then(|| (*v).to_owned()))
            .collect()
    }

    /// `name TYPE` of every column of the step table.
    fn schema(run: &TestRun) -> Vec<String> {
        run.query_strings(&format!(
            "SELECT column_name || ' ' || column_type FROM (DESCRIBE {})",
            quote_identifier(STEP)
        ))
        .into_iter()
        .map(Option::unwrap)
        .collect()
    }

    async fn failure(run: &TestRun, config: Value) -> DriverError {
        run.connection()
            .execute_batch(&format!("DROP TABLE IF EXISTS {}", quote_identifier(STEP)))
            .unwrap();
        let error = extract(run, config).await.unwrap_err();
        assert!(!run.table_exists(STEP), "a failed step leaves no table");
        error
    }

    #[tokio::test]
    async fn mixed_csv_gets_detected_types_and_exact_values() {
        let (dir, run) = setup();
        let path = file(
            dir.path(),
            "mixed.csv",
            "id,amount,name,day,at,note,flag\n\
             1,1.50,\"Smith, \"\"Jo\"\"\",2024-01-02,2024-01-02 03:04:05,\"two\nlines\",true\n\
             2,-3.25,plain,2024-02-29,2024-02-29 23:59:59.5,,false\n\
             3,,\"\",2023-12-31,2023-12-31 00:00:00,x,\n",
        );
        let out = extract(&run, json!({"path": path})).await.unwrap();
        assert_eq!(out, StepOutput::table(TableName::new(STEP).unwrap(), 3));
        assert_eq!(
            schema(&run),
            [
                "id BIGINT",
                "amount DOUBLE",
                "name VARCHAR",
                "day DATE",
                "at TIMESTAMP",
                "note VARCHAR",
                "flag BOOLEAN"
            ]
        );
        assert_eq!(
            rows(&run),
            [
                text(&[
                    "1",
                    "1.5",
                    "Smith, \"Jo\"",
                    "2024-01-02",
                    "2024-01-02 03:04:05",
                    "two\nlines",
                    "true"
                ]),
                text(&[
                    "2",
                    "-3.25",
                    "plain",
                    "2024-02-29",
                    "2024-02-29 23:59:59.5",
                    "NULL",
                    "false"
                ]),
                // An empty field is NULL, a quoted empty field the empty string.
                text(&[
                    "3",
                    "NULL",
                    "",
                    "2023-12-31",
                    "2023-12-31 00:00:00",
                    "x",
                    "NULL"
                ]),
            ]
        );
    }

    #[tokio::test]
    async fn semicolon_and_tab_delimiters_split_fields() {
        let (dir, run) = setup();
        let semi = file(dir.path(), "semi.csv", "a;b\n1,5;x,y\n");
        extract(&run, json!({"path": semi, "delimiter": ";"}))
            .await
            .unwrap();
        assert_eq!(rows(&run), [text(&["1,5", "x,y"])]);
        let tab = file(dir.path(), "tab.tsv", "a\tb\n1\tx y\n");
        extract(&run, json!({"path": tab, "delimiter": "\t"}))
            .await
            .unwrap();
        assert_eq!(schema(&run), ["a BIGINT", "b VARCHAR"]);
        assert_eq!(rows(&run), [text(&["1", "x y"])]);
    }

    #[tokio::test]
    async fn without_header_columns_are_named_by_position() {
        let (dir, run) = setup();
        let path = file(
            dir.path(),
            "nohead.csv",
            (0..12).map(|i| i.to_string()).collect::<Vec<_>>().join(",") + "\n",
        );
        extract(
            &run,
            json!({"path": path, "header": false, "dtype": {"11": "VARCHAR"}}),
        )
        .await
        .unwrap();
        let names: Vec<String> = schema(&run);
        assert_eq!(names.first().unwrap(), "0 BIGINT");
        assert_eq!(names.last().unwrap(), "11 VARCHAR");
        assert_eq!(names.len(), 12);
        extract(
            &run,
            json!({"path": path, "header": false, "columns": ["10", "2"]}),
        )
        .await
        .unwrap();
        assert_eq!(schema(&run), ["10 BIGINT", "2 BIGINT"]);
        assert_eq!(rows(&run), [text(&["10", "2"])]);
    }

    #[tokio::test]
    async fn header_row_index_and_skip_rows_skip_the_lines_before_the_header() {
        let (dir, run) = setup();
        let path = file(
            dir.path(),
            "report.csv",
            "exported by x\nmeta,data,here\na,b\n1,2\n",
        );
        extract(&run, json!({"path": path, "header": 2}))
            .await
            .unwrap();
        assert_eq!(schema(&run), ["a BIGINT", "b BIGINT"]);
        assert_eq!(rows(&run), [text(&["1", "2"])]);
        extract(&run, json!({"path": path, "skip_rows": 2}))
            .await
            .unwrap();
        assert_eq!(rows(&run), [text(&["1", "2"])]);
        extract(&run, json!({"path": path, "skip_rows": 1, "header": 1}))
            .await
            .unwrap();
        assert_eq!(schema(&run), ["a BIGINT", "b BIGINT"]);
    }

    #[tokio::test]
    async fn columns_select_and_reorder() {
        let (dir, run) = setup();
        let path = file(dir.path(), "abc.csv", "a,\"we\"\"ird name\",c\n1,2,3\n");
        extract(
            &run,
            json!({"path": path, "columns": ["c", "we\"ird name", "a"]}),
        )
        .await
        .unwrap();
        assert_eq!(
            schema(&run),
            ["c BIGINT", "we\"ird name BIGINT", "a BIGINT"]
        );
        assert_eq!(rows(&run), [text(&["3", "2", "1"])]);
    }

    #[tokio::test]
    async fn unknown_column_is_a_config_error_listing_the_columns() {
        let (dir, run) = setup();
        let path = file(dir.path(), "abc.csv", "a,b,c\n1,2,3\n");
        let error = failure(&run, json!({"path": path, "columns": ["a", "zz"]})).await;
        assert_eq!(error.class(), ErrorClass::Config);
        let message = error.to_string();
        assert!(message.contains("no column \"zz\""), "{message}");
        assert!(message.contains("\"a\", \"b\", \"c\""), "{message}");
        let error = failure(&run, json!({"path": path, "dtype": {"q": "INTEGER"}})).await;
        assert!(
            error.to_string().starts_with("config key `dtype`"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn limit_keeps_the_first_rows() {
        let (dir, run) = setup();
        let body: String = (0..50_000).map(|i| format!("{i},v{i}\n")).collect();
        let path = file(dir.path(), "big.csv", format!("id,v\n{body}"));
        let out = extract(&run, json!({"path": path, "limit": 7}))
            .await
            .unwrap();
        assert_eq!(out.rows, 7);
        assert_eq!(
            run.query_strings("SELECT string_agg(id::VARCHAR, ',') FROM \"read-csv\""),
            [Some("0,1,2,3,4,5,6".into())]
        );
        assert!(
            failure(&run, json!({"path": path, "limit": 0}))
                .await
                .class()
                == ErrorClass::Config
        );
    }

    #[tokio::test]
    async fn na_values_read_as_null_but_quoted_ones_stay() {
        let (dir, run) = setup();
        let path = file(dir.path(), "na.csv", "a,b\n1,NA\n2,-\n3,\"NA\"\n4,ok\n");
        extract(&run, json!({"path": path, "na_values": ["NA", "-"]}))
            .await
            .unwrap();
        assert_eq!(
            rows(&run),
            [
                text(&["1", "NULL"]),
                text(&["2", "NULL"]),
                text(&["3", "NA"]),
                text(&["4", "ok"])
            ]
        );
    }

    #[tokio::test]
    async fn comment_lines_are_skipped_only_when_configured() {
        let (dir, run) = setup();
        let path = file(dir.path(), "c.csv", "a,b\n#x,1\n1,2\n");
        extract(&run, json!({"path": path, "comment": "#"}))
            .await
            .unwrap();
        assert_eq!(rows(&run), [text(&["1", "2"])]);
        // DuckDB's sniffer would drop the `#x` line on its own; without `comment` it is data.
        extract(&run, json!({"path": path})).await.unwrap();
        assert_eq!(rows(&run), [text(&["#x", "1"]), text(&["1", "2"])]);
    }

    #[tokio::test]
    async fn gzip_and_zstd_files_are_decompressed() {
        let (dir, run) = setup();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"a,b\n1,x\n2,y\n").unwrap();
        let gz_path = file(dir.path(), "in.csv.gz", gz.finish().unwrap());
        extract(&run, json!({"path": gz_path})).await.unwrap();
        assert_eq!(rows(&run), [text(&["1", "x"]), text(&["2", "y"])]);

        let zst = ruzstd::encoding::compress_to_vec(
            &b"a,b\n3,z\n"[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        let zst_path = file(dir.path(), "in.data", zst);
        extract(&run, json!({"path": zst_path, "compression": "zstd"}))
            .await
            .unwrap();
        assert_eq!(rows(&run), [text(&["3", "z"])]);
    }

    #[tokio::test]
    async fn bz2_xz_and_zip_files_decompress_by_extension_and_by_setting() {
        let (dir, run) = setup();
        let body = b"a,b\n1,x\n2,\"y,z\"\n";
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(body).unwrap();
        let bz = bz.finish().unwrap();
        let mut xz =
            lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(1)).unwrap();
        xz.write_all(body).unwrap();
        let xz = xz.finish().unwrap();
        let mut zipped = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        zipped
            .start_file("data.csv", zip::write::SimpleFileOptions::default())
            .unwrap();
        zipped.write_all(body).unwrap();
        let zipped = zipped.finish().unwrap().into_inner();
        let expected = [text(&["1", "x"]), text(&["2", "y,z"])];
        for (name, bytes, codec) in [
            ("a.csv.bz2", &bz, "bz2"),
            ("a.csv.xz", &xz, "xz"),
            ("a.zip", &zipped, "zip"),
        ] {
            let inferred = file(dir.path(), name, bytes);
            let out = extract(&run, json!({"path": inferred})).await.unwrap();
            assert_eq!(out.rows, 2, "{name}");
            assert_eq!(rows(&run), expected, "{name}");
            let named = file(dir.path(), &format!("{codec}.data"), bytes);
            extract(&run, json!({"path": named, "compression": codec}))
                .await
                .unwrap();
            assert_eq!(rows(&run), expected, "{name}");
        }
        let leftovers = std::fs::read_dir(dir.path().join("session/artifacts").join(STEP))
            .unwrap()
            .count();
        assert_eq!(leftovers, 0, "the decompressed copy is removed");
    }

    #[tokio::test]
    async fn corrupt_or_ambiguous_archives_are_data_errors_naming_the_file() {
        let (dir, run) = setup();
        let bad = file(dir.path(), "bad.csv.bz2", "this is not bzip2");
        let error = failure(&run, json!({"path": bad})).await;
        assert_eq!(error.class(), ErrorClass::Data);
        let message = error.to_string();
        assert!(message.starts_with(&bad.display().to_string()), "{message}");
        assert!(message.contains("as bz2"), "{message}");

        let mut zipped = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for name in ["a.csv", "b.csv"] {
            zipped
                .start_file(name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zipped.write_all(b"a\n1\n").unwrap();
        }
        let two = file(dir.path(), "two.zip", zipped.finish().unwrap().into_inner());
        let message = failure(&run, json!({"path": two})).await.to_string();
        assert!(message.contains("holds 2 files"), "{message}");
    }

    #[tokio::test]
    async fn latin1_and_utf16_files_decode() {
        let (dir, run) = setup();
        let latin1 = file(dir.path(), "l1.csv", b"name,v\nJos\xE9,1\n\xF1,2\n");
        for encoding in ["latin-1", "iso-8859-1"] {
            extract(&run, json!({"path": latin1, "encoding": encoding}))
                .await
                .unwrap();
            assert_eq!(rows(&run), [text(&["José", "1"]), text(&["ñ", "2"])]);
        }
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend(
            "name,v\nJosé,1\n😀,2\n"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        );
        let utf16 = file(dir.path(), "u16.csv", utf16);
        extract(&run, json!({"path": utf16, "encoding": "utf-16"}))
            .await
            .unwrap();
        assert_eq!(rows(&run), [text(&["José", "1"]), text(&["😀", "2"])]);
    }

    #[tokio::test]
    async fn big_endian_utf16_decodes_and_invalid_utf16_names_the_line() {
        let (dir, run) = setup();
        let mut bytes = vec![0xFE, 0xFF];
        bytes.extend("a,b\n1,ü\n".encode_utf16().flat_map(u16::to_be_bytes));
        let path = file(dir.path(), "be.csv", bytes);
        extract(&run, json!({"path": path, "encoding": "utf-16"}))
            .await
            .unwrap();
        assert_eq!(rows(&run), [text(&["1", "ü"])]);

        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend("a,b\n1,2\n3,".encode_utf16().flat_map(u16::to_le_bytes));
        bytes.extend(0xD800u16.to_le_bytes()); // a high surrogate without its pair
        bytes.extend("x\n".encode_utf16().flat_map(u16::to_le_bytes));
        let path = file(dir.path(), "bad16.csv", bytes);
        let error = failure(&run, json!({"path": path, "encoding": "utf-16"})).await;
        assert_eq!(error.class(), ErrorClass::Data);
        assert!(
            error
                .to_string()
                .starts_with(&format!("{} line 3: ", path.display())),
            "{error}"
        );
        let leftovers = std::fs::read_dir(dir.path().join("session/artifacts").join(STEP))
            .unwrap()
            .count();
        assert_eq!(leftovers, 0, "the decoded copy is removed");
    }

    #[tokio::test]
    async fn header_only_file_gives_its_columns_and_no_rows() {
        let (dir, run) = setup();
        let path = file(dir.path(), "head.csv", "id,name\n");
        let out = extract(&run, json!({"path": path})).await.unwrap();
        assert_eq!(out.rows, 0);
        assert_eq!(schema(&run), ["id VARCHAR", "name VARCHAR"]);
    }

    #[tokio::test]
    async fn empty_file_needs_columns_to_become_an_empty_table() {
        let (dir, run) = setup();
        let path = file(dir.path(), "empty.csv", "");
        let error = failure(&run, json!({"path": path})).await;
        assert_eq!(error.class(), ErrorClass::Data);
        let message = error.to_string();
        assert!(message.contains("empty.csv is empty"), "{message}");
        assert!(message.contains("`columns`"), "{message}");

        let out = extract(&run, json!({"path": path, "columns": ["x", "y"]}))
            .await
            .unwrap();
        assert_eq!(out.rows, 0);
        assert_eq!(schema(&run), ["x VARCHAR", "y VARCHAR"]);
    }

    #[tokio::test]
    async fn missing_file_and_directory_are_reported_with_their_path() {
        let (dir, run) = setup();
        let error = failure(&run, json!({"path": "nowhere/in.csv"})).await;
        assert_eq!(error.class(), ErrorClass::Io);
        let expected = format!(
            "input file {} does not exist",
            dir.path().join("nowhere/in.csv").display()
        );
        assert_eq!(error.to_string(), expected);

        let error = failure(&run, json!({"path": dir.path()})).await;
        assert_eq!(error.class(), ErrorClass::Config);
        assert!(error.to_string().contains("is a directory"), "{error}");
    }

    #[tokio::test]
    async fn relative_paths_resolve_against_the_pipeline_directory_and_may_hold_quotes() {
        let (dir, run) = setup();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        file(dir.path(), "data/it's here.csv", "a\n1\n");
        let out = extract(&run, json!({"path": "data/it's here.csv"}))
            .await
            .unwrap();
        assert_eq!(out.rows, 1);
    }

    #[tokio::test]
    async fn glob_characters_in_the_path_are_rejected() {
        let (dir, run) = setup();
        file(dir.path(), "x1.csv", "a\n1\n");
        let path = file(dir.path(), "x[1].csv", "a\n2\n");
        let error = failure(&run, json!({"path": path})).await;
        assert_eq!(error.class(), ErrorClass::Config);
    }

    #[tokio::test]
    async fn wrong_field_count_in_the_sniffer_sample_names_the_line() {
        let (dir, run) = setup();
        let path = file(dir.path(), "ragged.csv", "a,b\n1,2\n3,4,5\n6,7\n");
        let error = failure(&run, json!({"path": path})).await;
        assert_eq!(error.class(), ErrorClass::Data);
        assert_eq!(
            error.to_string(),
            format!(
                "{} line 3: expected 2 fields (as in the header), found 3",
                path.display()
            )
        );
    }

    #[tokio::test]
    async fn wrong_field_count_after_the_sample_names_the_physical_line() {
        let (dir, run) = setup();
        // A quoted value spanning two lines: DuckDB alone would count one line too few.
        let body: String = (0..30_000).map(|i| format!("{i},v\n")).collect();
        let path = file(
            dir.path(),
            "late.csv",
            format!("a,b\n0,\"x\ny\"\n{body}1,2,3\n4,5\n"),
        );
        let error = failure(&run, json!({"path": path})).await;
        assert_eq!(error.class(), ErrorClass::Data);
        assert_eq!(
            error.to_string(),
            format!(
                "{} line 30004: expected 2 fields (as in the header), found 3",
                path.display()
            )
        );
    }

    #[tokio::test]
    async fn wrong_field_count_in_a_gzip_file_with_skipped_lines() {
        let (dir, run) = setup();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"junk\n#c\na;b\n1;2\n3\n").unwrap();
        let path = file(dir.path(), "r.csv.gz", gz.finish().unwrap());
        let error = failure(
            &run,
            json!({"path": path, "skip_rows": 1, "comment": "#", "delimiter": ";"}),
        )
        .await;
        assert!(
            error
                .to_string()
                .ends_with("line 5: expected 2 fields (as in the header), found 1"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn unclosed_quote_names_the_line_where_the_value_starts() {
        let (dir, run) = setup();
        let early = file(dir.path(), "early.csv", "a,b\n1,\"x\n2,3\n");
        let body: String = (0..30_000).map(|i| format!("{i},v\n")).collect();
        let late = file(
            dir.path(),
            "late.csv",
            format!("a,b\n{body}1,\"x\"y\n2,3\n"),
        );
        for (path, line) in [(early, 2), (late, 30_002)] {
            let error = failure(&run, json!({"path": path})).await;
            assert_eq!(error.class(), ErrorClass::Data);
            let message = error.to_string();
            assert!(
                message.starts_with(&format!(
                    "{} line {line}: a quoted value is not closed properly",
                    path.display()
                )),
                "{message}"
            );
        }
    }

    #[tokio::test]
    async fn leading_blank_lines_are_skipped_before_the_header() {
        let (dir, run) = setup();
        for (name, content) in [
            ("lf.csv", "title\n\n\na,b\n1,2\n"),
            ("crlf.csv", "title\r\n\r\na,b\r\n1,2\r\n"),
        ] {
            let path = file(dir.path(), name, content);
            extract(&run, json!({"path": path, "skip_rows": 1}))
                .await
                .unwrap();
            assert_eq!(schema(&run), ["a BIGINT", "b BIGINT"]);
            assert_eq!(rows(&run), [text(&["1", "2"])]);
        }
    }

    #[tokio::test]
    async fn skipping_past_the_end_is_a_data_error() {
        let (dir, run) = setup();
        let path = file(dir.path(), "short.csv", "a,b\n1,2\n");
        let error = failure(&run, json!({"path": path, "skip_rows": 10})).await;
        assert_eq!(error.class(), ErrorClass::Data);
        assert_eq!(
            error.to_string(),
            format!(
                "{} has 2 lines, but 10 lines are skipped before the header (`skip_rows` and `header`)",
                path.display()
            )
        );
    }

    #[tokio::test]
    async fn cancelled_step_creates_no_table() {
        let (dir, run) = setup();
        let path = file(dir.path(), "a.csv", "a\n1\n");
        run.execution_context().cancellation().cancel();
        let error = failure(&run, json!({"path": path})).await;
        assert_eq!(error.class(), ErrorClass::Cancelled);
    }

    #[tokio::test]
    async fn invalid_utf8_names_the_line_and_the_encoding_setting() {
        let (dir, run) = setup();
        let path = file(dir.path(), "bad.csv", b"a,b\n1,x\n2,\xFF\xFE\n");
        let error = failure(&run, json!({"path": path})).await;
        assert_eq!(error.class(), ErrorClass::Data);
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("{} line 3:", path.display())),
            "{message}"
        );
        assert!(message.contains("not valid utf-8"), "{message}");
        assert!(message.contains("`encoding`"), "{message}");
    }

    #[tokio::test]
    async fn dtype_sets_types_exactly() {
        let (dir, run) = setup();
        let path = file(dir.path(), "d.csv", "id,amount,day\n007,1.50,2024-01-02\n");
        extract(
            &run,
            json!({"path": path, "dtype": {"id": "VARCHAR", "amount": "DECIMAL(10,2)"}}),
        )
        .await
        .unwrap();
        assert_eq!(
            schema(&run),
            ["id VARCHAR", "amount DECIMAL(10,2)", "day DATE"]
        );
        assert_eq!(rows(&run), [text(&["007", "1.50", "2024-01-02"])]);

        let error = failure(&run, json!({"path": path, "dtype": {"id": "NOTATYPE"}})).await;
        assert_eq!(error.class(), ErrorClass::Config);
        assert!(error.to_string().contains("NOTATYPE"), "{error}");
    }

    #[tokio::test]
    async fn values_that_do_not_convert_name_line_and_column() {
        let (dir, run) = setup();
        let path = file(dir.path(), "conv.csv", "id,v\n1,a\nx,b\n");
        let error = failure(&run, json!({"path": path, "dtype": {"id": "BIGINT"}})).await;
        assert_eq!(error.class(), ErrorClass::Data);
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("{} line 3:", path.display())),
            "{message}"
        );
        assert!(message.contains("column \"id\""), "{message}");
        assert!(!message.contains("file ="), "no settings dump: {message}");

        // Beyond the sniffer's sample the detected type fails: the hint points to `dtype`.
        let body: String = (0..30_000).map(|i| format!("{i},v\n")).collect();
        let late = file(dir.path(), "late.csv", format!("id,v\n{body}zz,v\n"));
        let message = failure(&run, json!({"path": late})).await.to_string();
        assert!(message.contains("line 30002"), "{message}");
        assert!(message.contains("`dtype`"), "{message}");
    }

    #[tokio::test]
    async fn parse_dates_controls_date_columns() {
        let (dir, run) = setup();
        let path = file(dir.path(), "dates.csv", "day,n\n2024-01-02,1\n");
        extract(&run, json!({"path": path, "parse_dates": false}))
            .await
            .unwrap();
        assert_eq!(schema(&run), ["day VARCHAR", "n BIGINT"]);
        extract(&run, json!({"path": path, "parse_dates": ["day"]}))
            .await
            .unwrap();
        assert_eq!(schema(&run), ["day TIMESTAMP", "n BIGINT"]);
        assert_eq!(rows(&run), [text(&["2024-01-02 00:00:00", "1"])]);
    }

    #[tokio::test]
    async fn skip_blank_lines_false_and_chunk_size_are_accepted_with_a_warning() {
        let (dir, run) = setup();
        let path = file(dir.path(), "a.csv", "a,b\n1,2\n\n3,4\n");
        extract(
            &run,
            json!({"path": path, "skip_blank_lines": false, "chunk_size": 500}),
        )
        .await
        .unwrap();
        assert_eq!(rows(&run), [text(&["1", "2"]), text(&["3", "4"])]);
        let events = std::fs::read_to_string(dir.path().join("session/events.jsonl")).unwrap();
        for key in ["skip_blank_lines", "chunk_size"] {
            assert!(
                events
                    .lines()
                    .any(|l| l.contains("\"event\":\"config.warning\"")
                        && l.contains(&format!("\"key\":\"{key}\""))
                        && l.contains("no effect")),
                "{events}"
            );
        }
    }

    #[tokio::test]
    async fn pandas_dtype_names_read_as_their_duckdb_types() {
        let (dir, run) = setup();
        let path = file(
            dir.path(),
            "p.csv",
            "f,i,n,s,o,t,b,c,d\n1.5,7,8,09,x,y,true,red,2024-01-02 03:04:05\n",
        );
        let dtype = json!({
            "f": "float64", "i": "int64", "n": "Int64", "s": "str", "o": "object",
            "t": "string", "b": "bool", "c": "category", "d": "datetime64[ns]"
        });
        extract(&run, json!({"path": path, "dtype": dtype}))
            .await
            .unwrap();
        assert_eq!(
            schema(&run),
            [
                "f DOUBLE",
                "i BIGINT",
                "n BIGINT",
                "s VARCHAR",
                "o VARCHAR",
                "t VARCHAR",
                "b BOOLEAN",
                "c VARCHAR",
                "d TIMESTAMP"
            ]
        );
        assert_eq!(
            rows(&run),
            [text(&[
                "1.5",
                "7",
                "8",
                "09",
                "x",
                "y",
                "true",
                "red",
                "2024-01-02 03:04:05"
            ])]
        );
    }

    #[tokio::test]
    async fn a_device_is_refused_without_reading_it() {
        let (_dir, run) = setup();
        let error = failure(&run, json!({"path": "/dev/zero"})).await;
        assert_eq!(error.class(), ErrorClass::Config);
        assert!(
            error
                .to_string()
                .contains("/dev/zero is not a regular file"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_line_over_max_line_size_is_named_with_its_size() {
        let (dir, run) = setup();
        let long = "x".repeat(3000);
        let path = file(dir.path(), "long.csv", format!("a\n1\n2\n{long}\n3\n"));
        let error = failure(&run, json!({"path": path, "max_line_size": 1000})).await;
        assert_eq!(error.class(), ErrorClass::Data);
        assert_eq!(
            error.to_string(),
            format!(
                "{} line 4: the line has 3000 bytes, longer than `max_line_size` (1000 bytes); if the file is right, raise `max_line_size`",
                path.display()
            )
        );
        // The setting reaches DuckDB's reader.
        let out = extract(&run, json!({"path": path, "max_line_size": 4000}))
            .await
            .unwrap();
        assert_eq!(out.rows, 4);
    }

    #[tokio::test]
    async fn a_file_without_line_breaks_fails_at_the_default_limit() {
        let (dir, run) = setup();
        let path = file(dir.path(), "flat.csv", vec![b'z'; 2_500_000]);
        let error = failure(&run, json!({"path": path})).await;
        assert_eq!(error.class(), ErrorClass::Data);
        assert_eq!(
            error.to_string(),
            format!(
                "{} line 1: the line has 2500000 bytes, longer than `max_line_size` (2000000 bytes); if the file is right, raise `max_line_size`",
                path.display()
            )
        );
        // A skipped line is bounded too.
        let path = file(
            dir.path(),
            "skip.csv",
            [vec![b'z'; 5000], b"\na\n1\n".to_vec()].concat(),
        );
        let error = failure(
            &run,
            json!({"path": path, "skip_rows": 1, "max_line_size": 1000}),
        )
        .await;
        assert!(
            error.to_string().starts_with(&format!(
                "{} line 1: longer than `max_line_size` (1000 bytes)",
                path.display()
            )),
            "{error}"
        );
    }

    #[tokio::test]
    async fn mixed_crlf_and_lf_line_breaks_read_exactly() {
        let (dir, run) = setup();
        let path = file(
            dir.path(),
            "mixed.csv",
            "a,b\r\n1,x\n2,y\r\n3,\"q\r\nz\"\n4,\r\n",
        );
        extract(&run, json!({"path": path})).await.unwrap();
        assert_eq!(
            rows(&run),
            [
                text(&["1", "x"]),
                text(&["2", "y"]),
                text(&["3", "q\r\nz"]),
                text(&["4", "NULL"])
            ]
        );
        // The switch far beyond DuckDB's sniffing sample, both ways.
        for (first, second) in [("\n", "\r\n"), ("\r\n", "\n")] {
            let mut body = format!("id,v{first}");
            for i in 0..30_000 {
                body.push_str(&format!("{i},v{i}{first}"));
            }
            for i in 30_000..30_010 {
                body.push_str(&format!("{i},w{i}{second}"));
            }
            let path = file(dir.path(), "late.csv", body);
            let out = extract(&run, json!({"path": path})).await.unwrap();
            assert_eq!(out.rows, 30_010);
            let stray = run.query_strings(&format!(
                "SELECT v FROM {} WHERE v LIKE '%' || chr(13) || '%' OR v NOT SIMILAR TO '[vw][0-9]+'",
                quote_identifier(STEP)
            ));
            assert!(stray.is_empty(), "{stray:?}");
        }
    }

    #[tokio::test]
    async fn cr_only_line_breaks_read_exactly() {
        let (dir, run) = setup();
        let path = file(dir.path(), "cr.csv", "title\ra,b\r1,x\r2,y\r");
        extract(&run, json!({"path": path, "skip_rows": 1}))
            .await
            .unwrap();
        assert_eq!(rows(&run), [text(&["1", "x"]), text(&["2", "y"])]);
    }

    #[tokio::test]
    async fn failed_rerun_keeps_the_earlier_table() {
        let (dir, run) = setup();
        let good = file(dir.path(), "good.csv", "a\n1\n");
        extract(&run, json!({"path": good})).await.unwrap();
        let bad = file(dir.path(), "bad.csv", "a,b\n1,2,3\n");
        extract(&run, json!({"path": bad})).await.unwrap_err();
        assert_eq!(rows(&run), [text(&["1"])]);
    }

    #[tokio::test]
    async fn events_and_metrics_are_written() {
        let (dir, run) = setup();
        let path = file(dir.path(), "a.csv", "a\n1\n2\n");
        extract(&run, json!({"path": path})).await.unwrap();
        let session = dir.path().join("session");
        let events = std::fs::read_to_string(session.join("events.jsonl")).unwrap();
        assert!(
            events.contains("\"event\":\"extraction.start\""),
            "{events}"
        );
        assert!(
            events.contains("\"event\":\"extraction.complete\""),
            "{events}"
        );
        let metrics = std::fs::read_to_string(session.join("metrics.jsonl")).unwrap();
        assert!(
            metrics
                .lines()
                .any(|l| l.contains("\"metric\":\"bytes_processed\"")),
            "{metrics}"
        );
    }

    /// The spec's `configSchema` and this `Config` describe the same fields, and every spec
    /// example is a valid `Config`.
    #[test]
    fn spec_and_config_agree() {
        driver_api::testing::assert_spec_matches::<CsvExtractor>();
    }

    /// Runs the extractor as step `step` with `config` as given (no default added).
    async fn extract_as(run: &TestRun, step: &str, config: Value) -> Result<StepOutput> {
        run.run(&CsvExtractor, step, config, &[]).await
    }

    fn object_type(run: &TestRun, name: &str) -> String {
        run.query_strings(&format!(
            "SELECT table_type FROM information_schema.tables WHERE table_name = {}",
            quote_literal(name)
        ))
        .into_iter()
        .next()
        .flatten()
        .unwrap_or_else(|| "none".into())
    }

    /// `name TYPE` of every column, then every row as JSON, sorted.
    fn typed_rows(run: &TestRun, name: &str) -> Vec<Option<String>> {
        let t = quote_identifier(name);
        let mut out = run.query_strings(&format!(
            "SELECT column_name || ' ' || column_type FROM (DESCRIBE {t})"
        ));
        out.extend(run.query_strings(&format!("SELECT to_json(x)::VARCHAR FROM {t} x ORDER BY 1")));
        out
    }

    /// Extracts `path` with the options `extra` twice: as table `t<i>` and as view `v<i>`.
    async fn table_and_view(
        run: &TestRun,
        path: &Path,
        i: usize,
        extra: Value,
    ) -> (StepOutput, StepOutput) {
        let mut config = json!({"path": path});
        config
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let mut as_table = config.clone();
        as_table["materialize"] = "table".into();
        let table = extract_as(run, &format!("t{i}"), as_table).await.unwrap();
        let view = extract_as(run, &format!("v{i}"), config).await.unwrap();
        (table, view)
    }

    #[tokio::test]
    async fn a_view_gives_the_same_columns_types_and_values_as_a_table() {
        let (dir, run) = setup();
        let path = file(
            dir.path(),
            "mixed.csv",
            "id,amount,name,day,at,note,flag\n\
             1,1.50,\"Smith, \"\"Jo\"\"\",2024-01-02,2024-01-02 03:04:05,\"two\nlines\",true\n\
             2,-3.25,plain,2024-02-29,2024-02-29 23:59:59.5,,false\n\
             3,,\"\",2023-12-31,2023-12-31 00:00:00,x,\n",
        );
        for (i, extra) in [
            json!({}),
            json!({"columns": ["note", "id"], "limit": 2}),
            json!({"dtype": {"amount": "VARCHAR", "id": "int32"}, "parse_dates": false}),
            json!({"header": false, "skip_rows": 1, "na_values": ["plain"]}),
        ]
        .into_iter()
        .enumerate()
        {
            let (table, view) = table_and_view(&run, &path, i, extra).await;
            assert_eq!(object_type(&run, &format!("t{i}")), "BASE TABLE");
            assert_eq!(
                object_type(&run, &format!("v{i}")),
                "VIEW",
                "view is the default"
            );
            assert_eq!(view.rows, 0, "a view reads no row while the step runs");
            assert!(table.rows > 0);
            assert_eq!(
                typed_rows(&run, &format!("v{i}")),
                typed_rows(&run, &format!("t{i}")),
                "case {i}"
            );
        }
    }

    #[tokio::test]
    async fn a_view_keeps_what_the_sniffer_found_so_later_reads_do_not_sniff_again() {
        let (dir, run) = setup();
        // Day-first dates and timestamps: only the sniffer's detected formats read them right.
        let path = file(
            dir.path(),
            "eu.csv",
            "id,day,at,it's\n1,02/01/2024,13/01/2024 10:11:12,x\n2,31/12/2023,01/02/2024 00:00:01,\n",
        );
        for (i, extra) in [
            json!({}),
            json!({"parse_dates": ["at"], "dtype": {"id": "VARCHAR"}, "columns": ["it's", "at"]}),
        ]
        .into_iter()
        .enumerate()
        {
            table_and_view(&run, &path, i, extra).await;
            let definition = run.query_strings(&format!(
                "SELECT sql FROM duckdb_views() WHERE view_name = 'v{i}'"
            ));
            let definition = definition[0].as_deref().unwrap();
            // DuckDB keeps the definition in its own spelling (`(auto_detect = CAST('f' ...))`).
            for option in ["auto_detect", "columns", "'%d/%m/%Y %H:%M:%S'"] {
                assert!(definition.contains(option), "{option}: {definition}");
            }
            assert_eq!(
                typed_rows(&run, &format!("v{i}")),
                typed_rows(&run, &format!("t{i}")),
                "case {i}"
            );
        }
        let days = run.query_strings("SELECT day::VARCHAR FROM v0 ORDER BY id");
        assert_eq!(
            days,
            [Some("2024-01-02".to_owned()), Some("2023-12-31".to_owned())]
        );
    }

    #[tokio::test]
    async fn iso_dates_past_the_sample_read_the_same_through_a_view_as_in_a_table() {
        let (dir, run) = setup();
        // ISO dates in DuckDB's sample; past it, other spellings DuckDB's date cast accepts.
        let mut content = String::from("id,day\n");
        for i in 0..30_000 {
            content.push_str(&format!("{i},2024-01-02\n"));
        }
        content.push_str("30000,2024/03/04\n30001,2024-03-05 00:00:00\n30002,2024-3-6\n");
        let path = file(dir.path(), "iso.csv", &content);
        table_and_view(&run, &path, 0, json!({})).await;
        let definition = run.query_strings("SELECT sql FROM duckdb_views() WHERE view_name = 'v0'");
        let definition = definition[0].as_deref().unwrap();
        assert!(!definition.contains("dateformat"), "{definition}");
        let late = "SELECT day::VARCHAR FROM {} WHERE id >= 30000 ORDER BY id";
        let expected: Vec<Option<String>> = ["2024-03-04", "2024-03-05", "2024-03-06"]
            .map(|d| Some(d.to_owned()))
            .into();
        assert_eq!(run.query_strings(&late.replace("{}", "t0")), expected);
        assert_eq!(run.query_strings(&late.replace("{}", "v0")), expected);
        assert_eq!(typed_rows(&run, "v0"), typed_rows(&run, "t0"));
    }

    #[tokio::test]
    async fn a_view_reads_only_the_columns_asked_for_and_records_the_file() {
        let (dir, run) = setup();
        // Column `n` looks numeric in DuckDB's type sample but one row far past it is not: a
        // table cannot be made, a view can, and reading `a` through it never converts `n`.
        let mut content = String::from("a,n,s\n");
        for i in 0..40_000 {
            let n = if i == 30_000 {
                "oops".to_owned()
            } else {
                i.to_string()
            };
            content.push_str(&format!("{i},{n},\"x\ny\"\n"));
        }
        let path = file(dir.path(), "wide.csv", &content);
        let err = extract_as(&run, "t", json!({"path": path, "materialize": "table"}))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("oops"), "{err}");
        extract_as(&run, "v", json!({"path": "wide.csv"}))
            .await
            .unwrap();
        assert_eq!(
            run.query_strings("SELECT CAST(sum(a) AS VARCHAR) FROM v"),
            [Some("799980000".to_owned())]
        );
        let conn = run.connection();
        let plan: String = conn
            .query_row("EXPLAIN SELECT sum(a) FROM v", [], |r| r.get(1))
            .unwrap();
        assert!(plan.contains("READ_CSV"), "{plan}");
        assert!(plan.contains("Projections: a"), "only `a` is read: {plan}");
        assert!(
            conn.execute_batch("SELECT sum(n) FROM v").is_err(),
            "`n` is read when asked for"
        );
        // The view reads the file by its absolute path and carries the file's fingerprint.
        let views = execution_context::sources::source_views(&conn, None).unwrap();
        assert_eq!(views.len(), 1);
        let record = &views[0].record;
        assert_eq!(record.format, "csv");
        assert_eq!(record.files.len(), 1);
        assert_eq!(record.files[0].path, path);
        assert_eq!(record.files[0].size, content.len() as u64);
        assert!(
            views[0].definition.contains(&*path.to_string_lossy()),
            "{}",
            views[0].definition
        );
        assert_eq!(
            record.files[0].check(),
            execution_context::sources::FileState::Unchanged
        );
    }

    #[tokio::test]
    async fn a_view_replaces_a_table_and_a_table_a_view_of_the_same_step() {
        let (dir, run) = setup();
        let path = file(dir.path(), "a.csv", "x\n1\n2\n");
        extract_as(&run, STEP, json!({"path": path, "materialize": "table"}))
            .await
            .unwrap();
        extract_as(&run, STEP, json!({"path": path})).await.unwrap();
        assert_eq!(object_type(&run, STEP), "VIEW");
        extract_as(&run, STEP, json!({"path": path, "materialize": "table"}))
            .await
            .unwrap();
        assert_eq!(object_type(&run, STEP), "BASE TABLE");
        assert_eq!(rows(&run).len(), 2);
    }

    #[tokio::test]
    async fn utf16_and_bz2_input_asked_as_a_view_is_kept_as_a_table_and_says_so() {
        let (dir, run) = setup();
        let mut utf16 = vec![0xFF, 0xFE];
        for unit in "x\n1\n".encode_utf16() {
            utf16.extend(unit.to_le_bytes());
        }
        let path = file(dir.path(), "u.csv", utf16);
        let out = extract_as(&run, "u", json!({"path": path, "encoding": "utf-16"}))
            .await
            .unwrap();
        assert_eq!(out.rows, 1);
        assert_eq!(object_type(&run, "u"), "BASE TABLE");
        let events = std::fs::read_to_string(dir.path().join("session/events.jsonl")).unwrap();
        let fallback = events
            .lines()
            .find(|l| l.contains("extraction.materialized"))
            .expect("the fallback is an event");
        assert!(fallback.contains("utf-16"), "{fallback}");
        assert!(fallback.contains("\"materialize\":\"table\""), "{fallback}");
    }

    #[tokio::test]
    async fn a_view_over_a_missing_column_or_file_fails_in_its_own_step() {
        let (dir, run) = setup();
        let path = file(dir.path(), "a.csv", "x,y\n1,2\n");
        let err = extract_as(&run, "v", json!({"path": path, "columns": ["z"]}))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no column \"z\""), "{err}");
        let err = extract_as(&run, "v", json!({"path": "nope.csv"}))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert!(!run.table_exists("v"), "a failed step leaves no view");
    }
}
