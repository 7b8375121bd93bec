//! Exchange Online's SMTP client-submission endpoint (`smtp.office365.com:587`): greeting and
//! EHLO lists as observed, STARTTLS, `AUTH XOAUTH2` and `AUTH LOGIN`, pipelining, CHUNKING,
//! Send-As checks, and the per-mailbox limits. The same session serves Exchange Online High
//! Volume Email (`hve`) and Azure Communication Services Email (`acs`) with their own rules.

mod acs;
mod auth;
mod command;
mod endpoint;
mod hve;
mod limits;
pub(crate) mod powershell;
mod reply;
mod server;
mod session;

pub use endpoint::Endpoint;
pub(crate) use limits::Limits;
pub(crate) use server::serve;
