//! Send mail through Microsoft 365 (Exchange Online) with OAuth2 app-only credentials.
//!
//! # Layout
//! - `cli`: argument parsing and the subcommands; maps outcomes to exit codes.
//! - `smtp`: the SMTP client (replies, commands, SASL, dot-stuffing, transcript, connection).
//! - `tls`: trust anchors and the TLS client configuration.
//! - `config`: flags > environment > config file > defaults, resolved once into an `Account`.
//! - `oauth`: clouds, credentials (secret, PKCS#12, PEM), client assertions, token responses,
//!   the caching token provider.
//! - `message`: the message and envelope (sendmail `-t`, Bcc removal, composing from flags).
//! - `submit`: account + message → token → SMTP → Exchange's answer. `sysexits`: exit codes.
//!   `system`: the host name.
//! - `diagnose`: the catalog of failures, `doctor`'s checks, and their report.
//! - `setup`: the Entra ID and Exchange Online steps as a script, values quoted.
//! - `relay`: the local SMTP relay (inbound sessions, policy, limits, delivery workers);
//!   `queue`: its durable SQLite queue. `stream`: a TCP stream before or after TLS.
//! - `properties`: what the parsers of hostile input must keep, shared by the fuzz targets and
//!   the proptest mirrors (tests and the `properties` feature only).
//! - `secret`: the redacting type for secrets. `private`: files only this user may read (the
//!   token cache, the queue). `clock`: the one clock.
//!
//! The offline emulator of Entra ID and Exchange Online that every test runs against lives in
//! its own crate, `m365-emulator`, which never depends on this one.

#![forbid(unsafe_code)]

pub mod account;
pub mod backoff;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod config;
pub mod doctor;
pub mod graph;
pub mod mailer;
pub mod message;
pub mod oauth;
pub mod powershell;
pub mod private;
#[cfg(any(test, feature = "properties"))]
pub mod properties;
pub mod queue;
pub mod relay;
pub mod secret;
pub mod setting;
pub mod setup;
pub mod smtp;
pub mod stream;
pub mod submit;
pub mod sysexits;
pub mod system;
pub mod tls;
pub mod verdict;
