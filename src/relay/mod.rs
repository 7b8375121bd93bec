//! The relay: a local SMTP server for devices and applications that cannot do OAuth. It accepts
//! their mail, stores it durably, and delivers it to Exchange Online with the account's token.
//!
//! - `session`: the inbound SMTP state machine (sans-IO).
//! - `policy`: who may relay (users, networks) and as whom.
//! - `limits`: Exchange's per-mailbox limits enforced locally (pure).

pub mod limits;
pub mod policy;
pub mod session;
