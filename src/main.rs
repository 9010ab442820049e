use std::process::ExitCode;

fn main() -> ExitCode {
    match goproxy::cli::main() {
        Ok(code) => code,
        Err(err) => {
            // `{:#}` prints the whole cause chain on one line, without a backtrace.
            eprintln!("goproxy: {err:#}");
            ExitCode::from(2)
        }
    }
}
