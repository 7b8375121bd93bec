//! The emulator's own HTTP API under `/_emulator/`, for scripts and benchmarks that drive the
//! standalone program: counters, delivered messages, faults, the clock, device sign-ins and the
//! Exchange Online PowerShell steps of a setup.

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
        .route("/_emulator/federated-token", post(federated_token))
        .route("/_emulator/device-sign-in", post(device_sign_in))
        .route("/_emulator/exchange-powershell", post(exchange_powershell))
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

#[derive(Deserialize)]
struct FederatedTokenRequest {
    issuer: String,
    subject: String,
    #[serde(default = "default_audience")]
    audience: String,
    #[serde(default = "default_lifetime")]
    lifetime_secs: i64,
}

fn default_audience() -> String {
    "api://AzureADTokenExchange".to_owned()
}

fn default_lifetime() -> i64 {
    3600
}

/// Mints a federated token of one of the scenario's issuers, as a cluster would project it:
/// the answer is the bare JWT, ready for a token file.
async fn federated_token(
    State(shared): State<Arc<Shared>>,
    axum::Json(request): axum::Json<FederatedTokenRequest>,
) -> Response {
    if !shared.scenario().issuers.contains(&request.issuer) {
        let message = format!("`{}` is not one of the scenario's issuers", request.issuer);
        return (StatusCode::BAD_REQUEST, message).into_response();
    }
    let now = shared.clock.now().unix_timestamp();
    crate::entra::federation::mint(
        shared.issuer_key(),
        &request.issuer,
        &request.subject,
        &request.audience,
        now,
        request.lifetime_secs,
    )
    .into_response()
}

/// Moves the emulator's clock, e.g. to let tokens or secrets expire.
async fn advance_clock(State(shared): State<Arc<Shared>>, axum::Json(advance): axum::Json<Advance>) -> StatusCode {
    shared.clock.advance(time::Duration::seconds(advance.seconds));
    StatusCode::NO_CONTENT
}

/// A device sign-in: the user code typed in the browser, by whom, approved or declined.
#[derive(Deserialize)]
struct DeviceSignIn {
    user_code: String,
    user: String,
    #[serde(default)]
    decline: bool,
}

async fn device_sign_in(State(shared): State<Arc<Shared>>, axum::Json(form): axum::Json<DeviceSignIn>) -> Response {
    let now = shared.clock.now();
    let now_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    match shared
        .device
        .sign_in(&shared.scenario(), &form.user_code, &form.user, !form.decline, now_ms)
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(message) => (StatusCode::BAD_REQUEST, message).into_response(),
    }
}

/// Applies a setup script's Exchange Online PowerShell steps (`exchange::powershell`): `200` with
/// what the read-only commands print, or `400` naming the line that stopped it.
async fn exchange_powershell(State(shared): State<Arc<Shared>>, script: String) -> Response {
    match shared.exchange_powershell(&script) {
        Ok(output) => output.into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}
