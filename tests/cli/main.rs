//! The real `m365-mailer` binary and its library against the emulator over TCP and TLS.

mod alerts;
mod argv_injection;
mod browser;
mod credentials;
mod doctor;
mod examples;
mod exit_codes;
mod federation;
mod graph;
mod packaging;
mod queue_display;
mod relay;
mod relay_accounts;
mod relay_cluster;
mod relay_hardening;
mod relay_postgres;
mod relay_services;
mod send;
mod services;
mod setup_apply;
mod setup_token;
mod status_page;
mod support;
mod tokens;
mod transport;
mod verdict;
