//! `relay`: resolve the configuration, start, run until SIGTERM or SIGINT, stop cleanly.
//! `relay hash-password`: a password hash for the config file.

use std::io::{BufRead as _, IsTerminal as _};
use std::time::Duration;

use super::args::{RelayArgs, RelayCommand};
use super::exit::{Code, Failure};
use crate::config::{Overrides, RelayOverrides};
use crate::relay::settings::RelayConfig;
use crate::relay::{Listeners, Relay, StartError, policy};

/// How long deliveries in flight may take to finish at shutdown.
const STOP_DEADLINE: Duration = Duration::from_secs(30);

pub(crate) async fn run(args: &RelayArgs) -> Result<(), Failure> {
    if let Some(RelayCommand::HashPassword) = args.command {
        return hash_password();
    }
    let overrides = RelayOverrides {
        config: Overrides {
            config: args.config.clone(),
            account: args.account.clone(),
            fields: Vec::new(),
        },
        listen: args.listen.clone(),
        queue_dir: args.queue_dir.clone(),
        admin: args.admin.clone(),
    };
    let config = RelayConfig::resolve(&overrides)?;
    let started = match Listeners::bind(&config) {
        Ok(listeners) => Relay::start(config, listeners).await,
        Err(e) => Err(e),
    };
    let mut relay = started.map_err(|e| {
        let code = match &e {
            StartError::Queue(_) => Code::CantCreate,
            StartError::Tls(_) | StartError::Account { .. } => Code::Config,
            StartError::Listen { .. } => Code::OsErr,
        };
        Failure::new(code, e.to_string())
    })?;
    for address in &relay.addresses {
        eprintln!("m365-mailer relay: listening on {address}");
    }
    if let Some(admin) = relay.admin {
        eprintln!("m365-mailer relay: admin on http://{admin}");
    }
    eprintln!("m365-mailer relay: ready, queue in {}", relay.queue.location());
    let mut signals = Signals::new().map_err(|e| Failure::new(Code::OsErr, format!("cannot handle signals: {e}")))?;
    loop {
        match signals.next().await {
            Signal::Stop => break,
            Signal::Reload => reload(&mut relay, &overrides).await,
        }
    }
    tracing::info!("stopping: no new connections; open sessions and deliveries in flight may finish");
    relay.stop(STOP_DEADLINE).await;
    tracing::info!("stopped");
    Ok(())
}

/// SIGHUP: the configuration again. A broken one is refused and the running one stays.
async fn reload(relay: &mut Relay, overrides: &RelayOverrides) {
    let config = match RelayConfig::resolve(overrides) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(error = %e, "reload refused; the running configuration stays");
            return;
        }
    };
    match relay.reload(config).await {
        Ok(ignored) => {
            tracing::info!(
                "configuration reloaded: users, allowed networks, accounts, delivery settings, alerts and the admin token"
            );
            for what in ignored {
                tracing::warn!("{what}");
            }
        }
        Err(e) => tracing::error!(error = %e, "reload refused; the running configuration stays"),
    }
}

enum Signal {
    Stop,
    Reload,
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Stop,
            _ = self.int.recv() => Signal::Stop,
            _ = self.hup.recv() => Signal::Reload,
        }
    }
}

fn hash_password() -> Result<(), Failure> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password (shown as typed; pipe it in to avoid that): ");
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::new(Code::IoErr, format!("cannot read the password: {e}")))?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err(Failure::new(Code::Usage, "empty password: give one on standard input"));
    }
    println!("{}", policy::hash_password(password.as_bytes()));
    Ok(())
}
