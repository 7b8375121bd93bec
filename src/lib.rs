//! Send mail through Microsoft 365 (Exchange Online) with OAuth2 app-only credentials.
//!
//! # Layout
//! - `cli`: argument parsing and the subcommands; maps outcomes to exit codes.
//!
//! The offline emulator of Entra ID and Exchange Online that every test runs against lives in
//! its own crate, `m365-emulator`, which never depends on this one.

#![forbid(unsafe_code)]

pub mod cli;
