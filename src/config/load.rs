//! Layering: defaults < config file < environment < flags.

use super::{CliArgs, Settings};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Invalid(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    File,
    Env,
    Flag,
}

#[derive(Clone, Debug)]
pub struct Loaded {
    pub settings: Settings,
}

pub fn load(args: &CliArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<Loaded, ConfigError> {
    let _ = (args, env);
    Ok(Loaded {
        settings: Settings::default(),
    })
}
