//! The emulator over real TCP and TLS: token endpoint, SMTP, limits, faults, the standalone
//! program, and clients nobody here wrote (Python's smtplib, curl, Microsoft's MSAL).

mod binary;
mod faults;
mod interop;
mod limits;
mod smtp;
mod support;
mod token;
