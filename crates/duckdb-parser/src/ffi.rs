//! The unsafe part: DuckDB's C API on a private in-memory database, used only to parse.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char};
use std::ptr;
use std::sync::Mutex;

use duckdb::ffi;

/// An in-memory database and one connection to it (closed on drop, which only a failed open
/// reaches: the process keeps its parser).
struct Parser {
    db: ffi::duckdb_database,
    con: ffi::duckdb_connection,
}

// SAFETY: DuckDB's database and connection handles may be used from any thread, one caller at
// a time; the one `Parser` lives behind `PARSER`'s mutex.
unsafe impl Send for Parser {}

/// The process's one parser, opened on first use and kept: opening a DuckDB database registers
/// every built-in function (about 10 ms), which a check before each SQL step would otherwise
/// pay twice ([`crate::checked_create_table_as`]).
static PARSER: Mutex<Option<Parser>> = Mutex::new(None);

impl Parser {
    /// An in-memory database with one thread (it only parses) and a connection to it.
    fn open() -> Result<Self, String> {
        let mut db: ffi::duckdb_database = ptr::null_mut();
        let mut con: ffi::duckdb_connection = ptr::null_mut();
        let mut config: ffi::duckdb_config = ptr::null_mut();
        // SAFETY: a null path opens an in-memory database; every out-pointer is a valid local;
        // the config is created and destroyed here, and its strings are NUL-terminated
        // literals. On failure the handles stay null and `Drop` skips them.
        unsafe {
            if ffi::duckdb_create_config(&mut config) != ffi::DuckDBSuccess {
                return Err("cannot configure DuckDB's parser".into());
            }
            ffi::duckdb_set_config(config, c"threads".as_ptr(), c"1".as_ptr());
            let opened = ffi::duckdb_open_ext(ptr::null(), &mut db, config, ptr::null_mut());
            ffi::duckdb_destroy_config(&mut config);
            if opened != ffi::DuckDBSuccess {
                return Err("cannot open DuckDB's parser".into());
            }
            let mut parser = Parser { db, con };
            if ffi::duckdb_connect(parser.db, &mut con) != ffi::DuckDBSuccess {
                return Err("cannot connect to DuckDB's parser".into());
            }
            parser.con = con;
            Ok(parser)
        }
    }
}

impl Drop for Parser {
    fn drop(&mut self) {
        // SAFETY: the handles were created by duckdb_connect / duckdb_open and are closed once;
        // DuckDB accepts null handles here.
        unsafe {
            if !self.con.is_null() {
                ffi::duckdb_disconnect(&mut self.con);
            }
            if !self.db.is_null() {
                ffi::duckdb_close(&mut self.db);
            }
        }
    }
}

/// The extracted statements of one text, destroyed on drop.
struct Extracted(ffi::duckdb_extracted_statements);

impl Drop for Extracted {
    fn drop(&mut self) {
        // SAFETY: created by duckdb_extract_statements (possibly null), destroyed once.
        unsafe { ffi::duckdb_destroy_extracted(&mut self.0) }
    }
}

fn lock_parser() -> std::sync::MutexGuard<'static, Option<Parser>> {
    // A panic while holding the lock cannot leave the Option half-written.
    PARSER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Opens the process's parser unless it is open; an open that fails is tried again (and
/// reported) by the first check.
pub(crate) fn open_parser() {
    let mut cached = lock_parser();
    if cached.is_none() {
        *cached = Parser::open().ok();
    }
}

/// Whether the process's parser is open.
pub(crate) fn parser_is_open() -> bool {
    lock_parser().is_some()
}

pub(crate) fn count_statements(sql: &str) -> Result<usize, String> {
    let text = CString::new(sql).map_err(|_| "the query contains a NUL character".to_owned())?;
    let mut cached = lock_parser();
    let parser = match cached.as_mut() {
        Some(parser) => parser,
        None => cached.insert(Parser::open()?),
    };
    let mut extracted = Extracted(ptr::null_mut());
    // SAFETY: `parser.con` is a live connection, `text` a NUL-terminated string that outlives
    // the call, and `extracted.0` a valid out-pointer freed by `Extracted`'s drop.
    let count = unsafe {
        ffi::duckdb_extract_statements(parser.con, text.as_ptr() as *const c_char, &mut extracted.0)
    };
    if count == 0 {
        // SAFETY: `extracted.0` is what duckdb_extract_statements returned; the message (if
        // any) lives as long as it and is copied before it is destroyed.
        let error = unsafe {
            let message = ffi::duckdb_extract_statements_error(extracted.0);
            (!message.is_null()).then(|| CStr::from_ptr(message).to_string_lossy().into_owned())
        };
        return match error {
            Some(message) if !message.is_empty() => Err(message),
            _ => Ok(0),
        };
    }
    usize::try_from(count).map_err(|_| "too many statements".to_owned())
}
