//! Writing an account into the config file, for the commands that make or change one
//! (`setup --apply`, `credential rotate`). The file's other text (comments, order, other
//! accounts) is kept: toml_edit edits the document as written. The new text goes to a new 0600
//! file that replaces the old one at once, so a relay reading it on SIGHUP sees the old account
//! or the new, and the file holds credentials' names only readable by their owner.

use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table, value};

use super::field::Field;

/// Why the config file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    /// It could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// It is not TOML, or `accounts.NAME` is not a table.
    #[error("{}: {detail}: fix the file, or name another with --config", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, without the file's values.
        detail: String,
    },
}

/// The config file's text (empty when the file does not exist yet).
fn read(path: &Path) -> Result<String, WriteError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(WriteError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// `text` as an editable document; the error says where, never what (a line could hold a
/// secret).
fn document(text: &str) -> Result<DocumentMut, String> {
    text.parse().map_err(|e: toml_edit::TomlError| match e.span() {
        Some(span) => format!("not valid TOML at byte {}", span.start),
        None => "not valid TOML".to_owned(),
    })
}

fn account<'a>(doc: &'a DocumentMut, name: &str) -> Option<&'a Table> {
    doc.get("accounts")?.as_table()?.get(name)?.as_table()
}

/// The value of `field` in the account `name` of config text (strings only).
pub(crate) fn stored_in(text: &str, name: &str, field: Field) -> Result<Option<String>, String> {
    let doc = document(text)?;
    Ok(account(&doc, name)
        .and_then(|t| t.get(field.name()))
        .and_then(Item::as_str)
        .map(str::to_owned))
}

/// Config text with `values` set in the account `name` (made if absent), the rest as written.
pub(crate) fn edit(text: &str, name: &str, values: &[(Field, &str)]) -> Result<String, String> {
    let mut doc = document(text)?;
    let accounts = doc
        .entry("accounts")
        .or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        })
        .as_table_mut()
        .ok_or("`accounts` is not a table")?;
    let table = accounts
        .entry(name)
        .or_insert_with(|| Item::Table(Table::new()))
        .as_table_mut()
        .ok_or_else(|| format!("`accounts.{name}` is not a table"))?;
    for (field, text) in values {
        table.insert(field.name(), value(*text));
    }
    Ok(doc.to_string())
}

/// The value of `field` in the file's account `name`, as written (strings only).
pub(crate) fn stored(path: &Path, name: &str, field: Field) -> Result<Option<String>, WriteError> {
    stored_in(&read(path)?, name, field).map_err(|detail| invalid(path, detail))
}

/// Sets `values` in the account `name` (made if absent) and writes the file.
pub(crate) fn set_account(path: &Path, name: &str, values: &[(Field, &str)]) -> Result<(), WriteError> {
    let text = edit(&read(path)?, name, values).map_err(|detail| invalid(path, detail))?;
    replace(path, text.as_bytes())
}

/// Writes a credential's value (a client secret) to `path`, 0600, replacing what it held.
pub(crate) fn write_secret(path: &Path, secret: &crate::secret::Secret) -> Result<(), WriteError> {
    replace(path, secret.expose().as_bytes())
}

fn invalid(path: &Path, detail: String) -> WriteError {
    WriteError::Invalid {
        path: path.to_owned(),
        detail,
    }
}

/// `bytes` as the new content of `path`, in a private directory.
fn replace(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let io = |at: &Path| {
        let at = at.to_owned();
        move |source| WriteError::Io { path: at, source }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::private::create_dir(dir).map_err(io(dir))?;
    }
    crate::private::replace(path, bytes).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn an_account_is_added_and_changed_with_the_rest_of_the_file_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc").join("config.toml");
        set_account(&path, "main", &[(Field::Tenant, "contoso.com"), (Field::ClientId, "a")]).unwrap();
        assert_eq!(stored(&path, "main", Field::ClientId).unwrap().as_deref(), Some("a"));
        let with_comment = format!(
            "# ours\n{}\n[accounts.other]\nmailbox = \"x@contoso.com\" # kept\n",
            std::fs::read_to_string(&path).unwrap()
        );
        std::fs::write(&path, with_comment).unwrap();
        set_account(&path, "main", &[(Field::ClientId, "b"), (Field::ClientSecretId, "k")]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# ours\n") && text.contains("mailbox = \"x@contoso.com\" # kept"),
            "{text}"
        );
        assert!(
            text.contains("client_id = \"b\"") && text.contains("tenant = \"contoso.com\""),
            "{text}"
        );
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1,
            "no temporary file left"
        );

        std::fs::write(&path, "accounts = 3\nclient_secret = \"Xq58Q~hidden\"\n").unwrap();
        let error = set_account(&path, "main", &[]).unwrap_err().to_string();
        assert!(error.contains("`accounts` is not a table"), "{error}");
        std::fs::write(&path, "client_secret = \"Xq58Q~hidden\n").unwrap();
        let error = stored(&path, "main", Field::ClientId).unwrap_err().to_string();
        assert!(error.contains("not valid TOML") && !error.contains("Xq58Q"), "{error}");
    }
}
