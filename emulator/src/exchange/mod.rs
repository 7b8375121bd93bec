//! Exchange Online's SMTP client-submission endpoint (`smtp.office365.com:587`): greeting and
//! EHLO lists as observed, STARTTLS, `AUTH XOAUTH2` and `AUTH LOGIN`, pipelining, CHUNKING,
//! Send-As checks, and the per-mailbox limits.

mod auth;
mod command;
mod limits;
mod reply;
mod server;
mod session;

pub(crate) use limits::Limits;
pub(crate) use server::serve;
