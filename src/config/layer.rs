//! Values with their origin, and the three layers they come from.

use std::collections::BTreeMap;
use std::fmt;

use crate::setting::{Origin, Setting};

/// Environment variables and the fields they set (the Azure SDK's names where they exist).
pub(crate) const ENVIRONMENT: &[(&str, &str)] = &[
    ("AZURE_TENANT_ID", "tenant"),
    ("AZURE_CLIENT_ID", "client_id"),
    ("AZURE_CLIENT_SECRET", "client_secret"),
    ("M365_MAILER_CLIENT_SECRET_EXPIRES", "client_secret_expires"),
    ("AZURE_CLIENT_CERTIFICATE_PATH", "certificate"),
    ("AZURE_CLIENT_CERTIFICATE_PASSWORD", "certificate_password"),
    ("AZURE_AUTHORITY_HOST", "authority_host"),
    ("AZURE_FEDERATED_TOKEN_FILE", "federated_token_file"),
    ("M365_MAILER_MANAGED_IDENTITY_CLIENT_ID", "managed_identity_client_id"),
    // Where a managed identity's token comes from: App Service sets the first two; the third
    // replaces the Azure VM endpoint (IMDS), e.g. with the emulator's.
    ("IDENTITY_ENDPOINT", "identity_endpoint"),
    ("IDENTITY_HEADER", "identity_header"),
    ("M365_MAILER_IMDS_ENDPOINT", "imds_endpoint"),
    ("M365_MAILER_MAILBOX", "mailbox"),
    ("M365_MAILER_FROM", "from"),
    ("M365_MAILER_CLOUD", "cloud"),
    ("M365_MAILER_TOKEN_ENDPOINT", "token_endpoint"),
    ("M365_MAILER_SCOPE", "scope"),
    ("M365_MAILER_TRANSPORT", "transport"),
    ("M365_MAILER_GRAPH_URL", "graph_url"),
    ("M365_MAILER_SAVE_TO_SENT_ITEMS", "save_to_sent_items"),
    ("M365_MAILER_SMTP_HOST", "smtp_host"),
    ("M365_MAILER_SMTP_PORT", "smtp_port"),
    ("M365_MAILER_SMTP_SECURITY", "security"),
    ("M365_MAILER_CA_FILE", "ca_file"),
    ("M365_MAILER_SMTP_USERNAME", "smtp_username"),
    ("M365_MAILER_SMTP_PASSWORD", "smtp_password"),
];

/// The values of one source. They are raw text, secrets included (`client_secret` from the
/// environment or the file): `Debug` shows which fields are set and where from, never a value.
#[derive(Clone, Default)]
pub(crate) struct Layer {
    rank: u8,
    values: BTreeMap<String, Setting<String>>,
    lists: BTreeMap<String, Setting<Vec<String>>>,
}

impl fmt::Debug for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origins = |map: &mut fmt::DebugMap<'_, '_>| {
            for (field, setting) in &self.values {
                map.entry(field, &setting.origin.to_string());
            }
            for (field, setting) in &self.lists {
                map.entry(field, &setting.origin.to_string());
            }
        };
        let mut map = f.debug_map();
        origins(&mut map);
        map.finish()
    }
}

impl Layer {
    pub(crate) fn from_env(env: super::Env<'_>) -> Self {
        let mut layer = Self {
            rank: 1,
            ..Self::default()
        };
        for (var, field) in ENVIRONMENT {
            if let Some(value) = env(var) {
                layer.set(field, value, Origin::Env((*var).to_owned()));
            }
        }
        layer
    }

    pub(crate) fn from_flags(fields: &[(&'static str, &'static str, String)]) -> Self {
        let mut layer = Self::default();
        for (field, flag, value) in fields {
            layer.set(field, value.clone(), Origin::Flag((*flag).to_owned()));
        }
        layer
    }

    pub(crate) fn file() -> Self {
        Self {
            rank: 2,
            ..Self::default()
        }
    }

    pub(crate) fn set(&mut self, field: &str, value: String, origin: Origin) {
        self.values.insert(field.to_owned(), Setting { value, origin });
    }

    pub(crate) fn set_list(&mut self, field: &str, values: Vec<String>, origin: Origin) {
        self.lists.insert(field.to_owned(), Setting { value: values, origin });
    }

    pub(crate) fn get(&self, field: &str) -> Option<Setting<String>> {
        self.values.get(field).cloned()
    }

    /// 0 for flags, 1 for the environment, 2 for the file: lower wins.
    pub(crate) fn rank(&self) -> u8 {
        self.rank
    }

    pub(crate) fn has_any(&self, fields: &[&str]) -> bool {
        fields.iter().any(|f| self.values.contains_key(*f))
    }

    pub(crate) fn any_origin(&self, fields: &[&str]) -> Origin {
        fields
            .iter()
            .find_map(|f| self.values.get(*f).map(|s| s.origin.clone()))
            .unwrap_or(Origin::Default)
    }
}

/// Flags over environment over file.
#[derive(Debug)]
pub(crate) struct Layers {
    pub(crate) flags: Layer,
    pub(crate) env: Layer,
    pub(crate) file: Layer,
}

impl Layers {
    fn all(&self) -> [&Layer; 3] {
        [&self.flags, &self.env, &self.file]
    }

    pub(crate) fn get(&self, field: &str) -> Option<Setting<String>> {
        self.all().iter().find_map(|l| l.get(field))
    }

    pub(crate) fn list(&self, field: &str) -> Option<Setting<Vec<String>>> {
        self.all().iter().find_map(|l| l.lists.get(field).cloned())
    }

    /// The highest layer that sets any of `fields`.
    pub(crate) fn highest_with(&self, fields: &[&str]) -> Option<&Layer> {
        self.all().into_iter().find(|l| l.has_any(fields))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_names_fields_and_origins_never_values() {
        let layer =
            super::Layer::from_env(&|name| (name == "AZURE_CLIENT_SECRET").then(|| "Xq58Q~never.printed".to_owned()));
        let shown = format!("{layer:?}");
        assert!(
            shown.contains("client_secret") && shown.contains("AZURE_CLIENT_SECRET"),
            "{shown}"
        );
        assert!(!shown.contains("never.printed"), "{shown}");
    }
}
