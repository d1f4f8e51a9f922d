//! The TOML configuration: what operators write (`file`), its validation (`validate`, one
//! validator per section, every problem reported at once with its key path and location), and
//! the runtime [`Settings`] built from it (`settings`), the only type the rest of guichet reads.
//!
//! All serde lives here. Loading is three steps: parse (TOML errors carry line and column, with
//! values hidden: `report`), validate, then build [`Settings`]. Each enum has one spelling table
//! (`spelling`). Secrets are [`Secret`]s, whose `Debug` prints `REDACTED`.

use std::fmt;
use std::path::{Path, PathBuf};

mod file;
mod presets;
mod report;
mod settings;
mod spelling;
mod validate;

#[cfg(test)]
mod tests;

pub use file::*;
pub use presets::{
    acr_satisfies, AcrRequest, Button, DocumentedEndpoints, Preset, ProviderKind, UserinfoFormat,
};
pub use settings::*;
pub use spelling::Spelled;
pub use validate::{validate, TEMPLATE_NAMES};

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

/// One validation problem: the key path, what is wrong, and where (line, column) in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
    pub location: Option<(usize, usize)>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)?;
        if let Some((line, column)) = self.location {
            write!(f, " (line {line}, column {column})")?;
        }
        Ok(())
    }
}

/// Where the value of an environment variable or a file comes from, so tests never touch the
/// process environment.
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// Reads, parses and validates a file.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    from_toml(&text, path, &ProcessEnvironment)
}

/// Parses and validates TOML text; `path` only names the source in errors.
pub fn from_toml(text: &str, path: &Path, env: &dyn Environment) -> Result<Settings, ConfigError> {
    let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: report::redact_parse_error(e.to_string().trim_end()),
    })?;
    validate(&file, env).map_err(|mut problems| {
        for problem in &mut problems {
            problem.location = report::locate(text, &problem.key);
        }
        ConfigError::Invalid {
            path: path.to_owned(),
            problems,
        }
    })
}
