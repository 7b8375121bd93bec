//! The SMTP client side: replies, commands, capabilities, SASL, content transparency, the
//! masked transcript, and the connection that ties them together.

pub mod client;
pub mod command;
pub mod ehlo;
pub mod error;
pub mod reply;
pub mod sasl;
pub mod settings;
pub mod transcript;
pub mod transparency;

pub use client::Connection;
pub use error::{SmtpError, Step};
pub use reply::{EnhancedCode, Reply};
pub use sasl::Credentials;
pub use settings::{Delivery, Envelope, Security, Settings, Target, Timeouts};
