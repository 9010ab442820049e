//! `goproxy completions <shell>` and `goproxy man`: shell completions and manual
//! pages generated from the same clap definition that parses the command line,
//! so they can never list a flag the binary does not take.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;

/// Writes the completion script for `shell` to `out`.
pub fn completions(shell: Shell, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "goproxy", out);
    out.flush().context("cannot write the completion script")
}

/// Writes goproxy(1) to `out`.
pub fn man(out: &mut dyn Write) -> anyhow::Result<()> {
    clap_mangen::Man::new(Cli::command())
        .render(out)
        .context("cannot write the manual page")?;
    out.flush().context("cannot write the manual page")
}

/// Writes goproxy(1) and a page per subcommand (goproxy-cache-gc(1), ...) into `dir`.
pub fn man_pages(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("cannot write manual pages into {}", dir.display()))
}
