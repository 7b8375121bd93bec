//! The properties of what `setup --apply` reads and rewrites: Microsoft Graph's directory
//! answers (`directory/objects.rs`) and the config file it writes the account into
//! (`config/write.rs`).

use crate::config::Field;
use crate::config::write::{edit, stored_in};

/// Whether `id` is a GUID in its canonical form (lower case, hyphenated).
fn canonical(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok_and(|u| u.to_string() == id)
}

/// Directory answers of arbitrary bytes: never a panic; every id read is a canonical GUID (ids
/// go into the paths of later calls); a new secret's value never shows in a debug print.
pub fn directory_answers(data: &[u8]) {
    use crate::directory::{Application, NewPassword, ServicePrincipal};
    if let Ok(app) = serde_json::from_slice::<Application>(data) {
        assert!(canonical(&app.id) && canonical(&app.app_id), "{app:?}");
        assert!(app.password_credentials.iter().all(|p| canonical(&p.key_id)));
        assert!(app.asks_for(&[]));
    }
    if let Ok(sp) = serde_json::from_slice::<ServicePrincipal>(data) {
        assert!(canonical(&sp.id) && canonical(&sp.app_id), "{sp:?}");
        assert!(sp.app_roles.iter().all(|r| canonical(&r.id)));
    }
    if let Ok(new) = serde_json::from_slice::<NewPassword>(data) {
        assert!(canonical(&new.key_id));
        let value = new.secret_text.expose();
        assert!(value.len() < 12 || !format!("{new:?}").contains(value), "printed");
    }
    let status = data.first().map_or(400, |b| 400 + u16::from(*b));
    let _ = crate::graph::GraphError::parse(status, data, None).to_string();
}

/// An account's values set in config text of arbitrary bytes (the text, the account's name
/// and a value, split at 0xFF): never a panic; an edit that succeeds is TOML the config reader
/// takes, reads back each value exactly as given, and keeps every top-level key and account
/// the text had.
pub fn config_rewrite(data: &[u8]) {
    let mut parts = data
        .split(|b| *b == 0xFF)
        .map(|p| String::from_utf8_lossy(p).into_owned());
    let text = parts.next().unwrap_or_default();
    let name = parts
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "main".to_owned());
    let value = parts.next().unwrap_or_default();
    let Ok(new) = edit(&text, &name, &[(Field::ClientId, &value), (Field::ClientSecretId, "k")]) else {
        return;
    };
    assert!(toml::from_str::<toml::Table>(&new).is_ok(), "not TOML:\n{new}");
    assert_eq!(stored_in(&new, &name, Field::ClientId), Ok(Some(value)));
    assert_eq!(stored_in(&new, &name, Field::ClientSecretId), Ok(Some("k".to_owned())));
    let before: toml::Table = toml::from_str(&text).unwrap_or_default();
    let after: toml::Table = toml::from_str(&new).unwrap_or_default();
    for key in before.keys() {
        assert!(after.contains_key(key), "{key} lost");
    }
    let accounts = |t: &toml::Table| -> Vec<String> {
        t.get("accounts")
            .and_then(toml::Value::as_table)
            .map(|a| a.keys().cloned().collect())
            .unwrap_or_default()
    };
    let kept = accounts(&after);
    assert!(accounts(&before).iter().all(|a| kept.contains(a)), "an account lost");
}
