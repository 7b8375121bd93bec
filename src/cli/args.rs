//! The command line, as clap types. They stay in `cli`: commands turn them into configuration and
//! message specifications before doing anything.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Field, Overrides};

/// Send mail through Microsoft 365 with OAuth2 app-only credentials.
#[derive(Debug, Parser)]
#[command(name = "m365-mailer", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Send a message: sendmail-compatible (message on stdin, recipients as arguments, -t, -f,
    /// -F, -i) or composed from flags (--to, --subject, --body, --attach).
    Send(Box<SendArgs>),
    /// Inspect the configuration.
    Config {
        /// What to do with it.
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Run the emulator of Entra ID and Exchange Online in-process and show a token, a send,
    /// and a diagnosed failure.
    #[cfg(feature = "emulator")]
    Demo,
    /// Check every link from the configuration to Exchange Online; name the cause and the fix of
    /// each failure.
    Doctor(Box<DoctorArgs>),
    /// Get a token and show its header and claims with the checks Exchange needs (the token
    /// itself only with --raw).
    Token(Box<TokenArgs>),
    /// Print the Entra ID and Exchange Online (or Azure Communication Services) steps, a
    /// commented PowerShell script, for your ids.
    Setup(Box<SetupArgs>),
    /// Run the local SMTP relay for devices and applications that cannot do OAuth: accept their
    /// mail, queue it durably, deliver it to Exchange Online.
    Relay(Box<RelayArgs>),
    /// Look at and act on the relay's queue (safe while the relay runs).
    Queue(Box<QueueArgs>),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page, or write one per command into a directory.
    Man {
        /// Write m365-mailer.1 and a page per subcommand (m365-mailer-relay.1, …) here.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// `queue`.
#[derive(Debug, Args)]
pub(crate) struct QueueArgs {
    /// What to do [default: list].
    #[command(subcommand)]
    pub(crate) command: Option<QueueCommand>,
    /// Queue directory [default: the relay's].
    #[arg(long, value_name = "DIR", global = true)]
    pub(crate) queue_dir: Option<PathBuf>,
    /// Config file (for `queue_dir` in `[relay]`).
    #[arg(long, value_name = "FILE", global = true)]
    pub(crate) config: Option<PathBuf>,
    /// Print JSON.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

/// `queue` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum QueueCommand {
    /// The messages waiting for delivery, oldest first (like mailq).
    List,
    /// One message: envelope, attempts, last reply, and its headers (all of it with --content).
    Show {
        /// Queue id, or a unique beginning of it.
        id: String,
        /// Print the whole message.
        #[arg(long)]
        content: bool,
    },
    /// Try a message (or all) again now instead of at its scheduled time.
    Retry {
        /// Queue id, or a unique beginning of it.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Every waiting message.
        #[arg(long)]
        all: bool,
    },
    /// Remove a message without delivering it.
    Delete {
        /// Queue id, or a unique beginning of it.
        id: String,
    },
    /// Move a SQLite queue (--queue-dir, else the default directory) into the PostgreSQL
    /// queue: waiting messages, dead letters, pauses; no relay may run on the directory.
    Migrate {
        /// The PostgreSQL queue [default: `queue` in `[relay]`, or M365_MAILER_QUEUE_URL].
        #[arg(long, value_name = "postgres://USER@HOST/DATABASE")]
        to: Option<String>,
    },
    /// The dead-letter area: messages given up on, with the reply and the diagnosis.
    Dead {
        /// What to do [default: list].
        #[command(subcommand)]
        command: Option<DeadCommand>,
    },
}

/// `queue dead` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum DeadCommand {
    /// Every dead letter, oldest first.
    List,
    /// A dead letter in full: reply, diagnosis, headers (all of it with --content).
    Show {
        /// Queue id, or a beginning of it.
        id: String,
        /// Print the whole message.
        #[arg(long)]
        content: bool,
    },
    /// Put dead letters back in the queue, due now (after fixing the cause).
    Retry {
        /// Queue id, or a beginning of it.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Every dead letter.
        #[arg(long)]
        all: bool,
    },
    /// Delete dead letters: all, or those given up on before --older-than.
    Purge {
        /// Only those older than this (e.g. 30d, 12h).
        #[arg(long, value_name = "AGE", value_parser = humantime::parse_duration)]
        older_than: Option<std::time::Duration>,
    },
}

/// `relay`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct RelayArgs {
    /// Other relay commands.
    #[command(subcommand)]
    pub(crate) command: Option<RelayCommand>,
    /// Listen on this address instead of the configured listeners (plain SMTP; repeatable).
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub(crate) listen: Vec<std::net::SocketAddr>,
    /// Queue directory [default: $STATE_DIRECTORY/queue, $XDG_STATE_HOME/m365-mailer/queue].
    #[arg(long, value_name = "DIR")]
    pub(crate) queue_dir: Option<PathBuf>,
    /// Admin endpoint (/healthz, /readyz, /metrics), or `off` [default: 127.0.0.1:2580].
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub(crate) admin: Option<String>,
    /// Log lines as text or JSON.
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub(crate) log_format: String,
    /// Config file [default: $XDG_CONFIG_HOME/m365-mailer/config.toml, then /etc/m365-mailer/config.toml].
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The account for rules that name none [default: the config file's default account].
    #[arg(long, value_name = "NAME")]
    pub(crate) account: Option<String>,
}

/// `relay` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum RelayCommand {
    /// Read a password on standard input and print its Argon2id hash for `[[relay.users]]`.
    HashPassword,
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Validate and print the resolved configuration, secrets redacted.
    Check(Box<AccountArgs>),
}

/// Which account, and overrides of its settings.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct AccountArgs {
    /// Config file [default: $XDG_CONFIG_HOME/m365-mailer/config.toml, then /etc/m365-mailer/config.toml].
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Account of the config file to use.
    #[arg(long, value_name = "NAME")]
    pub(crate) account: Option<String>,
    /// Directory (tenant) ID or verified domain.
    #[arg(long, value_name = "TENANT")]
    pub(crate) tenant: Option<String>,
    /// Application (client) ID.
    #[arg(long, value_name = "GUID")]
    pub(crate) client_id: Option<String>,
    /// The mailbox that authenticates and sends.
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) mailbox: Option<String>,
    /// Cloud: global, gcc-high, dod or china.
    #[arg(long, value_name = "CLOUD")]
    pub(crate) cloud: Option<String>,
    /// Service: exchange (a mailbox), hve (High Volume Email) or acs (Azure Communication
    /// Services Email).
    #[arg(long, value_name = "SERVICE")]
    pub(crate) service: Option<String>,
    /// Full token endpoint URL.
    #[arg(long, value_name = "URL")]
    pub(crate) token_endpoint: Option<String>,
    /// Token scope.
    #[arg(long, value_name = "SCOPE")]
    pub(crate) scope: Option<String>,
    /// SMTP server.
    #[arg(long, value_name = "HOST")]
    pub(crate) smtp_host: Option<String>,
    /// SMTP port.
    #[arg(long, value_name = "PORT")]
    pub(crate) smtp_port: Option<String>,
    /// starttls (587), tls (465) or insecure-plaintext.
    #[arg(long, value_name = "MODE")]
    pub(crate) security: Option<String>,
    /// Extra trusted CA certificates (PEM).
    #[arg(long, value_name = "FILE")]
    pub(crate) ca_file: Option<PathBuf>,
}

impl AccountArgs {
    /// As configuration overrides.
    pub(crate) fn overrides(&self) -> Overrides {
        let mut fields = Vec::new();
        let mut add = |field: Field, value: &Option<String>| {
            if let Some(v) = value {
                fields.push((field, v.clone()));
            }
        };
        add(Field::Tenant, &self.tenant);
        add(Field::ClientId, &self.client_id);
        add(Field::Mailbox, &self.mailbox);
        add(Field::Cloud, &self.cloud);
        add(Field::Service, &self.service);
        add(Field::TokenEndpoint, &self.token_endpoint);
        add(Field::Scope, &self.scope);
        add(Field::SmtpHost, &self.smtp_host);
        add(Field::SmtpPort, &self.smtp_port);
        add(Field::Security, &self.security);
        add(Field::CaFile, &self.ca_file.as_ref().map(|p| p.display().to_string()));
        Overrides {
            config: self.config.clone(),
            account: self.account.clone(),
            fields,
        }
    }
}

/// `doctor`.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct DoctorArgs {
    /// Also send a real test message to this address.
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) send_test: Option<String>,
    /// From address of the test message [default: the account's].
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) from: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Account selection and overrides.
    #[command(flatten)]
    pub(crate) account: AccountArgs,
}

/// `token`.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct TokenArgs {
    /// Read the token from this file (`-` for standard input) instead of asking for one.
    #[arg(long, value_name = "FILE")]
    pub(crate) from_file: Option<PathBuf>,
    /// Print only the token, for scripts (e.g. msmtp's passwordeval).
    #[arg(long)]
    pub(crate) raw: bool,
    /// Print header, claims and checks as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Do not read or write the on-disk token cache.
    #[arg(long)]
    pub(crate) no_token_cache: bool,
    /// Account selection and overrides.
    #[command(flatten)]
    pub(crate) account: AccountArgs,
}

/// `setup`.
#[derive(Debug, Clone, Args)]
pub(crate) struct SetupArgs {
    /// The Microsoft service: exchange (a mailbox on Exchange Online), hve (High Volume Email,
    /// internal recipients only) or acs (Azure Communication Services Email).
    #[arg(long, value_name = "SERVICE", default_value = "exchange")]
    pub(crate) service: crate::service::Service,
    /// Directory (tenant) ID or verified domain.
    #[arg(long, value_name = "TENANT")]
    pub(crate) tenant: String,
    /// Application (client) ID [with --apply: the app is made, or found by the client id of the
    /// account in the config file].
    #[arg(
        long,
        value_name = "GUID",
        required_unless_present = "apply",
        conflicts_with = "apply"
    )]
    pub(crate) client_id: Option<String>,
    /// The address that sends: the mailbox (exchange), the HVE account (hve), the MailFrom
    /// sender address on the verified domain (acs, where it may be left out).
    #[arg(long, visible_alias = "sender", value_name = "ADDRESS")]
    pub(crate) mailbox: Option<String>,
    /// Enterprise application Object ID (Enterprise applications → the app → Object ID);
    /// exchange and hve.
    #[arg(long, value_name = "GUID")]
    pub(crate) sp_id: Option<String>,
    /// Another address to send as (repeatable; exchange).
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) send_as: Vec<String>,
    /// Upload this certificate (PEM or DER) instead of creating a client secret.
    #[arg(long, value_name = "FILE")]
    pub(crate) certificate: Option<PathBuf>,
    /// Display name of the service principal in Exchange (exchange); the name of the SMTP
    /// Username resource (acs: letters, digits and hyphens).
    #[arg(long, value_name = "NAME", default_value = "m365-mailer")]
    pub(crate) display_name: String,
    /// exchange: the SMTP.SendAsApp permission with admin consent and FullAccess on the mailbox,
    /// instead of RBAC for Applications (the default: a management scope and the role
    /// Application SMTP.SendAsApp).
    #[arg(long)]
    pub(crate) per_mailbox: bool,
    /// RBAC for Applications: the default now, kept for older command lines.
    #[arg(long, hide = true, conflicts_with = "per_mailbox")]
    pub(crate) rbac: bool,
    /// acs: the Azure subscription ID of the Communication Services resource [default: asked
    /// for when the script runs].
    #[arg(long, value_name = "GUID")]
    pub(crate) subscription: Option<String>,
    /// acs: the resource group of the Communication Services resource [default: asked for].
    #[arg(long, value_name = "NAME")]
    pub(crate) resource_group: Option<String>,
    /// acs: the name of the Communication Services resource [default: asked for].
    #[arg(long, value_name = "NAME")]
    pub(crate) acs_resource: Option<String>,
    /// acs: the user name of the SMTP Username to create, what SMTP AUTH sends (free-form
    /// letters, digits, '.', '_', '-', or an address) [default: asked for].
    #[arg(long, value_name = "NAME")]
    pub(crate) smtp_username: Option<String>,
    /// Do the Entra part through Microsoft Graph, signed in as an administrator with a device
    /// code: the app registration, its Enterprise application, admin consent and a client secret;
    /// write the account into the config file; print the Exchange part with every id; wait for
    /// Exchange to take it (exchange and hve).
    #[arg(long, help_heading = "Applying")]
    pub(crate) apply: bool,
    /// --apply: the config file to write the account into [default: the one the other commands
    /// read, else $XDG_CONFIG_HOME/m365-mailer/config.toml].
    #[arg(long, value_name = "FILE", requires = "apply", help_heading = "Applying")]
    pub(crate) config: Option<PathBuf>,
    /// --apply: the account's name in the config file.
    #[arg(long, value_name = "NAME", default_value = "main", help_heading = "Applying")]
    pub(crate) account: String,
    /// --apply: days until the new client secret expires (Entra allows up to 730).
    #[arg(long, value_name = "DAYS", default_value_t = 180, value_parser = clap::value_parser!(u32).range(1..=730), help_heading = "Applying")]
    pub(crate) secret_days: u32,
    /// --apply: the public client the administrator signs in with [default: Microsoft Graph
    /// Command Line Tools, 14d82eec-204b-4c2f-b7e8-296a70dab67e] (docs/setup-apply.md).
    #[arg(long, value_name = "GUID", requires = "apply", help_heading = "Applying")]
    pub(crate) sign_in_client_id: Option<String>,
    /// --apply: how long to wait for Exchange to take the changes (0: do not wait).
    #[arg(long, value_name = "DURATION", default_value = "60m", value_parser = humantime::parse_duration, help_heading = "Applying")]
    pub(crate) wait: std::time::Duration,
    /// --apply: how often to check while waiting.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = humantime::parse_duration, help_heading = "Applying")]
    pub(crate) check_every: std::time::Duration,
    /// --apply: once the checks pass, send a test message to this address.
    #[arg(long, value_name = "ADDRESS", requires = "apply", help_heading = "Applying")]
    pub(crate) send_test: Option<String>,
}

/// `send`.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct SendArgs {
    /// Recipients (sendmail style).
    #[arg(value_name = "RECIPIENT")]
    pub(crate) recipients: Vec<String>,
    /// Also take recipients from the To, Cc and Bcc headers.
    #[arg(short = 't')]
    pub(crate) recipients_from_headers: bool,
    /// Envelope sender (MAIL FROM).
    #[arg(short = 'f', value_name = "ADDRESS")]
    pub(crate) envelope_from: Option<String>,
    /// Full name for the From header.
    #[arg(short = 'F', long = "from-name", value_name = "NAME")]
    pub(crate) full_name: Option<String>,
    /// From address of a composed message [default: the account's `from`, else its mailbox].
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) from: Option<String>,
    /// To recipient (repeatable).
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) to: Vec<String>,
    /// Cc recipient (repeatable).
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) cc: Vec<String>,
    /// Bcc recipient (repeatable); never appears in the message.
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) bcc: Vec<String>,
    /// Subject (composes a message instead of reading one).
    #[arg(long)]
    pub(crate) subject: Option<String>,
    /// Plain-text body.
    #[arg(long, conflicts_with = "body_file")]
    pub(crate) body: Option<String>,
    /// Plain-text body from a file.
    #[arg(long, value_name = "FILE")]
    pub(crate) body_file: Option<PathBuf>,
    /// HTML body.
    #[arg(long, value_name = "HTML")]
    pub(crate) html: Option<String>,
    /// Attach a file (repeatable; MIME type from the extension).
    #[arg(long = "attach", value_name = "FILE")]
    pub(crate) attachments: Vec<PathBuf>,
    /// Extra header `Name: value` (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub(crate) headers: Vec<String>,
    /// Print the envelope and the message instead of sending.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Print the SMTP transcript (credentials masked).
    #[arg(short, long)]
    pub(crate) verbose: bool,
    /// Send even when the From address is neither the mailbox nor an allowed sender.
    #[arg(long)]
    pub(crate) no_from_check: bool,
    /// Do not read or write the on-disk token cache.
    #[arg(long)]
    pub(crate) no_token_cache: bool,
    /// Account selection and overrides.
    #[command(flatten)]
    pub(crate) account: AccountArgs,
}
