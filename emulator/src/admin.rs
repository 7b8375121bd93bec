//! The emulator's own HTTP API under `/_emulator/`, for scripts and benchmarks that drive the
//! standalone program: counters, delivered messages, faults, the clock.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::Shared;
use crate::faults::Fault;

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_emulator/stats", get(stats).delete(reset_stats))
        .route("/_emulator/messages", get(messages))
        .route("/_emulator/messages/{id}", get(message))
        .route("/_emulator/faults", get(faults).post(add_fault).delete(clear_faults))
        .route("/_emulator/clock", post(advance_clock))
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.stats.snapshot()).into_response()
}

async fn reset_stats(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.stats.reset();
    StatusCode::NO_CONTENT
}

async fn messages(State(shared): State<Arc<Shared>>) -> Response {
    let list: Vec<_> = shared
        .store
        .messages()
        .iter()
        .map(|m| serde_json::to_value(&**m).unwrap_or_default())
        .collect();
    axum::Json(list).into_response()
}

/// The raw message, byte for byte.
async fn message(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match shared.store.get(&id) {
        Some(m) => ([(header::CONTENT_TYPE, "message/rfc822")], m.data.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn faults(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.faults.list()).into_response()
}

async fn add_fault(State(shared): State<Arc<Shared>>, axum::Json(fault): axum::Json<Fault>) -> Response {
    match shared.faults.add(fault) {
        Ok(()) => StatusCode::CREATED.into_response(),
        Err(message) => (StatusCode::BAD_REQUEST, message).into_response(),
    }
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.faults.clear();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Advance {
    seconds: i64,
}

/// Moves the emulator's clock, e.g. to let tokens or secrets expire.
async fn advance_clock(State(shared): State<Arc<Shared>>, axum::Json(advance): axum::Json<Advance>) -> StatusCode {
    shared.clock.advance(time::Duration::seconds(advance.seconds));
    StatusCode::NO_CONTENT
}
