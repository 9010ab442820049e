//! `goproxy healthcheck [URL]`: a GET of `/health` on the instance the settings
//! describe (or on `URL`), for container and service managers. It exits 0 when
//! the proxy answers 2xx and 1 otherwise: Docker reads 1 as "unhealthy" and
//! reserves 2, the exit code of every other failed command.
//!
//! The binary checks itself so that a runtime image needs no shell, wget or
//! curl, and so that the check follows the same settings (`--port`, `PORT`,
//! `--listen`, the config file) as the server it probes.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use url::Url;

use crate::config::{self, CliArgs, Settings, parse_go_duration, redact_url};

/// Exit code for "the proxy is not healthy" (Docker's HEALTHCHECK contract).
const UNHEALTHY: u8 = 1;

#[derive(Args, Debug)]
pub struct HealthcheckArgs {
    /// URL to check instead of the configured address; a URL without a path
    /// gets /health (e.g. http://127.0.0.1:12345).
    #[arg(value_name = "URL")]
    pub url: Option<String>,
    /// Give up after this long (Go syntax: 500ms, 5s).
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub timeout: String,
    #[command(flatten)]
    pub args: CliArgs,
}

pub fn run(hc: &HealthcheckArgs, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<ExitCode> {
    let timeout = match parse_go_duration(&hc.timeout) {
        Some(t) if !t.is_zero() => t,
        _ => bail!(
            "--timeout: invalid duration {:?} (expected a positive duration such as 500ms or 5s)",
            hc.timeout
        ),
    };
    let target = match &hc.url {
        Some(url) => url_from_argument(url)?,
        None => {
            let loaded = config::load(&hc.args, env)?;
            url_from_settings(&loaded.settings)?
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let shown = redact_url(&target);
    match runtime.block_on(probe(target, timeout)) {
        Ok(status) => {
            println!("healthy: {shown} answered {status}");
            Ok(ExitCode::SUCCESS)
        }
        Err(problem) => {
            eprintln!("goproxy healthcheck: unhealthy: {shown}: {problem}");
            Ok(ExitCode::from(UNHEALTHY))
        }
    }
}

/// The URL to check from an argument: http or https only; no path means `/health`.
pub fn url_from_argument(text: &str) -> anyhow::Result<Url> {
    let mut url = Url::parse(text).map_err(|e| {
        anyhow::anyhow!(
            "healthcheck URL {:?} is not a URL ({e}); expected e.g. http://127.0.0.1:12345/health",
            config::redact_secrets(text)
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!(
            "healthcheck URL {}: only http and https are supported",
            redact_url(&url)
        );
    }
    if url.path() == "/" || url.path().is_empty() {
        url.set_path("/health");
    }
    Ok(url)
}

/// `/health` on the configured listen address; an "all interfaces" address is
/// checked on loopback, where the proxy also listens.
pub fn url_from_settings(settings: &Settings) -> anyhow::Result<Url> {
    let listen = settings.listen.as_str();
    let (host, port) = match listen.strip_prefix('[') {
        Some(rest) => rest
            .split_once("]:")
            .with_context(|| format!("listen address {listen:?} has no port"))?,
        None => listen
            .rsplit_once(':')
            .with_context(|| format!("listen address {listen:?} has no port"))?,
    };
    let port: u16 = port
        .parse()
        .with_context(|| format!("listen address {listen:?} has no valid port"))?;
    if port == 0 {
        bail!(
            "the configured port is 0 (a free port chosen at startup), so there is no address to check: \
             pass the URL the proxy printed (goproxy healthcheck http://HOST:PORT)"
        );
    }
    let host = match host {
        "" | "0.0.0.0" => "127.0.0.1".to_owned(),
        "::" => "[::1]".to_owned(),
        h if h.contains(':') => format!("[{h}]"),
        h => h.to_owned(),
    };
    Url::parse(&format!("http://{host}:{port}/health"))
        .with_context(|| format!("listen address {listen:?} does not make a URL"))
}

/// One GET; Ok with the status line when it is a success.
async fn probe(url: Url, timeout: Duration) -> Result<String, String> {
    // The proxy variables of the environment are for upstream traffic; the
    // check must reach this machine's proxy directly.
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| describe(&e, timeout))?;
    let status = response.status();
    let text = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .trim_end()
    .to_owned();
    if status.is_success() {
        Ok(text)
    } else {
        Err(format!("answered {text}"))
    }
}

fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!(
            "no answer within {} (is the proxy overloaded or stuck?)",
            config::format_duration(timeout)
        );
    }
    // The innermost cause says what happened ("Connection refused"); the outer
    // layers only repeat the URL.
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    if error.is_connect() {
        format!(
            "cannot connect: {cause} (is goproxy running there? The address comes from \
             --port/PORT, --listen/LISTEN or the config file, or pass the URL)"
        )
    } else {
        format!("request failed: {cause}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_listen(listen: &str) -> Settings {
        Settings {
            listen: listen.to_owned(),
            ..Settings::default()
        }
    }

    #[test]
    fn settings_give_a_loopback_url_for_all_interfaces() {
        let url = |listen| url_from_settings(&with_listen(listen)).map(|u| u.to_string());
        assert_eq!(
            url("0.0.0.0:12345").unwrap(),
            "http://127.0.0.1:12345/health"
        );
        assert_eq!(url("[::]:8080").unwrap(), "http://[::1]:8080/health");
        assert_eq!(url("127.0.0.2:9").unwrap(), "http://127.0.0.2:9/health");
        assert_eq!(url("[::1]:9").unwrap(), "http://[::1]:9/health");
        assert_eq!(
            url("proxy.internal:80").unwrap(),
            "http://proxy.internal/health"
        );
        let zero = url("0.0.0.0:0").unwrap_err().to_string();
        assert!(zero.contains("port is 0"), "{zero}");
    }

    #[test]
    fn arguments_get_health_when_they_have_no_path() {
        let url = |text| url_from_argument(text).map(|u| u.to_string());
        assert_eq!(
            url("http://127.0.0.1:1").unwrap(),
            "http://127.0.0.1:1/health"
        );
        assert_eq!(url("http://h:1/readyz").unwrap(), "http://h:1/readyz");
        let scheme = url("ftp://h/").unwrap_err().to_string();
        assert!(scheme.contains("only http and https"), "{scheme}");
        let bad = url("http://user:secret@[::1").unwrap_err().to_string();
        assert!(!bad.contains("secret"), "{bad}");
    }
}
