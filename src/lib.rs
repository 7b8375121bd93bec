//! Send mail through Microsoft 365 (Exchange Online) with OAuth2 app-only credentials: SMTP
//! `AUTH XOAUTH2` or Microsoft Graph `sendMail`, with a client secret, a certificate or a
//! federated identity.
//!
//! A Rust program builds a [`Mailer`] from the environment or a config file, composes a
//! [`Message`] (or passes raw MIME), sends it, and on failure reads the [`Verdict`]: whether to
//! retry, whom the failure blames, the exit code and the fix. See [`mailer`] for an example and
//! `examples/` for a secret-based and a certificate-based sender.
//!
//! [`run`] is the `m365-mailer` program itself (sendmail drop-in, relay, doctor, setup).
//! Everything else is private to the crate; `docs/architecture.md` maps it.

#![forbid(unsafe_code)]

mod account;
mod backoff;
mod catalog;
mod cli;
mod clock;
mod config;
mod directory;
mod doctor;
mod graph;
pub mod mailer;
mod message;
mod oauth;
mod powershell;
mod private;
/// What the parsers of hostile input must keep, for the fuzz targets (`fuzz/`) and the proptest
/// mirrors; not part of the API.
#[cfg(any(test, feature = "properties"))]
#[doc(hidden)]
pub mod properties;
mod queue;
mod relay;
mod secret;
mod service;
mod setting;
mod setup;
mod smtp;
mod stream;
mod submit;
mod sysexits;
mod system;
#[cfg(test)]
mod testing;
mod tls;
mod verdict;

pub use catalog::{Blame, Retry};
pub use cli::run;
pub use mailer::{Accepted, Connection, Error, ErrorKind, Mailer, Message};
pub use sysexits::Code;
pub use verdict::Verdict;
