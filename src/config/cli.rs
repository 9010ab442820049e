//! Command-line flags. Every setting is an `Option` so "not given" can be told
//! apart from "given with the default value".

use std::ffi::OsString;

#[derive(Clone, Debug, Default, clap::Args)]
pub struct CliArgs {}

/// Rewrites Go-style single-dash long flags (`-port 3000`, `-cache=x`) to `--port`.
pub fn normalize_go_style_args(args: Vec<OsString>) -> Vec<OsString> {
    args
}
