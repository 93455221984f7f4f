//! `portcullis reload`: check the file here, then SIGHUP the gateway that
//! runs on its data_dir. The gateway checks it again and logs the outcome;
//! a file it refuses changes nothing there.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};

use crate::config::{self, ProcessEnvironment};
use crate::reload::pid_file;

pub fn reload(config_path: &Path, no_check: bool) -> Result<ExitCode> {
    let data_dir = if no_check {
        config::data_dir_of(config_path).ok_or_else(|| {
            anyhow!(
                "cannot read data_dir from `{}`: it is not a YAML configuration",
                config_path.display()
            )
        })?
    } else {
        match config::load(config_path, &ProcessEnvironment) {
            Ok(config) => config.data_dir,
            Err(errors) => {
                eprint!("{}: {errors}", config_path.display());
                eprintln!("not reloading: the gateway would refuse this file too; fix it, or pass --no-check if the gateway's environment differs from this shell's");
                return Ok(ExitCode::FAILURE);
            }
        }
    };
    let pid_path = pid_file::path(&data_dir);
    let pid = pid_file::read(&pid_path).map_err(anyhow::Error::msg)?;
    let Ok(target) = libc::pid_t::try_from(pid) else {
        bail!(
            "`{}` names process {pid}, which cannot be a process id",
            pid_path.display()
        );
    };
    // SAFETY: kill(2) with a positive pid signals that one process only.
    if unsafe { libc::kill(target, libc::SIGHUP) } != 0 {
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::ESRCH) {
            bail!(
                "`{}` names process {pid}, which is not running: the gateway is stopped (or crashed); start it with `portcullis serve`",
                pid_path.display()
            );
        }
        bail!("cannot signal the gateway (process {pid}): {error}");
    }
    println!(
        "asked the gateway (process {pid}) to reload `{}`; its log says what it applied",
        config_path.display()
    );
    Ok(ExitCode::SUCCESS)
}
