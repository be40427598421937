//! The fetch loop: one request per page, page info from the same response, records handed to
//! the page loader while the next page is requested.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use driver_api::{Driver, DriverError, ErrorClass, Result, StepContext, StepInputs, StepOutput};
use execution_context::object;
use http_support::{
    HttpClient, HttpResponse, JsonOptions, JsonPath, LoadSummary, Method, PageLoader, into_records,
    pick, status_error,
};
use serde_json::{Value, json};

use crate::config::{Config, GraphqlConnection, Pagination, Plan};

/// The `graphql.extractor` driver.
#[derive(Debug, Default, Clone, Copy)]
pub struct GraphqlExtractor;

#[async_trait]
impl Driver for GraphqlExtractor {
    const NAME: &'static str = "graphql.extractor";
    type Connection = GraphqlConnection;
    type Config = Config;

    async fn run(
        &self,
        ctx: &StepContext,
        connection: GraphqlConnection,
        config: Config,
        _inputs: StepInputs,
    ) -> Result<StepOutput> {
        let plan = Plan::new(&connection, config)?;
        let client = HttpClient::for_step(ctx, &plan.client)?;
        let started = Instant::now();
        ctx.event(
            "extraction.start",
            object([
                ("endpoint", Value::String(endpoint_for_log(&plan.endpoint))),
                ("pagination", pagination_name(&plan.pagination).into()),
            ]),
        );
        let mut loader = PageLoader::for_step(
            ctx,
            JsonOptions {
                flatten: plan.flatten,
            },
        )?;
        let fetched = fetch_pages(ctx, &plan, &client, &mut loader).await;
        let fetch_ms = started.elapsed().as_millis() as u64;
        client.report(ctx);
        if let Err(error) = fetched {
            ctx.metric("pages_fetched", loader.pages());
            loader.abort().await;
            return Err(error);
        }
        let summary: LoadSummary = loader.finish().await?;
        summary.report(ctx);
        let stats = client.stats();
        ctx.event(
            "extraction.complete",
            object([
                ("rows", summary.rows.into()),
                ("pages", summary.pages.into()),
                ("requests", stats.requests_made.into()),
                ("retries", stats.retries.into()),
                // Until the last page was handed to the loader; the rest is decoding, appending
                // and committing what was still in flight.
                ("fetch_ms", fetch_ms.into()),
                ("duration_ms", (started.elapsed().as_millis() as u64).into()),
            ]),
        );
        Ok(StepOutput::table(ctx.output_table().clone(), summary.rows))
    }

    /// One `query { __typename }` with the connection's endpoint and credentials, one retry.
    async fn doctor(&self, connection: &GraphqlConnection) -> Result<()> {
        let config: Config = serde_json::from_value(json!({
            "query": "query { __typename }",
            "max_retries": 1,
        }))
        .map_err(|e| DriverError::internal(format!("the doctor's config: {e}")))?;
        let plan = Plan::new(connection, config)?;
        let client = HttpClient::new(&plan.client)?;
        let body = json!({"query": plan.query});
        graphql_page(&client, &plan.endpoint, &body, None)
            .await
            .map(|_| ())
    }
}

/// Requests every page and hands its records to the loader.
async fn fetch_pages(
    ctx: &StepContext,
    plan: &Plan,
    client: &HttpClient,
    loader: &mut PageLoader,
) -> Result<()> {
    let mut variables = plan.variables.clone();
    if let Some((name, size)) = &plan.page_size {
        variables.insert(name.clone(), (*size).into());
    }
    let records_at = Arc::new(plan.data_path.clone());
    let mut offset: u64 = 0;
    let mut cursors = HashSet::new();
    let mut pages: u64 = 0;
    loop {
        ctx.check_cancelled()?;
        if let Pagination::Offset { variable, .. } = &plan.pagination {
            variables.insert(variable.clone(), offset.into());
        }
        let body = json!({"query": plan.query, "variables": variables});
        let page_info = match &plan.pagination {
            Pagination::Relay { page_info, .. } => Some(page_info),
            _ => None,
        };
        let page = graphql_page(client, &plan.endpoint, &body, page_info).await?;
        pages += 1;
        let next_cursor = match &plan.pagination {
            Pagination::Relay {
                page_info,
                cursor_field,
                has_next_field,
                ..
            } => relay_next(
                page.page_info.as_ref(),
                page_info,
                cursor_field,
                has_next_field,
                pages,
            )?,
            _ => None,
        };
        let mut count = 0;
        if let Pagination::Offset { .. } = &plan.pagination {
            // The record count decides the next request: parse here.
            let mut doc: Value =
                serde_json::from_slice(&page.body).map_err(|e| DriverError::Remote {
                    message: format!("the response is not valid JSON: {e}"),
                })?;
            let records = into_records(plan.data_path.take(&mut doc)?);
            count = records.len() as u64;
            loader.send(records).await?;
        } else {
            // Parsed, taken apart and decoded on the loader's thread while we fetch on.
            loader.send_body(page.body, &records_at).await?;
        }
        let more = match &plan.pagination {
            Pagination::None => false,
            Pagination::Relay { variable, .. } => match next_cursor {
                None => false,
                Some(cursor) => {
                    if !cursors.insert(cursor.to_string()) {
                        return Err(DriverError::Remote {
                            message: format!(
                                "relay pagination: page {pages} returned the cursor {cursor} again; the server does not advance (check that the query passes ${variable} to the paginated field)"
                            ),
                        });
                    }
                    variables.insert(variable.clone(), cursor);
                    true
                }
            },
            Pagination::Offset { page_size, .. } => {
                offset += count;
                count >= u64::from(*page_size)
            }
        };
        if !more {
            return Ok(());
        }
        if plan.max_pages > 0 && pages >= plan.max_pages {
            tracing::warn!(
                step_id = ctx.step_id(),
                pages,
                "stopped after max_pages although the API has more pages"
            );
            ctx.event(
                "extraction.max_pages_reached",
                object([("pages", pages.into())]),
            );
            return Ok(());
        }
    }
}

/// Reads the relay page info: `Some(cursor)` when there is a next page.
fn relay_next(
    found: Option<&Value>,
    page_info: &JsonPath,
    cursor_field: &str,
    has_next_field: &str,
    page: u64,
) -> Result<Option<Value>> {
    let Some(Value::Object(info)) = found else {
        return Err(DriverError::Data {
            message: format!(
                "relay pagination: page {page} has no page-info object at {page_info}; set pagination_path to where the query selects pageInfo (e.g. data.users.pageInfo)"
            ),
        });
    };
    let has_next = match info.get(has_next_field) {
        Some(Value::Bool(b)) => *b,
        other => {
            return Err(DriverError::Data {
                message: format!(
                    "relay pagination: {page_info}.{has_next_field} on page {page} is {}, not a boolean (select it in the query or set pagination_has_next_field)",
                    other.map_or_else(|| "missing".to_owned(), Value::to_string)
                ),
            });
        }
    };
    if !has_next {
        return Ok(None);
    }
    match info.get(cursor_field) {
        Some(cursor @ (Value::String(_) | Value::Number(_))) => Ok(Some(cursor.clone())),
        other => Err(DriverError::Data {
            message: format!(
                "relay pagination: page {page} says there is a next page but {page_info}.{cursor_field} is {} (select it in the query or set pagination_cursor_field)",
                other.map_or_else(|| "missing".to_owned(), Value::to_string)
            ),
        }),
    }
}

/// A successful GraphQL response.
struct Page {
    body: bytes::Bytes,
    /// The value at the page-info path, when asked for and present.
    page_info: Option<Value>,
}

/// Sends one GraphQL request. A response that is not 2xx, not a JSON object, or that has a
/// non-empty `errors` list is an error; otherwise only `errors` and the page info are read
/// here (without parsing the records).
async fn graphql_page(
    client: &HttpClient,
    endpoint: &str,
    body: &Value,
    page_info: Option<&JsonPath>,
) -> Result<Page> {
    let request = client
        .request(Method::POST, endpoint)
        .body(body.to_string());
    let response = client.execute(request).await?;
    if !response.is_success() {
        let error = status_error(&response);
        let messages = response.json().ok().as_ref().and_then(graphql_errors);
        return Err(match messages {
            Some(messages) => with_message(
                error.class(),
                format!("{}: HTTP {}: {messages}", response.target, response.status),
            ),
            None => error,
        });
    }
    let errors_at = JsonPath::parse("errors", "errors")?;
    let mut paths = vec![&errors_at];
    paths.extend(page_info);
    let picked = match pick(&response.body, &paths) {
        Ok(Some(picked)) => picked,
        Ok(None) => return Err(not_graphql(&response)),
        // Not JSON: the response's own error says so, quoting the body.
        Err(_) => {
            return Err(response
                .json()
                .err()
                .unwrap_or_else(|| not_graphql(&response)));
        }
    };
    let mut picked = picked.into_iter();
    if let Some(errors) = picked.next().flatten()
        && let Some(messages) = error_messages(&errors)
    {
        return Err(DriverError::Remote {
            message: format!("{}: {messages}", response.target),
        });
    }
    Ok(Page {
        page_info: picked.next().flatten(),
        body: response.body,
    })
}

fn not_graphql(response: &HttpResponse) -> DriverError {
    DriverError::Remote {
        message: format!(
            "{}: the response is not a GraphQL result object: {}",
            response.target,
            response.body_excerpt()
        ),
    }
}

/// `GraphQL error: <message> (at a.b)` for the first errors of a non-empty `errors` list.
fn graphql_errors(body: &Value) -> Option<String> {
    error_messages(body.get("errors")?)
}

/// See [`graphql_errors`]; `errors` is the list itself.
fn error_messages(errors: &Value) -> Option<String> {
    let errors = errors.as_array()?;
    if errors.is_empty() {
        return None;
    }
    const SHOWN: usize = 3;
    let mut parts: Vec<String> = errors
        .iter()
        .take(SHOWN)
        .map(|e| {
            let message = e
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| e.to_string(), str::to_owned);
            let path = e.get("path").and_then(Value::as_array).map(|p| {
                p.iter()
                    .map(|s| s.as_str().map_or_else(|| s.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(".")
            });
            match path {
                Some(path) if !path.is_empty() => format!("{message} (at {path})"),
                _ => message,
            }
        })
        .collect();
    if errors.len() > SHOWN {
        parts.push(format!("and {} more", errors.len() - SHOWN));
    }
    let noun = if errors.len() == 1 { "error" } else { "errors" };
    Some(format!("GraphQL {noun}: {}", parts.join("; ")))
}

fn with_message(class: ErrorClass, message: String) -> DriverError {
    match class {
        ErrorClass::Auth => DriverError::Auth { message },
        ErrorClass::Timeout => DriverError::Timeout { message },
        ErrorClass::Connection => DriverError::Connection { message },
        _ => DriverError::Remote { message },
    }
}

fn pagination_name(p: &Pagination) -> &'static str {
    match p {
        Pagination::None => "none",
        Pagination::Relay { .. } => "relay",
        Pagination::Offset { .. } => "offset",
    }
}

/// The endpoint without its query string (it may carry keys).
fn endpoint_for_log(endpoint: &str) -> String {
    endpoint
        .split(['?', '#'])
        .next()
        .unwrap_or(endpoint)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphql_error_messages_are_summarised() {
        let body = json!({"errors": [
            {"message": "a", "path": ["users", 0, "name"]},
            {"message": "b"}, {"message": "c"}, {"message": "d"}
        ]});
        assert_eq!(
            graphql_errors(&body).unwrap(),
            "GraphQL errors: a (at users.0.name); b; c; and 1 more"
        );
        assert_eq!(graphql_errors(&json!({"errors": [], "data": {}})), None);
        assert_eq!(graphql_errors(&json!({"data": {}})), None);
    }
}
