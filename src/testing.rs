//! The unit tests' Microsoft 365: the emulator's tenant over real TCP and TLS, and the account
//! that reaches it, resolved by the configuration as a user's would be.

use std::path::PathBuf;

use m365_emulator::fixture::{CLIENT, MAILBOX, TENANT};
use m365_emulator::{Emulator, Options, Scenario};

use crate::account::Account;
use crate::config::{Config, Overrides};

/// The client secret the emulator's app registration holds.
pub(crate) const SECRET: &str = "Xq58Q~unit.test.secret";

/// An emulator started for one test, and its CA certificate on disk.
#[derive(Debug)]
pub(crate) struct Tenant {
    pub(crate) emulator: Emulator,
    pub(crate) ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tenant {
    /// The emulator's contoso tenant as it is.
    pub(crate) async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// The contoso tenant after `change`.
    pub(crate) async fn start_with(change: impl FnOnce(&mut Scenario)) -> Self {
        let mut scenario = m365_emulator::fixture::contoso(SECRET, None);
        change(&mut scenario);
        let emulator = Emulator::start(Options::new(scenario))
            .await
            .expect("the emulator starts");
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, emulator.ca_pem()).unwrap();
        Self {
            emulator,
            ca,
            _dir: dir,
        }
    }

    /// The settings a user of this tenant sets, by their environment names.
    pub(crate) fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_TENANT_ID", TENANT.to_owned()),
            ("AZURE_CLIENT_ID", CLIENT.to_owned()),
            ("AZURE_CLIENT_SECRET", SECRET.to_owned()),
            ("M365_MAILER_MAILBOX", MAILBOX.to_owned()),
            ("AZURE_AUTHORITY_HOST", self.emulator.base_url()),
            ("M365_MAILER_SMTP_HOST", self.emulator.smtp_addr().ip().to_string()),
            ("M365_MAILER_SMTP_PORT", self.emulator.smtp_addr().port().to_string()),
            ("M365_MAILER_CA_FILE", self.ca.display().to_string()),
        ]
    }

    /// The account of the tenant's mailbox, as the configuration resolves it.
    pub(crate) fn account(&self) -> Account {
        let values = self.settings();
        let env = |name: &str| values.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone());
        Config::resolve_with(&Overrides::default(), &env).unwrap().account
    }
}
