//! Where the relay listens and with which certificate.

use std::net::SocketAddr;
use std::path::Path;

use super::{RawListener, RawRelay, Reader, RelayOverrides, relative};
use crate::config::ConfigError;
use crate::relay::settings::{Listener, ListenerTls, ServerCertificate};

/// The listening sockets: the flags', else the file's, else 127.0.0.1:2525.
pub(super) fn listeners(
    r: &Reader<'_>,
    raw: &RawRelay,
    overrides: &RelayOverrides,
) -> Result<Vec<Listener>, ConfigError> {
    let tls_mode = |l: &RawListener, i: usize| -> Result<ListenerTls, ConfigError> {
        match l.tls.as_ref().map(|t| t.get_ref().trim().to_ascii_lowercase()) {
            None => Ok(ListenerTls::None),
            Some(t) => match t.as_str() {
                "none" | "off" => Ok(ListenerTls::None),
                "starttls" => Ok(ListenerTls::StartTls),
                "implicit" | "tls" | "smtps" => Ok(ListenerTls::Implicit),
                other => Err(r.invalid(
                    l.tls.as_ref().expect("present"),
                    &format!("listen[{i}].tls"),
                    format!("`{other}` is not a TLS mode: none, starttls or implicit"),
                )),
            },
        }
    };
    let mut listeners = Vec::new();
    if overrides.listen.is_empty() {
        for (i, l) in raw.listen.iter().enumerate() {
            let address = l.address.get_ref().trim().parse::<SocketAddr>().map_err(|_| {
                r.invalid(
                    &l.address,
                    &format!("listen[{i}].address"),
                    format!(
                        "`{}` is not an address and port: write e.g. 127.0.0.1:2525 or [::1]:2525",
                        l.address.get_ref()
                    ),
                )
            })?;
            listeners.push(Listener {
                address,
                tls: tls_mode(l, i)?,
            });
        }
        if listeners.is_empty() {
            listeners.push(Listener {
                address: SocketAddr::from(([127, 0, 0, 1], 2525)),
                tls: ListenerTls::None,
            });
        }
    } else {
        listeners.extend(overrides.listen.iter().map(|address| Listener {
            address: *address,
            tls: ListenerTls::None,
        }));
    }
    Ok(listeners)
}

/// The server certificate: both files, or neither (one is generated at start).
pub(super) fn certificate(r: &Reader<'_>, raw: &RawRelay, path: &Path) -> Result<ServerCertificate, ConfigError> {
    Ok(match (&raw.certificate, &raw.private_key) {
        (Some(c), Some(k)) => ServerCertificate::Files {
            certificate: relative(path, c.get_ref()),
            private_key: relative(path, k.get_ref()),
        },
        (None, None) => ServerCertificate::SelfSigned,
        (Some(c), None) => {
            return Err(r.invalid(c, "certificate", "set private_key too (the certificate's key, PEM)"));
        }
        (None, Some(k)) => return Err(r.invalid(k, "private_key", "set certificate too (the chain, PEM)")),
    })
}
