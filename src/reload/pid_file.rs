//! `data_dir/portcullis.pid`: how `portcullis reload` finds the gateway.
//!
//! Written once the gateway listens for SIGHUP (so a signal sent through it
//! is never the default, fatal one), replaced by the new process of a
//! graceful upgrade, and removed on exit only by the process it names.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const PID_FILE: &str = "portcullis.pid";

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(PID_FILE)
}

/// Writes this process's id, whole or not at all: a reader never sees a
/// half-written number.
pub fn write(path: &Path) -> std::io::Result<()> {
    let partial = path.with_extension("pid.partial");
    let mut file = fs::File::create(&partial)?;
    writeln!(file, "{}", std::process::id())?;
    file.sync_all()?;
    fs::rename(&partial, path)
}

/// Removes the file if it still names this process: after an upgrade it
/// names the new one, which must stay reachable.
pub fn remove_if_ours(path: &Path) {
    if read(path).ok() == Some(std::process::id()) {
        let _ = fs::remove_file(path);
    }
}

/// The process id in the file.
pub fn read(path: &Path) -> Result<u32, String> {
    let text = fs::read_to_string(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => format!(
            "no gateway is running on this data_dir (no `{}`)",
            path.display()
        ),
        _ => format!("cannot read `{}`: {error}", path.display()),
    })?;
    parse(&text).ok_or_else(|| format!("`{}` does not hold a process id", path.display()))
}

fn parse(text: &str) -> Option<u32> {
    text.trim().parse().ok().filter(|&pid| pid > 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents() {
        for (text, pid) in [
            ("1234\n", Some(1234)),
            (" 99 ", Some(99)),
            ("", None),
            ("1", None),
            ("0", None),
            ("-5", None),
            ("12ab", None),
            ("4294967296", None),
        ] {
            assert_eq!(parse(text), pid, "{text:?}");
        }
    }

    #[test]
    fn written_read_and_removed_only_by_its_process() {
        let folder = tempfile::tempdir().unwrap();
        let file = path(folder.path());
        assert!(read(&file).unwrap_err().contains("no gateway is running"));
        write(&file).unwrap();
        assert_eq!(read(&file), Ok(std::process::id()));
        fs::write(&file, "2\n").unwrap();
        remove_if_ours(&file);
        assert!(file.exists(), "another process's file is left alone");
        write(&file).unwrap();
        remove_if_ours(&file);
        assert!(!file.exists());
    }
}
