//! The query API and metrics: HTTP on loopback (axum), read-only, over the
//! sled index and the agent's status. JSON everywhere but `/metrics`
//! (Prometheus text). The OpenAPI document at `/openapi.json` lists every
//! route; a test keeps the two the same.

use std::{
    net::SocketAddr,
    sync::{Arc, RwLock},
};

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use ballast_audit::{Index, Kind, Record, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::book::Book;

/// Most records one answer holds.
pub const MAX_RECORDS: usize = 1_000;

/// Counters and gauges the agent updates; `/metrics` and `/health` read them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Metrics {
    pub cycles_total: u64,
    pub cycle_failures_total: u64,
    pub last_cycle_seconds: f64,
    pub accounts_decided_total: u64,
    pub trades_total: u64,
    pub batches_settled_total: u64,
    pub batches_failed_total: u64,
    /// Accounts whose legs the ledger refused, left out of settlement.
    pub settlements_refused_total: u64,
    pub gas_used_total: u64,
    /// Decisions paused by a market circuit breaker, and cycles skipped by the guardian's pause.
    pub halts_total: u64,
    pub approvals_waiting: u64,
    /// Accounts the last cycle left out: their lots and the ledger disagree.
    pub accounts_unreconciled: u64,
    /// Accounts the last cycle left out: frozen by the ledger's guardian.
    pub accounts_frozen: u64,
    pub open_submissions: u64,
    pub records: u64,
    pub anchored_size: u64,
    /// Unix seconds of the last anchor (0: none yet this run).
    pub last_anchor_unix: u64,
    pub last_error: Option<String>,
}

/// What the API serves besides the index: the agent's status and a
/// snapshot of its book, replaced after every cycle.
#[derive(Debug)]
pub struct Status {
    pub metrics: Metrics,
    pub book: Arc<Book>,
}

/// Shared between the agent (writer) and the API (reader).
pub type Shared = Arc<RwLock<Status>>;

#[derive(Clone)]
struct Api {
    shared: Shared,
    index: Index,
}

/// Every route, with its one-line description (also the OpenAPI summaries).
pub const ROUTES: &[(&str, &str)] = &[
    ("/health", "Liveness and the agent's state: records, anchored size, last cycle, last error."),
    ("/metrics", "Prometheus metrics."),
    ("/openapi.json", "This API's OpenAPI 3.1 document."),
    ("/accounts", "Every account of the book: household, kind, IPS, last rebalance, waiting approval."),
    ("/accounts/{id}", "One account with its tax lots."),
    ("/accounts/{id}/records", "An account's audit records, oldest first; `from` and `until` (RFC 3339) bound them."),
    ("/records", "Audit records by one of `kind`, `ips` (with `version`), `batch`, `tx`, or `from` and `until`."),
    ("/records/{seq}", "One audit record."),
    ("/approvals", "Decisions whose queued trades wait for an advisor."),
    ("/verification", "What was verified: the log at start, the anchored checkpoints, the index."),
];

/// The router over `shared` and `index`.
pub fn router(shared: Shared, index: Index) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/accounts", get(accounts))
        .route("/accounts/{id}", get(account))
        .route("/accounts/{id}/records", get(account_records))
        .route("/records", get(records))
        .route("/records/{seq}", get(record))
        .route("/approvals", get(approvals))
        .route("/verification", get(verification))
        .with_state(Api { shared, index })
}

/// Binds `addr` (loopback is the default; the OS picks a port for `:0`)
/// and serves until the task is dropped. Returns the bound address.
pub async fn serve(addr: SocketAddr, shared: Shared, index: Index) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = router(shared, index);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(target: "ballast::api", error = %e, "the API stopped");
        }
    });
    Ok((bound, task))
}

struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<ballast_audit::Error> for ApiError {
    fn from(e: ballast_audit::Error) -> Self {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

fn not_found(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, message.into())
}

fn time(param: &Option<String>, name: &str) -> ApiResult<Option<Timestamp>> {
    param
        .as_deref()
        .map(|s| Timestamp::parse(s).map_err(|e| bad(format!("`{name}`: {s:?} is not an RFC 3339 time: {e}"))))
        .transpose()
}

fn page(index: &Index, mut seqs: Vec<u64>, limit: Option<usize>) -> ApiResult<Json<Value>> {
    let limit = limit.unwrap_or(100).min(MAX_RECORDS);
    let total = seqs.len();
    seqs.truncate(limit);
    let records: Vec<Record> = index.records(&seqs)?;
    Ok(Json(json!({ "total": total, "returned": records.len(), "records": records })))
}

async fn health(State(api): State<Api>) -> Json<Value> {
    let status = api.shared.read().expect("status lock");
    let m = &status.metrics;
    Json(json!({
        "status": if m.last_error.is_some() { "degraded" } else { "ok" },
        "records": m.records,
        "anchored_size": m.anchored_size,
        "unanchored": m.records.saturating_sub(m.anchored_size),
        "cycles": m.cycles_total,
        "last_cycle_seconds": m.last_cycle_seconds,
        "open_submissions": m.open_submissions,
        "last_error": m.last_error,
    }))
}

/// The metrics in Prometheus' text format.
pub fn prometheus(m: &Metrics, now_unix: u64) -> String {
    let mut out = String::new();
    let mut put = |name: &str, kind: &str, help: &str, value: String| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"));
    };
    put("ballast_cycles_total", "counter", "Cycles run.", m.cycles_total.to_string());
    put("ballast_cycle_failures_total", "counter", "Cycles that failed and were retried.", m.cycle_failures_total.to_string());
    put("ballast_cycle_seconds", "gauge", "Duration of the last cycle.", format!("{:.3}", m.last_cycle_seconds));
    put("ballast_accounts_decided_total", "counter", "Account decisions recorded.", m.accounts_decided_total.to_string());
    put("ballast_trades_total", "counter", "Trades sent to settlement.", m.trades_total.to_string());
    put("ballast_batches_settled_total", "counter", "Settlement batches confirmed.", m.batches_settled_total.to_string());
    put("ballast_batches_failed_total", "counter", "Settlement batches that failed.", m.batches_failed_total.to_string());
    put("ballast_settlements_refused_total", "counter", "Accounts whose legs the ledger refused, left out of their batch.", m.settlements_refused_total.to_string());
    put("ballast_gas_used_total", "counter", "Gas used by settlements.", m.gas_used_total.to_string());
    put("ballast_halts_total", "counter", "Decisions paused by a circuit breaker and cycles skipped by a pause.", m.halts_total.to_string());
    put("ballast_approvals_waiting", "gauge", "Decisions waiting for an advisor.", m.approvals_waiting.to_string());
    put("ballast_accounts_unreconciled", "gauge", "Accounts the last cycle left out: their lots and the ledger disagree.", m.accounts_unreconciled.to_string());
    put("ballast_accounts_frozen", "gauge", "Accounts the last cycle left out: frozen by the ledger's guardian.", m.accounts_frozen.to_string());
    put("ballast_open_submissions", "gauge", "Settlements sent and not yet resolved.", m.open_submissions.to_string());
    put("ballast_records", "gauge", "Records in the audit log.", m.records.to_string());
    put("ballast_unanchored_records", "gauge", "Records not yet under an anchored checkpoint.", m.records.saturating_sub(m.anchored_size).to_string());
    let delay = if m.last_anchor_unix == 0 { 0 } else { now_unix.saturating_sub(m.last_anchor_unix) };
    put("ballast_anchor_delay_seconds", "gauge", "Seconds since the last anchor.", delay.to_string());
    out
}

async fn metrics(State(api): State<Api>) -> impl IntoResponse {
    let m = api.shared.read().expect("status lock").metrics.clone();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], prometheus(&m, now))
}

async fn openapi() -> Json<Value> {
    Json(openapi_document())
}

/// The OpenAPI 3.1 document of [`ROUTES`].
pub fn openapi_document() -> Value {
    let mut paths = serde_json::Map::new();
    for (path, summary) in ROUTES {
        let mut parameters = Vec::new();
        if path.contains("{id}") {
            parameters.push(json!({"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}, "description": "Ledger account id."}));
        }
        if path.contains("{seq}") {
            parameters.push(json!({"name": "seq", "in": "path", "required": true, "schema": {"type": "integer"}, "description": "Record sequence number."}));
        }
        if path.ends_with("records") {
            for (name, description) in [
                ("from", "Earliest record time, RFC 3339 (inclusive)."),
                ("until", "Latest record time, RFC 3339 (exclusive)."),
                ("limit", "Most records returned (default 100, at most 1000)."),
            ] {
                parameters.push(json!({"name": name, "in": "query", "required": false, "schema": {"type": "string"}, "description": description}));
            }
        }
        if *path == "/records" {
            for (name, description) in [
                ("kind", "Record kind, e.g. decision, settlement_confirmed."),
                ("ips", "IPS id."),
                ("version", "IPS version (with ips)."),
                ("batch", "Settlement batch id (hex)."),
                ("tx", "Transaction hash (hex)."),
            ] {
                parameters.push(json!({"name": name, "in": "query", "required": false, "schema": {"type": "string"}, "description": description}));
            }
        }
        let content = if *path == "/metrics" { "text/plain" } else { "application/json" };
        paths.insert(
            (*path).to_string(),
            json!({"get": {
                "summary": summary,
                "parameters": parameters,
                "responses": {
                    "200": {"description": "OK", "content": {content: {}}},
                    "400": {"description": "A bad parameter, named in `error`."},
                    "404": {"description": "No such account or record."}
                }
            }}),
        );
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Ballast agent API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Read-only queries over the agent's audit index and status. Served on loopback."},
        "paths": paths,
    })
}

fn account_json(book: &Book, id: u64, with_lots: bool) -> Option<Value> {
    let a = book.account(id)?;
    let mut v = json!({
        "id": a.setup.id,
        "household": a.setup.household,
        "kind": a.setup.kind,
        "ips": a.setup.ips,
        "ips_version_applied": a.ips_version_applied,
        "last_rebalanced": a.setup.last_rebalanced,
        "awaiting_approval": book.awaiting().get(&id).map(|w| w.seq),
    });
    if with_lots {
        v["lots"] = json!(a.setup.lots);
    }
    Some(v)
}

async fn accounts(State(api): State<Api>) -> Json<Value> {
    let book = api.shared.read().expect("status lock").book.clone();
    let list: Vec<Value> = book.accounts().filter_map(|a| account_json(&book, a.setup.id, false)).collect();
    Json(json!({ "accounts": list }))
}

async fn account(State(api): State<Api>, Path(id): Path<u64>) -> ApiResult<Json<Value>> {
    let book = api.shared.read().expect("status lock").book.clone();
    account_json(&book, id, true).map(Json).ok_or_else(|| not_found(format!("no account {id}")))
}

#[derive(Debug, Deserialize)]
struct Range {
    from: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
}

async fn account_records(State(api): State<Api>, Path(id): Path<u64>, Query(q): Query<Range>) -> ApiResult<Json<Value>> {
    let seqs = api.index.by_account(id, time(&q.from, "from")?, time(&q.until, "until")?)?;
    page(&api.index, seqs, q.limit)
}

#[derive(Debug, Deserialize)]
struct RecordQuery {
    kind: Option<String>,
    ips: Option<String>,
    version: Option<u32>,
    batch: Option<String>,
    tx: Option<String>,
    from: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
}

async fn records(State(api): State<Api>, Query(q): Query<RecordQuery>) -> ApiResult<Json<Value>> {
    let i = &api.index;
    let seqs = if let Some(kind) = &q.kind {
        let kind = Kind::ALL
            .iter()
            .find(|k| k.as_str() == kind)
            .ok_or_else(|| bad(format!("`kind`: {kind:?} is not one of {}", Kind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", "))))?;
        i.by_kind(*kind)?
    } else if let Some(ips) = &q.ips {
        i.by_ips(ips, q.version)?
    } else if let Some(batch) = &q.batch {
        i.by_batch(batch)?
    } else if let Some(tx) = &q.tx {
        i.by_tx(tx)?
    } else {
        match (time(&q.from, "from")?, time(&q.until, "until")?) {
            (Some(from), Some(until)) => i.by_time(from, until)?,
            _ => return Err(bad("give one of `kind`, `ips`, `batch`, `tx`, or both `from` and `until`")),
        }
    };
    page(i, seqs, q.limit)
}

async fn record(State(api): State<Api>, Path(seq): Path<u64>) -> ApiResult<Json<Record>> {
    api.index.get(seq)?.map(Json).ok_or_else(|| not_found(format!("no record {seq}")))
}

async fn approvals(State(api): State<Api>) -> Json<Value> {
    let book = api.shared.read().expect("status lock").book.clone();
    let list: Vec<Value> = book
        .awaiting()
        .values()
        .map(|w| json!({"id": w.seq, "hash": hex::encode(w.hash), "account": w.decision.account, "queued": w.decision.queued}))
        .collect();
    Json(json!({ "approvals": list }))
}

async fn verification(State(api): State<Api>) -> ApiResult<Json<Value>> {
    let m = api.shared.read().expect("status lock").metrics.clone();
    let indexed = api.index.indexed()?;
    Ok(Json(json!({
        "log": {"records": m.records, "verified_at_start": true,
                "detail": "hash chain, signatures and key windows (keys from the AuditRegistry) verified when the agent started; every append is signed and chained by it"},
        "anchors": {"anchored_size": m.anchored_size, "unanchored": m.records.saturating_sub(m.anchored_size),
                    "detail": "every checkpoint is computed from the log and anchored on-chain; `ballast audit verify --manifest` re-checks them independently"},
        "index": {"indexed": indexed, "behind": m.records.saturating_sub(indexed)},
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_lists_every_route() {
        let doc = openapi_document();
        let paths = doc["paths"].as_object().unwrap();
        assert_eq!(paths.len(), ROUTES.len());
        // The router's source names exactly the routes of ROUTES.
        let source = include_str!("api.rs");
        let routed: Vec<&str> = source.match_indices(".route(\"").map(|(i, _)| &source[i + 8..]).map(|s| &s[..s.find('"').unwrap()]).collect();
        let listed: Vec<&str> = ROUTES.iter().map(|(p, _)| *p).collect();
        assert_eq!(routed, listed);
    }

    #[test]
    fn metrics_are_prometheus_text() {
        let m = Metrics { cycles_total: 3, records: 10, anchored_size: 7, last_anchor_unix: 100, ..Metrics::default() };
        let text = prometheus(&m, 130);
        assert!(text.contains("# TYPE ballast_cycles_total counter\nballast_cycles_total 3\n"), "{text}");
        assert!(text.contains("ballast_unanchored_records 3\n"));
        assert!(text.contains("ballast_anchor_delay_seconds 30\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.split_once(' ').unwrap();
            assert!(name.starts_with("ballast_") && value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
