//! PostgreSQL statements to what the server does with them (ADR 0029).
//!
//! Queries are parsed with sqlparser's PostgreSQL dialect and their syntax tree is rewritten
//! into DuckDB SQL over the catalog built by `catalog.sql`: `pg_catalog.X` (or an unqualified
//! catalog name, which PostgreSQL always looks up in pg_catalog first) becomes
//! `osiris_catalog.X`, `information_schema.X` becomes `osiris_information_schema.X`, the
//! functions clients call become the catalog's macros, and PostgreSQL-only syntax (`::regclass`
//! casts, `OPERATOR(pg_catalog.~)`, `COLLATE pg_catalog.default`, `= ANY(array)`,
//! `<> ALL(array)`) becomes DuckDB's. Session statements (SET, SHOW, BEGIN, ...) are told from
//! their tokens. Nothing matches whole query texts.

use std::ops::ControlFlow;

use sqlparser::ast::{
    ArrayElemTypeDef, BinaryOperator, CastKind, DataType, Expr, Function, FunctionArg,
    FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident, ObjectName, ObjectNamePart,
    SelectItem, SetExpr, Statement, TableAliasColumnDef, TableFactor, UnaryOperator, Value,
    VisitMut, VisitorMut,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

/// Schema of the PostgreSQL catalog in each client's database.
pub const CATALOG: &str = "osiris_catalog";
/// Schema of `information_schema` in each client's database.
pub const INFORMATION_SCHEMA: &str = "osiris_information_schema";

/// Relations of `pg_catalog` that `catalog.sql` defines.
const CATALOG_RELATIONS: &[&str] = &[
    "pg_am",
    "pg_attrdef",
    "pg_attribute",
    "pg_authid",
    "pg_cast",
    "pg_class",
    "pg_collation",
    "pg_constraint",
    "pg_database",
    "pg_depend",
    "pg_description",
    "pg_enum",
    "pg_event_trigger",
    "pg_extension",
    "pg_foreign_table",
    "pg_index",
    "pg_inherits",
    "pg_language",
    "pg_locks",
    "pg_matviews",
    "pg_namespace",
    "pg_opclass",
    "pg_operator",
    "pg_partitioned_table",
    "pg_policy",
    "pg_proc",
    "pg_publication",
    "pg_publication_namespace",
    "pg_publication_rel",
    "pg_publication_tables",
    "pg_range",
    "pg_rewrite",
    "pg_roles",
    "pg_sequence",
    "pg_settings",
    "pg_shdescription",
    "pg_stat_activity",
    "pg_stat_all_tables",
    "pg_stat_user_tables",
    "pg_statistic_ext",
    "pg_tables",
    "pg_tablespace",
    "pg_trigger",
    "pg_type",
    "pg_user",
    "pg_views",
];

/// Functions `catalog.sql` defines as macros (called with or without `pg_catalog.`).
const CATALOG_FUNCTIONS: &[&str] = &[
    "array_lower",
    "array_upper",
    "col_description",
    "current_catalog",
    "current_database",
    "current_role",
    "current_schema",
    "current_schemas",
    "current_setting",
    "current_user",
    "format_type",
    "generate_subscripts",
    "has_any_column_privilege",
    "has_column_privilege",
    "has_database_privilege",
    "has_function_privilege",
    "has_schema_privilege",
    "has_sequence_privilege",
    "has_table_privilege",
    "inet_server_addr",
    "inet_server_port",
    "obj_description",
    "parse_ident",
    "pg_backend_pid",
    "pg_database_size",
    "pg_encoding_to_char",
    "pg_collation_is_visible",
    "pg_function_is_visible",
    "pg_get_constraintdef",
    "pg_get_expr",
    "pg_get_function_arguments",
    "pg_get_function_identity_arguments",
    "pg_get_function_result",
    "pg_get_indexdef",
    "pg_get_keywords",
    "pg_get_partkeydef",
    "pg_get_ruledef",
    "pg_get_serial_sequence",
    "pg_get_statisticsobjdef_columns",
    "pg_get_triggerdef",
    "pg_get_userbyid",
    "pg_get_viewdef",
    "pg_has_role",
    "pg_indexes_size",
    "pg_is_in_recovery",
    "pg_postmaster_start_time",
    "pg_relation_is_publishable",
    "pg_relation_size",
    "pg_table_is_visible",
    "pg_table_size",
    "pg_total_relation_size",
    "pg_type_is_visible",
    "pg_typeof",
    "quote_ident",
    "session_user",
    "set_config",
    "shobj_description",
    "to_regclass",
    "to_regnamespace",
    "to_regproc",
    "to_regtype",
    "txid_current",
    "user",
    "version",
];

/// `information_schema` relations `catalog.sql` defines.
const INFORMATION_SCHEMA_RELATIONS: &[&str] = &[
    "_pg_expandarray",
    "character_sets",
    "columns",
    "key_column_usage",
    "routines",
    "schemata",
    "table_constraints",
    "tables",
    "views",
];

/// What one statement asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// A query for DuckDB: translated SQL and, per `$n`, what its type follows from.
    Query {
        /// DuckDB SQL.
        sql: String,
        /// Per parameter (index n-1), a hint of its type.
        hints: Vec<Option<Hint>>,
        /// Where its columns come from, when it reads one table.
        origin: Option<Origin>,
        /// `set_config('name', 'value', _)` calls inside the query, applied as SETs before it
        /// runs (the call itself answers the value).
        settings: Vec<(String, String)>,
    },
    /// `SELECT osiris_attach('<id>')` (`None`: the id is parameter `$1`).
    Attach(Option<String>),
    /// `SET name = value` (`None`: back to the default, as RESET / SET ... TO DEFAULT).
    Set(String, Option<String>),
    /// `SELECT set_config('name', 'value', is_local)`: SET, answering the value.
    SetConfig(String, String),
    /// `RESET ALL`.
    ResetAll,
    /// `SHOW name` (`all` for SHOW ALL).
    Show(String),
    /// A transaction statement, answered with this tag.
    Transaction(&'static str),
    /// Accepted and ignored, answered with this tag.
    NoOp(&'static str),
    /// `DECLARE name CURSOR FOR query`: the translated query.
    Declare {
        /// Cursor name.
        name: String,
        /// DuckDB SQL.
        sql: String,
    },
    /// `FETCH [FORWARD] n FROM name` (`count` 0: all).
    Fetch {
        /// Cursor name.
        name: String,
        /// Rows to fetch; 0 for all.
        count: usize,
    },
    /// `CLOSE name` (`None`: CLOSE ALL).
    Close(Option<String>),
    /// `COPY (query) TO STDOUT`.
    Copy {
        /// DuckDB SQL of the rows.
        sql: String,
        /// Output format.
        format: CopyFormat,
    },
    /// Valid PostgreSQL that this server does not do (0A000), with the reason.
    Unsupported(String),
    /// Anything that could write.
    Write,
}

/// Format of `COPY ... TO STDOUT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyFormat {
    /// Tab-separated text, `\N` for NULL.
    Text,
    /// CSV, optionally with a header line.
    Csv {
        /// Whether the first line names the columns.
        header: bool,
    },
    /// PostgreSQL's binary COPY format.
    Binary,
}

/// Where a query's result columns come from, when it reads one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The table's name as written (1 to 3 parts).
    pub relation: Vec<String>,
    /// One per select item.
    pub items: Vec<OriginItem>,
}

/// One select item of an [`Origin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginItem {
    /// A column of the table.
    Column(String),
    /// `*`: every column of the table.
    All,
    /// Anything else.
    Computed,
}

/// The [`Origin`] of `SELECT ... FROM one_table`, before the rewrite.
fn origin(statement: &Statement) -> Option<Origin> {
    let Statement::Query(q) = statement else {
        return None;
    };
    if q.with.is_some() {
        return None;
    }
    let SetExpr::Select(select) = q.body.as_ref() else {
        return None;
    };
    let [from] = select.from.as_slice() else {
        return None;
    };
    let TableFactor::Table {
        name, args: None, ..
    } = &from.relation
    else {
        return None;
    };
    if !from.joins.is_empty() || relation(name).is_some() {
        return None;
    }
    let items = select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => match e {
                Expr::Identifier(i) => OriginItem::Column(i.value.clone()),
                Expr::CompoundIdentifier(p) => p.last().map_or(OriginItem::Computed, |i| {
                    OriginItem::Column(i.value.clone())
                }),
                _ => OriginItem::Computed,
            },
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => OriginItem::All,
        })
        .collect();
    Some(Origin {
        relation: parts(name),
        items,
    })
}

/// What a parameter's type follows from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// `$n::type`: a DuckDB type name.
    Cast(String),
    /// Compared with this column (the last part of its name).
    Column(String),
}

/// Plans one statement (the simple query protocol's text is split beforehand).
pub fn plan(statement: &str) -> Plan {
    let tokens = words(statement);
    let first = tokens.first().map(String::as_str).unwrap_or("");
    let second = tokens.get(1).map(String::as_str).unwrap_or("");
    match first {
        "begin" | "start" => return Plan::Transaction("BEGIN"),
        "commit" | "end" => return Plan::Transaction("COMMIT"),
        "abort" => return Plan::Transaction("ROLLBACK"),
        // ROLLBACK TO [SAVEPOINT] x stays in the transaction.
        "rollback" if tokens.iter().any(|t| t == "to") => return Plan::NoOp("ROLLBACK"),
        "rollback" => return Plan::Transaction("ROLLBACK"),
        "savepoint" => return Plan::NoOp("SAVEPOINT"),
        "release" => return Plan::NoOp("RELEASE"),
        "discard" => return Plan::NoOp("DISCARD ALL"),
        "deallocate" => return Plan::NoOp("DEALLOCATE"),
        "set" => return plan_set(&tokens[1..]),
        "reset" if second == "all" => return Plan::ResetAll,
        "reset" => return Plan::Set(setting_name(&tokens[1..]), None),
        "show" => return Plan::Show(setting_name(&tokens[1..])),
        _ => {}
    }
    let dialect = PostgreSqlDialect {};
    match Parser::parse_sql(&dialect, statement) {
        Ok(mut statements) if statements.len() == 1 => {
            let mut statement = statements.remove(0);
            if let Some(plan) = cursor_or_copy(&mut statement) {
                return plan;
            }
            if !is_query(&statement) {
                return Plan::Write;
            }
            if let Some(set) = set_config_call(&statement) {
                return set;
            }
            if let Some(attach) = attach_call(&statement) {
                return Plan::Attach(attach);
            }
            let origin = origin(&statement);
            name_columns(&mut statement);
            regclass_names(&mut statement);
            let mut rewriter = Rewriter::default();
            let _ = statement.visit(&mut rewriter);
            Plan::Query {
                sql: statement.to_string(),
                hints: rewriter.hints,
                origin,
                settings: rewriter.settings,
            }
        }
        // DuckDB's own query syntax (FROM-first, SUMMARIZE, DESCRIBE, ...) goes to DuckDB as
        // written: the sessions are attached read-only and nothing else is writable.
        _ if matches!(
            first,
            "select" | "with" | "values" | "from" | "table" | "describe" | "summarize"
        ) =>
        {
            Plan::Query {
                sql: statement.to_owned(),
                hints: Vec::new(),
                origin: None,
                settings: Vec::new(),
            }
        }
        _ => Plan::Write,
    }
}

/// The statement's words and symbols, lower-cased, comments and whitespace dropped; quoted
/// identifiers keep their quotes, string literals their text.
fn words(statement: &str) -> Vec<String> {
    let dialect = PostgreSqlDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, statement).tokenize() else {
        return Vec::new();
    };
    tokens
        .into_iter()
        .filter_map(|t| match t {
            Token::Whitespace(_) | Token::SemiColon | Token::EOF => None,
            Token::Word(w) if w.quote_style.is_some() => {
                Some(format!("\"{}\"", w.value.replace('"', "\"\"")))
            }
            Token::Word(w) => Some(w.value.to_ascii_lowercase()),
            Token::SingleQuotedString(s) => Some(s),
            other => Some(other.to_string()),
        })
        .collect()
}

/// The setting a SHOW or RESET names: `transaction isolation level` is
/// `transaction_isolation`, `time zone` is `timezone`.
fn setting_name(tokens: &[String]) -> String {
    let joined = tokens.join(" ");
    match joined.as_str() {
        "transaction isolation level" => "transaction_isolation".to_owned(),
        "time zone" => "timezone".to_owned(),
        "session authorization" => "session_authorization".to_owned(),
        _ => joined.replace(' ', ""),
    }
}

fn plan_set(tokens: &[String]) -> Plan {
    let mut tokens = tokens;
    if matches!(
        tokens.first().map(String::as_str),
        Some("session" | "local")
    ) && tokens.get(1).is_some_and(|t| t != "=" && t != "to")
    {
        tokens = &tokens[1..];
    }
    let first = tokens.first().map(String::as_str).unwrap_or("");
    match first {
        // SET TRANSACTION ... / SET SESSION CHARACTERISTICS AS TRANSACTION ...: only read-only
        // transactions exist here, any isolation is as good as serializable.
        "transaction" | "characteristics" => return Plan::NoOp("SET"),
        "time" if tokens.get(1).is_some_and(|t| t == "zone") => {
            return Plan::Set("timezone".to_owned(), value(&tokens[2..]));
        }
        "names" => return Plan::Set("client_encoding".to_owned(), value(&tokens[1..])),
        "session" if tokens.get(1).is_some_and(|t| t == "authorization") => {
            return Plan::NoOp("SET");
        }
        _ => {}
    }
    // name [. name] {= | TO} value [, value]...
    let split = tokens
        .iter()
        .position(|t| t == "=" || t == "to")
        .unwrap_or(tokens.len());
    let name = tokens[..split].concat();
    let rest = tokens.get(split + 1..).unwrap_or_default();
    Plan::Set(name, value(rest))
}

/// The value of SET (`None` for DEFAULT): comma-separated items joined with `, `.
fn value(tokens: &[String]) -> Option<String> {
    if tokens.is_empty() || tokens == ["default"] {
        return None;
    }
    let mut items: Vec<String> = vec![String::new()];
    for t in tokens {
        if t == "," {
            items.push(String::new());
        } else if let Some(last) = items.last_mut() {
            last.push_str(t);
        }
    }
    Some(items.join(", "))
}

/// Names the result columns as PostgreSQL does where DuckDB would name them by their SQL text:
/// a function call after the function (`current_schema`), a cast after what it casts or its
/// type, a literal or other expression `?column?`. Must run before the rewrite (which renames
/// functions).
fn name_columns(statement: &mut Statement) {
    let Statement::Query(query) = statement else {
        return;
    };
    let mut body = query.body.as_mut();
    // The first SELECT of a UNION names the columns.
    while let SetExpr::SetOperation { left, .. } = body {
        body = left.as_mut();
    }
    let SetExpr::Select(select) = body else {
        return;
    };
    for item in &mut select.projection {
        // PostgreSQL folds unquoted names to lower case: `AS TABLE_CAT` is `table_cat`.
        if let SelectItem::ExprWithAlias { alias, .. } = item
            && alias.quote_style.is_none()
        {
            alias.value = alias.value.to_lowercase();
        }
        if let SelectItem::UnnamedExpr(expr) = item
            && let Some(name) = column_name_of(expr)
        {
            let expr = take(expr);
            *item = SelectItem::ExprWithAlias {
                expr,
                alias: Ident::with_quote('"', name),
            };
        }
    }
}

/// PostgreSQL's name for an unnamed result column, where it differs from DuckDB's.
fn column_name_of(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Value(_) | Expr::BinaryOp { .. } | Expr::UnaryOp { .. } => {
            Some("?column?".to_owned())
        }
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => None,
        other => strong_name(other),
    }
}

/// The name PostgreSQL derives from an expression (`None`: it has none of its own).
fn strong_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Function(f) => last_part(&f.name).map(|n| n.to_ascii_lowercase()),
        Expr::Identifier(i) => Some(i.value.clone()),
        Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.clone()),
        Expr::Nested(inner) => strong_name(inner),
        Expr::Case { .. } => Some("case".to_owned()),
        Expr::Cast {
            expr, data_type, ..
        } => strong_name(expr).or_else(|| {
            Some(match data_type {
                DataType::Int(_) | DataType::Integer(_) => "int4".to_owned(),
                DataType::BigInt(_) => "int8".to_owned(),
                DataType::SmallInt(_) => "int2".to_owned(),
                DataType::Text => "text".to_owned(),
                DataType::Boolean | DataType::Bool => "bool".to_owned(),
                other => type_name(other).unwrap_or_else(|| "?column?".to_owned()),
            })
        }),
        _ => None,
    }
}

/// DECLARE / FETCH / CLOSE / COPY; `None` for other statements.
fn cursor_or_copy(statement: &mut Statement) -> Option<Plan> {
    use sqlparser::ast::{CloseCursor, CopyLegacyCsvOption, CopyLegacyOption, CopyOption};
    use sqlparser::ast::{CopySource, CopyTarget, DeclareType, FetchDirection};
    let count = |v: &Value| match v {
        Value::Number(n, _) => n.parse::<usize>().ok(),
        _ => None,
    };
    Some(match statement {
        Statement::Declare { stmts } => {
            let [declare] = stmts.as_mut_slice() else {
                return Some(Plan::Unsupported("one DECLARE at a time".into()));
            };
            if declare.declare_type != Some(DeclareType::Cursor) || declare.names.len() != 1 {
                return Some(Plan::Unsupported("only DECLARE ... CURSOR FOR".into()));
            }
            let Some(query) = declare.for_query.as_mut() else {
                return Some(Plan::Unsupported("DECLARE CURSOR needs FOR <query>".into()));
            };
            let mut inner = Statement::Query(query.clone());
            if !is_query(&inner) {
                return Some(Plan::Write);
            }
            let _ = inner.visit(&mut Rewriter::default());
            Plan::Declare {
                name: declare.names[0].value.clone(),
                sql: inner.to_string(),
            }
        }
        Statement::Fetch {
            name, direction, ..
        } => {
            let n = match direction {
                FetchDirection::Next | FetchDirection::Forward { limit: None } => Some(1),
                FetchDirection::Count { limit }
                | FetchDirection::Forward { limit: Some(limit) } => count(limit),
                FetchDirection::All | FetchDirection::ForwardAll => Some(0),
                _ => None,
            };
            match n {
                Some(count) => Plan::Fetch {
                    name: name.value.clone(),
                    count,
                },
                None => Plan::Unsupported("cursors here only move forward".into()),
            }
        }
        Statement::Close { cursor } => Plan::Close(match cursor {
            CloseCursor::All => None,
            CloseCursor::Specific { name } => Some(name.value.clone()),
        }),
        Statement::Copy {
            source,
            to,
            target,
            options,
            legacy_options,
            ..
        } => {
            if !*to || *target != CopyTarget::Stdout {
                return Some(Plan::Write);
            }
            let mut query = match source {
                CopySource::Query(q) => Statement::Query(q.clone()),
                CopySource::Table {
                    table_name,
                    columns,
                } => {
                    let list = if columns.is_empty() {
                        "*".to_owned()
                    } else {
                        columns
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    let dialect = PostgreSqlDialect {};
                    match Parser::parse_sql(&dialect, &format!("SELECT {list} FROM {table_name}")) {
                        Ok(mut s) if s.len() == 1 => s.remove(0),
                        _ => return Some(Plan::Unsupported("COPY of that table".into())),
                    }
                }
            };
            if !is_query(&query) {
                return Some(Plan::Write);
            }
            let _ = query.visit(&mut Rewriter::default());
            let mut format = CopyFormat::Text;
            let mut header = false;
            for option in options.iter() {
                match option {
                    CopyOption::Format(f) => {
                        format = match f.value.to_ascii_lowercase().as_str() {
                            "csv" => CopyFormat::Csv { header: false },
                            "binary" => CopyFormat::Binary,
                            _ => CopyFormat::Text,
                        }
                    }
                    CopyOption::Header(h) => header = *h,
                    _ => {}
                }
            }
            for option in legacy_options.iter() {
                match option {
                    CopyLegacyOption::Binary => format = CopyFormat::Binary,
                    CopyLegacyOption::Csv(csv) => {
                        format = CopyFormat::Csv { header: false };
                        header |= csv.iter().any(|o| matches!(o, CopyLegacyCsvOption::Header));
                    }
                    _ => {}
                }
            }
            if let CopyFormat::Csv { header: h } = &mut format {
                *h = header;
            }
            Plan::Copy {
                sql: query.to_string(),
                format,
            }
        }
        _ => return None,
    })
}

/// Whether a parsed statement only reads.
fn is_query(statement: &Statement) -> bool {
    match statement {
        Statement::Query(q) => {
            // A data-modifying CTE or body makes it a write.
            let writes = |body: &SetExpr| {
                matches!(
                    body,
                    SetExpr::Insert(_)
                        | SetExpr::Update(_)
                        | SetExpr::Delete(_)
                        | SetExpr::Merge(_)
                )
            };
            !writes(&q.body)
                && q.with
                    .as_ref()
                    .is_none_or(|w| w.cte_tables.iter().all(|c| !writes(&c.query.body)))
        }
        Statement::Explain {
            analyze, statement, ..
        } => !analyze && is_query(statement),
        Statement::ExplainTable { .. } => true,
        _ => false,
    }
}

/// `SELECT osiris_attach('<id>')` or `SELECT osiris_attach($1)` with nothing else.
/// `SELECT f(args)` and nothing else: the function's lower-case name and its argument values
/// (literals, or `$1`).
fn sole_call(statement: &Statement) -> Option<(String, Vec<&Value>)> {
    let Statement::Query(q) = statement else {
        return None;
    };
    let SetExpr::Select(select) = q.body.as_ref() else {
        return None;
    };
    if select.projection.len() != 1 || !select.from.is_empty() || select.selection.is_some() {
        return None;
    }
    let expr = match &select.projection[0] {
        SelectItem::UnnamedExpr(e) => e,
        SelectItem::ExprWithAlias { expr, .. } => expr,
        _ => return None,
    };
    let Expr::Function(f) = expr else {
        return None;
    };
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    let args = list
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v))) => Some(&v.value),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some((last_part(&f.name)?.to_ascii_lowercase(), args))
}

/// A string literal function argument.
fn string_arg(arg: &FunctionArg) -> Option<String> {
    match arg {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v))) => match &v.value {
            Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// `x::regclass` of an oid in a select list (alone, or cast on to text) answers the relation's
/// name, as PostgreSQL prints a regclass; elsewhere (comparisons, joins) it stays the number.
fn regclass_names(statement: &mut Statement) {
    let Statement::Query(q) = statement else {
        return;
    };
    let SetExpr::Select(select) = q.body.as_mut() else {
        return;
    };
    for item in &mut select.projection {
        let expr = match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
            _ => continue,
        };
        let target = match expr {
            Expr::Cast {
                expr: inner,
                data_type,
                ..
            } if matches!(data_type, DataType::Text | DataType::Varchar(_))
                || type_name(data_type)
                    .is_some_and(|t| matches!(t.as_str(), "text" | "varchar")) =>
            {
                inner.as_mut()
            }
            e => e,
        };
        if let Expr::Cast {
            expr: inner,
            data_type,
            ..
        } = target
            && type_name(data_type).as_deref() == Some("regclass")
            && !is_string(inner)
        {
            *target = catalog_call("osiris_regclass_name", vec![take(inner)]);
        }
    }
}

/// `SELECT osiris_attach('<id>')` or `SELECT osiris_attach($1)` with nothing else.
fn attach_call(statement: &Statement) -> Option<Option<String>> {
    match sole_call(statement)? {
        (name, args) if name == "osiris_attach" => match args.as_slice() {
            [Value::SingleQuotedString(id)] => Some(Some(id.clone())),
            [Value::Placeholder(p)] if p == "$1" => Some(None),
            _ => None,
        },
        _ => None,
    }
}

/// `SELECT set_config('name', 'value', is_local)` with literals: a SET that answers the value.
fn set_config_call(statement: &Statement) -> Option<Plan> {
    match sole_call(statement)? {
        (name, args) if name == "set_config" => match args.as_slice() {
            [
                Value::SingleQuotedString(setting),
                Value::SingleQuotedString(value),
                _,
            ] => Some(Plan::SetConfig(setting.clone(), value.clone())),
            _ => None,
        },
        _ => None,
    }
}

fn last_part(name: &ObjectName) -> Option<String> {
    name.0
        .last()
        .and_then(ObjectNamePart::as_ident)
        .map(|i| i.value.clone())
}

fn parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| p.as_ident().map(|i| i.value.clone()).unwrap_or_default())
        .collect()
}

fn object_name(parts: &[&str]) -> ObjectName {
    ObjectName(
        parts
            .iter()
            .map(|p| ObjectNamePart::Identifier(Ident::new(*p)))
            .collect(),
    )
}

/// Rewrites a relation name; `None` when it stays as it is.
fn relation(name: &ObjectName) -> Option<ObjectName> {
    let parts = parts(name);
    let lower: Vec<String> = parts.iter().map(|p| p.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    match l.as_slice() {
        // `osiris.schema.table`: the database name is ours.
        ["osiris", _, _] => {
            let rest: Vec<&str> = parts[1..].iter().map(String::as_str).collect();
            relation(&object_name(&rest)).or_else(|| Some(object_name(&rest)))
        }
        ["pg_catalog", table] => Some(object_name(&[CATALOG, table])),
        ["information_schema", table] => Some(object_name(&[INFORMATION_SCHEMA, table])),
        ["public", table] => Some(object_name(&["memory", "main", table])),
        [table] if CATALOG_RELATIONS.contains(table) => Some(object_name(&[CATALOG, table])),
        _ => None,
    }
}

/// PostgreSQL functions that DuckDB has under another name.
const RENAMED_FUNCTIONS: &[(&str, &str)] = &[
    ("json_agg", "json_group_array"),
    ("json_build_object", "json_object"),
    ("json_object_agg", "json_group_object"),
    ("jsonb_agg", "json_group_array"),
    ("jsonb_build_object", "json_object"),
    ("jsonb_object_agg", "json_group_object"),
    ("row_to_json", "to_json"),
];

/// Rewrites a function name; `None` when it stays as it is.
fn function(name: &ObjectName) -> Option<ObjectName> {
    let parts = parts(name);
    let lower: Vec<String> = parts.iter().map(|p| p.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    if let ["pg_catalog", f] | [f] = l.as_slice()
        && let Some((_, duckdb)) = RENAMED_FUNCTIONS.iter().find(|(pg, _)| pg == f)
    {
        return Some(object_name(&[duckdb]));
    }
    match l.as_slice() {
        ["pg_catalog", f] | [f] if CATALOG_FUNCTIONS.contains(f) => {
            Some(object_name(&[CATALOG, f]))
        }
        ["information_schema", f] if INFORMATION_SCHEMA_RELATIONS.contains(f) => {
            Some(object_name(&[INFORMATION_SCHEMA, f]))
        }
        // Any other pg_catalog function is DuckDB's function of that name.
        ["pg_catalog", f] => Some(object_name(&[f])),
        _ => None,
    }
}

/// The syntax tree rewriter; collects parameter hints on the way.
#[derive(Default)]
struct Rewriter {
    hints: Vec<Option<Hint>>,
    /// `set_config` calls with literal name and value.
    settings: Vec<(String, String)>,
}

impl Rewriter {
    fn hint(&mut self, expr: &Expr, hint: Hint) {
        let Some(n) = placeholder(expr) else {
            return;
        };
        if self.hints.len() < n {
            self.hints.resize(n, None);
        }
        let slot = &mut self.hints[n - 1];
        if slot.is_none() || matches!(hint, Hint::Cast(_)) {
            *slot = Some(hint);
        }
    }

    fn note_placeholder(&mut self, expr: &Expr) {
        if let Some(n) = placeholder(expr)
            && self.hints.len() < n
        {
            self.hints.resize(n, None);
        }
    }
}

/// `$n` (1-based).
fn placeholder(expr: &Expr) -> Option<usize> {
    let expr = match expr {
        Expr::Nested(e) => e.as_ref(),
        e => e,
    };
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Placeholder(p) => p.strip_prefix('$')?.parse().ok().filter(|&n| n > 0),
            _ => None,
        },
        _ => None,
    }
}

fn column_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(i) => Some(i.value.clone()),
        Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.clone()),
        Expr::Nested(e) => column_name(e),
        _ => None,
    }
}

fn call(name: ObjectName, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name,
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
                .collect(),
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

fn catalog_call(name: &str, args: Vec<Expr>) -> Expr {
    call(object_name(&[CATALOG, name]), args)
}

fn is_string(expr: &Expr) -> bool {
    matches!(expr, Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_)))
}

/// The lower-cased name of a PostgreSQL type (`pg_catalog.` dropped).
fn type_name(data_type: &DataType) -> Option<String> {
    match data_type {
        DataType::Regclass => Some("regclass".to_owned()),
        DataType::Custom(name, modifiers) if modifiers.is_empty() => {
            last_part(name).map(|n| n.to_ascii_lowercase())
        }
        _ => None,
    }
}

/// `pg_catalog.text` and the like: DuckDB knows the bare names; `jsonb` is DuckDB's JSON.
fn unqualify_type(data_type: &mut DataType) {
    match type_name(data_type).as_deref() {
        Some("jsonb") => *data_type = DataType::JSON,
        Some(bare) => {
            if let DataType::Custom(name, _) = data_type
                && name.0.len() > 1
            {
                *data_type = DataType::Custom(object_name(&[bare]), Vec::new());
            }
        }
        None => {}
    }
}

fn take(expr: &mut Expr) -> Expr {
    std::mem::replace(expr, Expr::Value(Value::Null.into()))
}

fn cast(expr: Expr, data_type: DataType) -> Expr {
    Expr::Cast {
        kind: CastKind::DoubleColon,
        expr: Box::new(expr),
        data_type,
        format: None,
    }
}

/// `regexp_matches(a, b[, 'i'])`, negated for the `!~` forms.
fn regex(left: Expr, right: Expr, insensitive: bool, negated: bool) -> Expr {
    let mut args = vec![left, right];
    if insensitive {
        args.push(Expr::Value(
            Value::SingleQuotedString("i".to_owned()).into(),
        ));
    }
    let matches = call(object_name(&["regexp_matches"]), args);
    if negated {
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr: Box::new(Expr::Nested(Box::new(matches))),
        }
    } else {
        matches
    }
}

impl VisitorMut for Rewriter {
    type Break = ();

    fn pre_visit_relation(&mut self, name: &mut ObjectName) -> ControlFlow<()> {
        if let Some(new) = relation(name) {
            *name = new;
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        // Table functions: `FROM pg_catalog.pg_get_keywords()`, `generate_series(...)`.
        if let TableFactor::Function { name, .. } = factor
            && let Some(new) = function(name)
        {
            *name = new;
        }
        if let TableFactor::Table {
            name,
            args: Some(_),
            alias,
            ..
        } = factor
        {
            // A scalar set-returning function aliased `s` is, in PostgreSQL, also the value
            // `s`; in DuckDB `s` would be the row. Naming its column `s` too keeps `x[s]`.
            if let Some(alias) = alias
                && alias.columns.is_empty()
                && last_part(name).is_some_and(|n| {
                    matches!(
                        n.to_ascii_lowercase().as_str(),
                        "generate_series" | "generate_subscripts" | "unnest"
                    )
                })
            {
                alias
                    .columns
                    .push(TableAliasColumnDef::from_name(alias.name.value.clone()));
            }
            if let Some(new) = function(name) {
                *name = new;
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        self.note_placeholder(expr);
        match expr {
            Expr::Function(f) => {
                let name = last_part(&f.name).map(|n| n.to_ascii_lowercase());
                if name.as_deref() == Some("set_config")
                    && let FunctionArguments::List(list) = &f.args
                    && let [setting, value, ..] = list.args.as_slice()
                    && let (Some(setting), Some(value)) = (string_arg(setting), string_arg(value))
                {
                    self.settings.push((setting, value));
                }
                if name.as_deref() == Some("_pg_expandarray") {
                    // In a select list the set-returning function yields (x, n) records.
                    f.name = object_name(&[CATALOG, "osiris_expandarray"]);
                } else if name.as_deref() == Some("generate_subscripts") {
                    f.name = object_name(&[CATALOG, "osiris_subscripts"]);
                } else if let Some(new) = function(&f.name) {
                    f.name = new;
                    // `current_user` and friends come without parentheses.
                    if matches!(f.args, FunctionArguments::None) {
                        f.args = FunctionArguments::List(FunctionArgumentList {
                            duplicate_treatment: None,
                            args: Vec::new(),
                            clauses: Vec::new(),
                        });
                    }
                }
            }
            Expr::CompoundIdentifier(idents) if idents.len() == 3 => {
                // pg_catalog.pg_class.relname
                let schema = idents[0].value.to_ascii_lowercase();
                if schema == "pg_catalog" {
                    idents[0] = Ident::new(CATALOG);
                } else if schema == "information_schema" {
                    idents[0] = Ident::new(INFORMATION_SCHEMA);
                }
            }
            Expr::Collate { expr: inner, .. } => {
                // COLLATE pg_catalog.default / "C": DuckDB's default binary collation.
                *expr = take(inner);
            }
            Expr::BinaryOp { left, op, right } => {
                if let Some(column) = column_name(left) {
                    self.hint(right, Hint::Column(column));
                }
                if let Some(column) = column_name(right) {
                    self.hint(left, Hint::Column(column));
                }
                let regex_op = match op {
                    BinaryOperator::PGRegexMatch => Some((false, false)),
                    BinaryOperator::PGRegexIMatch => Some((true, false)),
                    BinaryOperator::PGRegexNotMatch => Some((false, true)),
                    BinaryOperator::PGRegexNotIMatch => Some((true, true)),
                    BinaryOperator::PGCustomBinaryOperator(parts) => {
                        match parts.last().map(String::as_str) {
                            Some("~") => Some((false, false)),
                            Some("~*") => Some((true, false)),
                            Some("!~") => Some((false, true)),
                            Some("!~*") => Some((true, true)),
                            Some(other) => {
                                let other = match other {
                                    "=" => BinaryOperator::Eq,
                                    "<>" | "!=" => BinaryOperator::NotEq,
                                    "<" => BinaryOperator::Lt,
                                    ">" => BinaryOperator::Gt,
                                    "<=" => BinaryOperator::LtEq,
                                    ">=" => BinaryOperator::GtEq,
                                    "||" => BinaryOperator::StringConcat,
                                    "~~" => BinaryOperator::PGLikeMatch,
                                    _ => return ControlFlow::Continue(()),
                                };
                                *op = other;
                                None
                            }
                            None => None,
                        }
                    }
                    _ => None,
                };
                if let Some((insensitive, negated)) = regex_op {
                    *expr = regex(take(left), take(right), insensitive, negated);
                }
            }
            Expr::Between {
                expr: e, low, high, ..
            } => {
                if let Some(column) = column_name(e) {
                    self.hint(low, Hint::Column(column.clone()));
                    self.hint(high, Hint::Column(column));
                }
            }
            Expr::InList { expr: e, list, .. } => {
                if let Some(column) = column_name(e) {
                    for item in list.iter() {
                        self.hint(item, Hint::Column(column.clone()));
                    }
                }
            }
            Expr::AnyOp {
                left,
                compare_op,
                right,
                ..
            } if matches!(compare_op, BinaryOperator::Eq)
                && !matches!(right.as_ref(), Expr::Subquery(_)) =>
            {
                // x = ANY(array) is list membership.
                *expr = call(
                    object_name(&["list_contains"]),
                    vec![take(right), take(left)],
                );
            }
            Expr::AllOp {
                left,
                compare_op,
                right,
            } if matches!(compare_op, BinaryOperator::NotEq)
                && !matches!(right.as_ref(), Expr::Subquery(_)) =>
            {
                // x <> ALL(array): not a member (NULL-safe enough for catalog filters).
                let member = call(
                    object_name(&["list_contains"]),
                    vec![take(right), take(left)],
                );
                *expr = Expr::UnaryOp {
                    op: UnaryOperator::Not,
                    expr: Box::new(Expr::Nested(Box::new(member))),
                };
            }
            Expr::Cast {
                expr: inner,
                data_type,
                ..
            } => {
                if let DataType::Array(ArrayElemTypeDef::SquareBracket(element, _)) = data_type {
                    unqualify_type(element);
                }
                let name = type_name(data_type);
                if placeholder(inner).is_some() {
                    let hint = name.clone().unwrap_or_else(|| data_type.to_string());
                    self.hint(inner, Hint::Cast(hint));
                }
                // A name (a literal, or a parameter the client binds as text) is looked up;
                // an oid expression stays the number.
                let lookup = |f: &str, inner: &mut Box<Expr>| {
                    if is_string(inner) || placeholder(inner).is_some() {
                        catalog_call(f, vec![take(inner)])
                    } else {
                        cast(take(inner), DataType::BigInt(None))
                    }
                };
                match name.as_deref() {
                    Some("regclass") => *expr = lookup("osiris_regclass", inner),
                    Some("regtype") => *expr = lookup("osiris_regtype", inner),
                    Some("regnamespace") => *expr = lookup("osiris_regnamespace", inner),
                    // Functions are known by name here (pg_type.typinput is `array_in`).
                    Some("regproc" | "regprocedure") => {
                        let mut inner = take(inner);
                        if let Expr::Value(v) = &mut inner
                            && let Value::SingleQuotedString(name) = &mut v.value
                        {
                            let bare = name.rsplit('.').next().unwrap_or_default().to_owned();
                            *name = bare;
                        }
                        *expr = inner;
                    }
                    Some("oid" | "xid" | "cid" | "tid" | "regrole" | "regconfig") => {
                        *data_type = DataType::BigInt(None);
                    }
                    Some(
                        "name" | "char" | "bpchar" | "pg_node_tree" | "aclitem" | "citext"
                        | "unknown",
                    ) => *data_type = DataType::Varchar(None),
                    Some("int2vector" | "oidvector" | "anyarray") => *expr = take(inner),
                    Some(_) => unqualify_type(data_type),
                    None => {}
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(statement: &str) -> String {
        match plan(statement) {
            Plan::Query { sql, .. } => sql,
            other => panic!("{statement}: {other:?}"),
        }
    }

    #[test]
    fn catalog_names_go_to_the_catalog_schemas() {
        assert_eq!(
            sql("select n.nspname from pg_catalog.pg_namespace n join pg_class c on true"),
            "SELECT n.nspname FROM osiris_catalog.pg_namespace AS n \
             JOIN osiris_catalog.pg_class AS c ON true"
        );
        assert_eq!(
            sql("select * from information_schema.tables"),
            "SELECT * FROM osiris_information_schema.tables"
        );
        assert_eq!(
            sql("select * from \"run-1\".extract"),
            "SELECT * FROM \"run-1\".extract"
        );
    }

    #[test]
    fn postgres_syntax_becomes_duckdb_syntax() {
        assert_eq!(
            sql("SELECT 'x.t'::regclass, c.oid::pg_catalog.regclass, 'int4'::regtype"),
            "SELECT osiris_catalog.osiris_regclass('x.t') AS \"regclass\", \
             osiris_catalog.osiris_regclass_name(c.oid) AS \"oid\", \
             osiris_catalog.osiris_regtype('int4') AS \"regtype\""
        );
        // A regclass is printed as a name, compared as a number.
        assert_eq!(
            sql("SELECT c.oid::regclass::text FROM pg_class c WHERE c.oid::regclass = 5"),
            "SELECT osiris_catalog.osiris_regclass_name(c.oid)::TEXT AS \"oid\" \
             FROM osiris_catalog.pg_class AS c WHERE c.oid::BIGINT = 5"
        );
        assert_eq!(
            sql(
                "SELECT 1 WHERE n.nspname OPERATOR(pg_catalog.~) '^(s1)$' COLLATE pg_catalog.default"
            ),
            "SELECT 1 AS \"?column?\" WHERE regexp_matches(n.nspname, '^(s1)$')"
        );
        assert_eq!(
            sql("SELECT 1 WHERE c.relkind = ANY(ARRAY['r','v']) AND n.nspname <> ALL(ARRAY['a'])"),
            "SELECT 1 AS \"?column?\" WHERE list_contains(ARRAY['r', 'v'], c.relkind) \
             AND NOT (list_contains(ARRAY['a'], n.nspname))"
        );
        assert_eq!(
            sql("SELECT pg_catalog.format_type(a.atttypid, a.atttypmod), current_user, version()"),
            "SELECT osiris_catalog.format_type(a.atttypid, a.atttypmod) AS \"format_type\", \
             osiris_catalog.current_user() AS \"current_user\", \
             osiris_catalog.version() AS \"version\""
        );
        assert_eq!(
            sql("SELECT c.relname::name, 'r'::\"char\""),
            "SELECT c.relname::VARCHAR AS \"relname\", 'r'::VARCHAR AS \"char\""
        );
    }

    #[test]
    fn parameters_get_hints() {
        let Plan::Query { hints, .. } =
            plan("SELECT * FROM t WHERE id = $1 AND $2::numeric > amount AND x IN ($4)")
        else {
            panic!()
        };
        assert_eq!(
            hints,
            vec![
                Some(Hint::Column("id".into())),
                Some(Hint::Cast("NUMERIC".into())),
                None,
                Some(Hint::Column("x".into()))
            ]
        );
    }

    #[test]
    fn session_statements_are_told_apart() {
        assert_eq!(
            plan("SET search_path TO \"Run-1\", public"),
            Plan::Set("search_path".into(), Some("\"Run-1\", public".into()))
        );
        assert_eq!(
            plan("set extra_float_digits = 3"),
            Plan::Set("extra_float_digits".into(), Some("3".into()))
        );
        assert_eq!(
            plan("SET TIME ZONE 'UTC'"),
            Plan::Set("timezone".into(), Some("UTC".into()))
        );
        assert_eq!(
            plan("SET SESSION statement_timeout TO DEFAULT"),
            Plan::Set("statement_timeout".into(), None)
        );
        assert_eq!(
            plan("show transaction isolation level"),
            Plan::Show("transaction_isolation".into())
        );
        assert_eq!(plan("RESET ALL"), Plan::ResetAll);
        assert_eq!(
            plan("SELECT pg_catalog.set_config('search_path', 'a', false)"),
            Plan::SetConfig("search_path".into(), "a".into())
        );
        assert_eq!(plan("BEGIN READ ONLY"), Plan::Transaction("BEGIN"));
        assert_eq!(plan("ROLLBACK TO SAVEPOINT a"), Plan::NoOp("ROLLBACK"));
        assert_eq!(plan("SAVEPOINT a"), Plan::NoOp("SAVEPOINT"));
    }

    #[test]
    fn cursors_and_copy_are_planned() {
        assert_eq!(
            plan("DECLARE \"c1\" NO SCROLL CURSOR WITHOUT HOLD FOR SELECT * FROM pg_class"),
            Plan::Declare {
                name: "c1".into(),
                sql: "SELECT * FROM osiris_catalog.pg_class".into()
            }
        );
        assert_eq!(
            plan("FETCH FORWARD 5 FROM \"c1\""),
            Plan::Fetch {
                name: "c1".into(),
                count: 5
            }
        );
        assert_eq!(
            plan("FETCH ALL FROM c1"),
            Plan::Fetch {
                name: "c1".into(),
                count: 0
            }
        );
        assert_eq!(plan("CLOSE c1"), Plan::Close(Some("c1".into())));
        assert_eq!(
            plan("COPY (SELECT 1) TO STDOUT WITH (FORMAT csv, HEADER)"),
            Plan::Copy {
                sql: "SELECT 1".into(),
                format: CopyFormat::Csv { header: true }
            }
        );
        assert_eq!(
            plan("COPY \"s\".\"t\" TO STDOUT (FORMAT binary)"),
            Plan::Copy {
                sql: "SELECT * FROM \"s\".\"t\"".into(),
                format: CopyFormat::Binary
            }
        );
        assert_eq!(plan("COPY t FROM STDIN"), Plan::Write);
        assert_eq!(plan("COPY (SELECT 1) TO '/tmp/x'"), Plan::Write);
    }

    #[test]
    fn writes_are_refused_and_attach_is_recognised() {
        assert_eq!(plan("insert into t values (1)"), Plan::Write);
        assert_eq!(plan("create table t (a int)"), Plan::Write);
        assert_eq!(plan("attach 'x.db'"), Plan::Write);
        assert_eq!(
            plan("with d as (delete from t returning *) select * from d"),
            Plan::Write
        );
        assert_eq!(
            plan("SELECT osiris_attach('a''b')"),
            Plan::Attach(Some("a'b".into()))
        );
        assert_eq!(plan("select osiris_attach($1) as x"), Plan::Attach(None));
        assert!(matches!(plan("FROM t SELECT a"), Plan::Query { .. }));
    }
}
