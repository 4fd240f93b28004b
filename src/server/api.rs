//! The HTTP API of `vigil serve` (JSON), `/metrics`, `/healthz` and the
//! dashboard. Every `/api` call needs the bearer token when the server has
//! one; `/metrics`, `/healthz`, `/api/openapi.json` (the API's description,
//! generated from these handlers, see [`super::openapi`]) and the dashboard
//! page never do (the page asks for the token and sends it with its API calls).

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::jobs::{JobError, JobInfo, Jobs};
use super::results::Results;

/// A job submission.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Submit {
    /// The job's name.
    pub name: String,
    /// The SQL script.
    pub sql: String,
    /// The script's file name, for error messages.
    #[serde(default)]
    pub file: Option<String>,
}

/// An error answer.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiError {
    /// What is wrong, rendered for a terminal.
    pub error: String,
    /// For a script that does not plan: where (1-based).
    #[serde(default)]
    pub line: Option<usize>,
    /// The column.
    #[serde(default)]
    pub column: Option<usize>,
}

fn fail(status: StatusCode, error: String) -> Response {
    (
        status,
        Json(ApiError {
            error,
            line: None,
            column: None,
        }),
    )
        .into_response()
}

impl IntoResponse for JobError {
    fn into_response(self) -> Response {
        match self {
            JobError::NotFound(m) => fail(StatusCode::NOT_FOUND, m),
            JobError::Conflict(m) => fail(StatusCode::CONFLICT, m),
            JobError::Io(m) => fail(StatusCode::INTERNAL_SERVER_ERROR, m),
            JobError::Script { rendered, pos, .. } => (
                StatusCode::BAD_REQUEST,
                Json(ApiError {
                    error: rendered,
                    line: pos.map(|p| p.0),
                    column: pos.map(|p| p.1),
                }),
            )
                .into_response(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct AppState {
    jobs: Arc<Jobs>,
    token: Option<Arc<str>>,
}

/// The server's routes over `jobs`; with `token`, API calls must carry
/// `Authorization: Bearer <token>`.
pub fn router(jobs: Arc<Jobs>, token: Option<String>) -> Router {
    let state = AppState {
        jobs,
        token: token.map(Arc::from),
    };
    let api = Router::new()
        .route("/api/jobs", get(list).post(submit))
        .route("/api/jobs/{name}", get(status).delete(stop))
        .route("/api/jobs/{name}/stop", post(stop))
        .route("/api/jobs/{name}/results", get(results))
        .route("/api/jobs/{name}/logs", get(logs))
        .route("/api/series", get(series))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .route("/", get(dashboard))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi))
        .merge(api)
        .with_state(state)
}

async fn auth(State(s): State<AppState>, headers: HeaderMap, req: Request, next: Next) -> Response {
    if let Some(token) = &s.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        // Compared in constant time: the token is a password.
        let ok = given.is_some_and(|g| {
            g.len() == token.len()
                && g.bytes()
                    .zip(token.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        });
        if !ok {
            return fail(
                StatusCode::UNAUTHORIZED,
                "this server needs its token: --token or VIGIL_TOKEN".into(),
            );
        }
    }
    next.run(req).await
}

/// The jobs.
#[utoipa::path(get, path = "/api/jobs", tag = "jobs",
    responses((status = 200, description = "Every job", body = [JobInfo]),
        (status = 401, description = "No or a wrong token", body = ApiError)))]
pub(crate) async fn list(State(s): State<AppState>) -> Response {
    Json(s.jobs.list()).into_response()
}

/// Submits a script as a job; a script that does not plan is refused with its line and column.
#[utoipa::path(post, path = "/api/jobs", tag = "jobs", request_body = Submit,
    responses((status = 201, description = "The job, running", body = JobInfo),
        (status = 400, description = "The script does not plan", body = ApiError),
        (status = 409, description = "A name in use or not a job name", body = ApiError),
        (status = 401, description = "No or a wrong token", body = ApiError)))]
pub(crate) async fn submit(State(s): State<AppState>, Json(req): Json<Submit>) -> Response {
    let file = req
        .file
        .clone()
        .unwrap_or_else(|| format!("{}.sql", req.name));
    match s.jobs.submit(&req.name, &req.sql, &file).await {
        Ok(info) => (StatusCode::CREATED, Json(info)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// One job.
#[utoipa::path(get, path = "/api/jobs/{name}", tag = "jobs", params(("name" = String, Path, description = "The job's name")),
    responses((status = 200, description = "The job", body = JobInfo),
        (status = 404, description = "No such job", body = ApiError),
        (status = 401, description = "No or a wrong token", body = ApiError)))]
pub(crate) async fn status(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    match s.jobs.info(&name) {
        Ok(i) => Json(i).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Stops a job (`DELETE /api/jobs/{name}` does the same).
#[utoipa::path(post, path = "/api/jobs/{name}/stop", tag = "jobs", params(("name" = String, Path, description = "The job's name")),
    responses((status = 200, description = "The job, stopping", body = JobInfo),
        (status = 404, description = "No such job", body = ApiError),
        (status = 401, description = "No or a wrong token", body = ApiError)))]
pub(crate) async fn stop(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    match s.jobs.stop(&name) {
        Ok(i) => Json(i).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The latest result rows of a job's bare SELECTs.
#[utoipa::path(get, path = "/api/jobs/{name}/results", tag = "jobs", params(("name" = String, Path, description = "The job's name")),
    responses((status = 200, description = "The latest rows", body = Results),
        (status = 404, description = "No such job", body = ApiError),
        (status = 401, description = "No or a wrong token", body = ApiError)))]
pub(crate) async fn results(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    match s.jobs.results(&name) {
        Ok(r) => Json(r).into_response(),
        Err(e) => e.into_response(),
    }
}

/// A job's latest log lines.
#[utoipa::path(get, path = "/api/jobs/{name}/logs", tag = "jobs", params(("name" = String, Path, description = "The job's name")),
    responses((status = 200, description = "Log lines, oldest first", body = [String]),
        (status = 404, description = "No such job", body = ApiError),
        (status = 401, description = "No or a wrong token", body = ApiError)))]
pub(crate) async fn logs(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    match s.jobs.logs(&name) {
        Ok(l) => Json(l).into_response(),
        Err(e) => e.into_response(),
    }
}

/// A `metrics` sink's series, for the dashboard's charts.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SeriesOut {
    /// The metric's name.
    metric: String,
    /// Its labels, as `[name, value]` pairs.
    #[schema(value_type = Vec<Vec<String>>)]
    labels: Vec<(String, String)>,
    /// The latest value.
    value: f64,
    /// Recent points, as `[ms since 1970, value]`.
    #[schema(value_type = Vec<Vec<f64>>)]
    points: Vec<(i64, f64)>,
}

/// The `metrics` sinks' recent points.
#[utoipa::path(get, path = "/api/series", tag = "metrics",
    responses((status = 200, description = "Every series", body = [SeriesOut]),
        (status = 401, description = "No or a wrong token", body = ApiError)))]
pub(crate) async fn series() -> Response {
    let out: Vec<SeriesOut> = vigil_connectors::metrics::series_store()
        .snapshot()
        .into_iter()
        .map(|s| SeriesOut {
            metric: s.key.metric,
            labels: s.key.labels,
            value: s.latest.value,
            points: s.history.iter().map(|p| (p.at_ms, p.value)).collect(),
        })
        .collect();
    Json(out).into_response()
}

async fn metrics(State(s): State<AppState>) -> Response {
    let text = super::prometheus::render(&s.jobs.metrics());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::openapi::document(),
    )
        .into_response()
}

async fn dashboard() -> Html<&'static str> {
    Html(include_str!("dashboard.html"))
}
