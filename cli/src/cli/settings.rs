//! The one configuration file every command reads, and the rule that a
//! command runs as the user who owns the data directory.
//!
//! The file is `--config FILE` (before the command), else
//! `THROUGHLINE_CONFIG`, else `/etc/throughline/throughline.toml` when it
//! exists (the package installs it). `serve --config` and `doctor --config`
//! name it too, for those commands. From it every command takes `data_dir`
//! and `passphrase_file`; `serve` takes the rest. A flag or
//! `THROUGHLINE_DATA_DIR` wins over the file; without either the data
//! directory is `./throughline-data`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use server::serve_config::{self, ServeConfig};

/// Where the package installs the configuration.
pub const DEFAULT_PATH: &str = "/etc/throughline/throughline.toml";
/// The data directory when neither a flag nor the file names one.
pub const DEFAULT_DATA_DIR: &str = "./throughline-data";

/// The configuration file in effect: the one named, else the installed one if
/// present, else none (every setting at its default).
pub fn load(named: Option<&Path>) -> anyhow::Result<(Option<PathBuf>, ServeConfig)> {
    let path = match named {
        Some(p) => p.to_path_buf(),
        None if Path::new(DEFAULT_PATH).exists() => PathBuf::from(DEFAULT_PATH),
        None => return Ok((None, ServeConfig::default())),
    };
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let config = serve_config::parse(&text).map_err(|e| anyhow::anyhow!("{}:\n{e}", path.display()))?;
    Ok((Some(path), config))
}

/// Refuses to touch a data directory that belongs to another user: files a
/// command creates there (a tenant's store, its WAL, the keyring) would be
/// that user's, and the server, running as the owner, could no longer write
/// them. The refusal names the command to run instead.
pub fn check_owner(data_dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    // A directory that does not exist yet is `init`'s or `restore`'s to make;
    // otherwise the open reports it missing.
    let Ok(meta) = std::fs::metadata(data_dir) else { return Ok(()) };
    let owner = meta.uid();
    let me = nix::unistd::geteuid().as_raw();
    if owner == me {
        return Ok(());
    }
    let name =
        nix::unistd::User::from_uid(owner.into()).ok().flatten().map(|u| u.name).unwrap_or_else(|| format!("#{owner}"));
    anyhow::bail!(
        "{} belongs to user {name}, and this command runs as another user: files it wrote there would not be {name}'s, \
         and the server could no longer write them. Run it as {name}:\n  runuser -u {name} -- {}",
        data_dir.display(),
        this_command()
    )
}

/// This process's command line, quoted for a POSIX shell where needed.
fn this_command() -> String {
    let mut words = vec!["throughline".to_owned()];
    for arg in std::env::args().skip(1) {
        let plain = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c));
        words.push(if plain { arg } else { format!("'{}'", arg.replace('\'', r"'\''")) });
    }
    words.join(" ")
}
