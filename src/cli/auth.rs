//! `goproxy auth hash [--token]`: turns a secret read from standard input into
//! the form the settings store, so no password or token ever sits in a config
//! file, a command line or a shell history.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::config::TokenHash;
use crate::config::auth::hash_password;

#[derive(Subcommand, Debug)]
pub enum AuthAction {
    /// Read a password (or, with --token, a token) from standard input, one
    /// line, and print the hash for auth_users (name:<hash>) or auth_tokens.
    Hash {
        /// The secret is a bearer token: print its SHA-256 digest
        /// (sha256:<hex>) for auth_tokens.
        #[arg(long)]
        token: bool,
    },
}

pub fn run(action: AuthAction) -> anyhow::Result<()> {
    match action {
        AuthAction::Hash { token } => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!(
                    "{} (one line; it is not echoed back):",
                    if token { "token" } else { "password" }
                );
            }
            let mut line = String::new();
            stdin
                .lock()
                .read_line(&mut line)
                .context("cannot read the secret from standard input")?;
            let secret = line.strip_suffix('\n').unwrap_or(&line);
            let secret = secret.strip_suffix('\r').unwrap_or(secret);
            if secret.is_empty() {
                bail!(
                    "no secret on standard input (e.g. `printf %s \"$PASSWORD\" | goproxy auth hash`)"
                );
            }
            if token {
                println!("{}", TokenHash::of(secret));
            } else {
                let hash = hash_password(secret)
                    .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
                println!("{hash}");
            }
            Ok(())
        }
    }
}
