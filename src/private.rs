//! Files only this user may read: the token cache and the queue. What another local user could
//! have planted (a symbolic link, a directory of theirs) or can read (a group- or world-readable
//! mode) is refused rather than used, and what this program creates is private from the start.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a path is not private to this user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) struct NotPrivate {
    /// The path.
    pub(crate) path: PathBuf,
    /// What is wrong with it.
    pub(crate) why: Why,
}

/// What is wrong with a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    /// A symbolic link: it could point anywhere.
    Symlink,
    /// Not a directory, or not a regular file, as expected.
    WrongKind,
    /// Another user owns it.
    Owner(u32),
    /// Others may read or write it (the mode, e.g. 0o755).
    Mode(u32),
}

impl fmt::Display for NotPrivate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match self.why {
            Why::Symlink => write!(f, "{path} is a symbolic link; use the real path"),
            Why::WrongKind => write!(f, "{path} is not what it should be (a directory or a regular file)"),
            Why::Owner(uid) => write!(f, "{path} belongs to another user (uid {uid}); it must be this user's"),
            Why::Mode(mode) => write!(
                f,
                "{path} can be read by other users (mode {mode:04o}); run chmod go-rwx on it"
            ),
        }
    }
}

/// Whether `path` is a directory (`dir`) or regular file of this user that nobody else may read
/// or write.
pub(crate) fn check(path: &Path, dir: bool) -> Result<(), NotPrivate> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let refuse = |why| NotPrivate {
            path: path.to_owned(),
            why,
        };
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return Ok(()); // absent: nothing to trust or distrust
        };
        if meta.file_type().is_symlink() {
            return Err(refuse(Why::Symlink));
        }
        if (dir && !meta.is_dir()) || (!dir && !meta.is_file()) {
            return Err(refuse(Why::WrongKind));
        }
        if meta.uid() != rustix::process::getuid().as_raw() {
            return Err(refuse(Why::Owner(meta.uid())));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(refuse(Why::Mode(meta.mode() & 0o7777)));
        }
    }
    Ok(())
}

/// Creates `dir` (and its parents) as 0700. An existing one must be this user's; if others may
/// read it, it is made private (it is ours, and what it holds must not be theirs).
pub(crate) fn create_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    match check(dir, true) {
        Ok(()) => Ok(()),
        #[cfg(unix)]
        Err(NotPrivate { why: Why::Mode(_), .. }) => {
            use std::os::unix::fs::PermissionsExt as _;
            tracing::warn!(path = %dir.display(), "the directory could be read by other users; it is now private (0700)");
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        }
        Err(e) => Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, e)),
    }
}

/// Writes `bytes` to a new file at `path`, 0600: never through an existing file or a symbolic
/// link planted there (`O_CREAT|O_EXCL` follows none).
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Replaces `path` with `bytes` at once: a new 0600 file beside it (made as [`write_new`] makes
/// one), then renamed over it, so a reader sees the old text or the new, never half of one.
pub(crate) fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.{}", uuid::Uuid::new_v4().simple()));
    write_new(&temporary, bytes)?;
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn what_others_could_plant_or_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("private");
        create_dir(&private).unwrap();
        check(&private, true).unwrap();
        let file = private.join("token.json");
        write_new(&file, b"{}").unwrap();
        check(&file, false).unwrap();
        assert!(write_new(&file, b"again").is_err(), "never through an existing file");

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(check(&file, false).unwrap_err().why, Why::Mode(0o644));
        let link = private.join("link.json");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(check(&link, false).unwrap_err().why, Why::Symlink);
        assert!(write_new(&link, b"x").is_err(), "a planted link is not followed");
        assert_eq!(check(&private, false).unwrap_err().why, Why::WrongKind);

        // A directory of ours that others could read is made private.
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_dir(&private).unwrap();
        assert_eq!(std::fs::metadata(&private).unwrap().permissions().mode() & 0o777, 0o700);
        // Another user's directory is refused, and not made ours.
        if rustix::process::getuid().as_raw() == 0 {
            let theirs = dir.path().join("theirs");
            std::fs::create_dir(&theirs).unwrap();
            std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
            assert_eq!(check(&theirs, true).unwrap_err().why, Why::Owner(65534));
            assert!(create_dir(&theirs).is_err());
        } else {
            assert_eq!(check(Path::new("/"), true).unwrap_err().why, Why::Owner(0));
        }
    }
}
