//! The emulator over real TCP and TLS: token endpoint, SMTP, RBAC for Applications, limits,
//! faults, HVE and ACS, the standalone program, and clients nobody here wrote (Python's smtplib,
//! curl, Microsoft's MSAL).

mod binary;
mod directory;
mod faults;
mod interop;
mod limits;
mod rbac;
mod services;
mod smtp;
mod support;
mod token;
