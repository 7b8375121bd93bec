//! The SMTP client side: replies, commands, capabilities, SASL, content transparency, the
//! masked transcript, and the connection that ties them together.

pub(crate) mod client;
pub(crate) mod command;
pub(crate) mod ehlo;
pub(crate) mod error;
pub(crate) mod reply;
pub(crate) mod sasl;
pub(crate) mod settings;
pub(crate) mod transcript;
pub(crate) mod transparency;

pub(crate) use client::Connection;
pub(crate) use error::{SmtpError, Step};
pub(crate) use reply::Reply;
pub(crate) use sasl::Credentials;
pub(crate) use settings::{Delivery, Envelope, Security, Settings, Target, Timeouts};
