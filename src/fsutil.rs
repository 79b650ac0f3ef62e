//! Atomic file writes: a temp file in the same directory, fsync, rename, fsync of the directory. A crash
//! at any point leaves either the old complete file or the new complete file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Writes `bytes` to `path` atomically. Refuses to replace an existing file unless `overwrite`.
pub fn atomic_write(path: &Path, bytes: &[u8], overwrite: bool) -> io::Result<()> {
    atomic_write_mode(path, bytes, overwrite, None)
}

/// [`atomic_write`] of a file created with these permissions (e.g. `0o600` for a file only its owner may
/// read: a pre-signed pause ladder).
pub fn atomic_write_mode(
    path: &Path,
    bytes: &[u8],
    overwrite: bool,
    mode: Option<u32>,
) -> io::Result<()> {
    if !overwrite && path.exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists; pass --force to replace it", path.display()),
        ));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per process and call: a temp file left by a killed writer (whose PID may be reused) never
    // blocks this write.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let seq = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(
        ".{name}.{}.{nanos:09}.{seq}.tmp",
        std::process::id()
    ));
    let result = (|| {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        if let Some(m) = mode {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(m);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        if overwrite {
            fs::rename(&tmp, path)?;
        } else {
            // A hard link never replaces an existing file, unlike rename: no window between check and write.
            fs::hard_link(&tmp, path).map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} exists; pass --force to replace it", path.display()),
                    )
                } else {
                    e
                }
            })?;
            fs::remove_file(&tmp)?;
        }
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
