//! Every field of an account, named once: its key in the config file, the environment variable
//! that sets it, whether it holds a path or a list. The file reader, the environment, the flags
//! and the account builder all speak of fields through [`Field`], so a misspelt key is a compile
//! error, not a setting silently ignored.

/// How one field is written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    /// The key in `[accounts.NAME]` (and, with `-` for `_`, the flag).
    pub(crate) name: &'static str,
    /// The environment variable (the Azure SDK's name where there is one).
    pub(crate) env: Option<&'static str>,
    /// May be written in the config file (some come only from the environment a platform sets).
    pub(crate) in_file: bool,
    /// A path, taken relative to the config file's directory.
    pub(crate) path: bool,
    /// A list of strings rather than one value.
    pub(crate) list: bool,
}

impl Spec {
    const fn new(name: &'static str) -> Self {
        Self {
            name,
            env: None,
            in_file: true,
            path: false,
            list: false,
        }
    }

    const fn env(self, var: &'static str) -> Self {
        Self { env: Some(var), ..self }
    }

    const fn path(self) -> Self {
        Self { path: true, ..self }
    }

    const fn list(self) -> Self {
        Self { list: true, ..self }
    }

    const fn env_only(name: &'static str, var: &'static str) -> Self {
        Self {
            in_file: false,
            ..Self::new(name).env(var)
        }
    }
}

macro_rules! fields {
    ($($field:ident => $spec:expr,)*) => {
        /// A field of an account (`docs/configuration.md` documents each).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        pub(crate) enum Field {
            $(
                #[doc = concat!("`", stringify!($field), "`.")]
                $field,
            )*
        }

        impl Field {
            /// Every field, in the order of `docs/configuration.md`.
            pub(crate) const ALL: &[Field] = &[$(Field::$field),*];

            /// How it is written.
            pub(crate) const fn spec(self) -> Spec {
                match self {
                    $(Field::$field => $spec,)*
                }
            }
        }
    };
}

fields! {
    Enabled => Spec::new("enabled"),
    Tenant => Spec::new("tenant").env("AZURE_TENANT_ID"),
    ClientId => Spec::new("client_id").env("AZURE_CLIENT_ID"),
    Mailbox => Spec::new("mailbox").env("M365_MAILER_MAILBOX"),
    From => Spec::new("from").env("M365_MAILER_FROM"),
    AllowedSenders => Spec::new("allowed_senders").list(),
    Cloud => Spec::new("cloud").env("M365_MAILER_CLOUD"),
    Service => Spec::new("service").env("M365_MAILER_SERVICE"),
    InternalDomains => Spec::new("internal_domains").list(),
    AuthorityHost => Spec::new("authority_host").env("AZURE_AUTHORITY_HOST"),
    TokenEndpoint => Spec::new("token_endpoint").env("M365_MAILER_TOKEN_ENDPOINT"),
    Scope => Spec::new("scope").env("M365_MAILER_SCOPE"),
    Transport => Spec::new("transport").env("M365_MAILER_TRANSPORT"),
    GraphUrl => Spec::new("graph_url").env("M365_MAILER_GRAPH_URL"),
    SaveToSentItems => Spec::new("save_to_sent_items").env("M365_MAILER_SAVE_TO_SENT_ITEMS"),
    GrantType => Spec::new("grant_type"),
    SmtpHost => Spec::new("smtp_host").env("M365_MAILER_SMTP_HOST"),
    SmtpPort => Spec::new("smtp_port").env("M365_MAILER_SMTP_PORT"),
    Security => Spec::new("security").env("M365_MAILER_SMTP_SECURITY"),
    CaFile => Spec::new("ca_file").env("M365_MAILER_CA_FILE").path(),
    ClientSecret => Spec::new("client_secret").env("AZURE_CLIENT_SECRET"),
    ClientSecretEnv => Spec::new("client_secret_env"),
    ClientSecretFile => Spec::new("client_secret_file").path(),
    ClientSecretExpires => Spec::new("client_secret_expires").env("M365_MAILER_CLIENT_SECRET_EXPIRES"),
    // The Secret ID of the client secret in Entra: which one `credential rotate` replaces.
    ClientSecretId => Spec::new("client_secret_id"),
    Certificate => Spec::new("certificate").env("AZURE_CLIENT_CERTIFICATE_PATH").path(),
    CertificatePassword => Spec::new("certificate_password").env("AZURE_CLIENT_CERTIFICATE_PASSWORD"),
    CertificatePasswordEnv => Spec::new("certificate_password_env"),
    CertificatePasswordFile => Spec::new("certificate_password_file").path(),
    PrivateKey => Spec::new("private_key").path(),
    FederatedTokenFile => Spec::new("federated_token_file").env("AZURE_FEDERATED_TOKEN_FILE").path(),
    ManagedIdentityClientId => Spec::new("managed_identity_client_id").env("M365_MAILER_MANAGED_IDENTITY_CLIENT_ID"),
    // Where a managed identity's token comes from: App Service sets the first two; the third
    // replaces the Azure VM endpoint (IMDS), e.g. with the emulator's.
    IdentityEndpoint => Spec::env_only("identity_endpoint", "IDENTITY_ENDPOINT"),
    IdentityHeader => Spec::env_only("identity_header", "IDENTITY_HEADER"),
    ImdsEndpoint => Spec::env_only("imds_endpoint", "M365_MAILER_IMDS_ENDPOINT"),
    Assertion => Spec::new("assertion"),
    SendX5c => Spec::new("send_x5c"),
    SmtpUsername => Spec::new("smtp_username").env("M365_MAILER_SMTP_USERNAME"),
    SmtpPassword => Spec::new("smtp_password").env("M365_MAILER_SMTP_PASSWORD"),
    SmtpPasswordEnv => Spec::new("smtp_password_env"),
    SmtpPasswordFile => Spec::new("smtp_password_file").path(),
}

impl Field {
    /// The key in the config file.
    pub(crate) const fn name(self) -> &'static str {
        self.spec().name
    }

    /// The command-line flag that sets it (`--client-id`).
    pub(crate) fn flag(self) -> String {
        format!("--{}", self.name().replace('_', "-"))
    }

    /// The field written as `key` in the config file.
    pub(crate) fn in_file(key: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|f| f.spec().in_file && f.name() == key)
    }

    /// The keys the config file may hold, for an error about one it may not.
    pub(crate) fn file_keys() -> String {
        Self::ALL
            .iter()
            .filter(|f| f.spec().in_file)
            .map(|f| format!("`{}`", f.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::Field;

    #[test]
    fn names_and_variables_are_unique_and_documented() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md")).unwrap();
        for (i, a) in Field::ALL.iter().enumerate() {
            let spec = a.spec();
            assert!(
                doc.contains(&format!("`{}`", spec.name)) || !spec.in_file,
                "{} undocumented",
                spec.name
            );
            if let Some(var) = spec.env {
                assert!(doc.contains(&format!("`{var}`")), "{var} undocumented");
            }
            for b in &Field::ALL[i + 1..] {
                assert_ne!(spec.name, b.spec().name);
                assert!(spec.env.is_none() || spec.env != b.spec().env);
            }
        }
        assert_eq!(Field::in_file("client_id"), Some(Field::ClientId));
        assert_eq!(
            Field::in_file("imds_endpoint"),
            None,
            "set by the platform, not the file"
        );
        assert_eq!(Field::ClientId.flag(), "--client-id");
    }
}
