//! One attempt at downloading a zip from one upstream URL into a [`Target`]:
//! over several connections with `Range` requests when the upstream supports
//! them, over one otherwise, continuing from whatever the target already holds.
//!
//! Every ranged request carries `If-Range` with the body's validator and must be
//! answered with `206` and exactly the `Content-Range` asked for. A `200` to the
//! first request means "no range support" and the body is taken whole; a `200`
//! or a different validator later means the body changed, and the download
//! restarts from nothing: bytes of two bodies are never spliced.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, HeaderMap, HeaderValue, IF_RANGE, RANGE};

use super::ranges::{parse_content_range, piece_size, pieces};
use super::state::{PartialState, Validator};
use super::target::Target;
use crate::config::{Settings, redact_url};
use crate::metrics::Metrics;
use crate::progress::{Reporter, Transfer};
use crate::upstream::{AttemptError, Endpoint, classify_status, describe_error};

/// Bytes gathered from the network before one positioned write.
const WRITE_CHUNK: usize = 256 * 1024;
/// How often progress is made durable while a download runs.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// A body that changes this often during one attempt is not worth chasing.
const MAX_RESTARTS: u32 = 3;
/// A range end meaning "to the end of the body".
const OPEN_END: u64 = u64::MAX;
/// The longest wait before retrying a failed piece.
const MAX_PIECE_BACKOFF: Duration = Duration::from_secs(5);

/// Why a step did not finish the download.
enum Step {
    /// The upstream's body changed under us: start over from nothing.
    Restart(String),
    /// Ranged requests are not usable with this upstream: one plain GET.
    Single(String),
    Fail(AttemptError),
}

impl From<AttemptError> for Step {
    fn from(e: AttemptError) -> Self {
        Step::Fail(e)
    }
}

pub struct Job<'a> {
    /// The upstream URL, with the client and credential to use for it.
    pub endpoint: Endpoint,
    pub target: &'a Target,
    pub settings: &'a Settings,
    pub transfer: &'a Transfer,
    /// Largest body accepted.
    pub limit: u64,
    /// Where the downloaded bytes are counted.
    pub metrics: &'a Metrics,
}

impl Job<'_> {
    /// Downloads until the target holds the whole body; returns the upstream's ETag.
    pub async fn run(&self) -> Result<Option<String>, AttemptError> {
        let mut restarts = 0;
        loop {
            let step = match self.ranged().await {
                Ok(etag) => return Ok(etag),
                Err(step) => step,
            };
            match step {
                Step::Fail(e) => return Err(e),
                Step::Single(reason) => {
                    tracing::info!(url = %redact_url(&self.endpoint.url), reason, "downloading over one connection");
                    self.reset().await?;
                    return self.single().await;
                }
                Step::Restart(reason) => {
                    restarts += 1;
                    self.reset().await?;
                    if restarts > MAX_RESTARTS {
                        return Err(transient(format!(
                            "the upstream's file changed {restarts} times during the download ({reason})"
                        )));
                    }
                    tracing::warn!(url = %redact_url(&self.endpoint.url), reason, "upstream file changed; restarting the download");
                }
            }
        }
    }

    async fn reset(&self) -> Result<(), AttemptError> {
        self.transfer.reset();
        self.target.reset().await.map_err(local)
    }

    /// The ranged path: first request, then the missing pieces in parallel.
    async fn ranged(&self) -> Result<Option<String>, Step> {
        let source = redact_url(&self.endpoint.url);
        let connections = self.settings.download_connections.max(1);
        let resume = self.target.state().clone().filter(|s| s.source == source);
        if resume.is_none() && self.target.state().is_some() {
            // Progress from another upstream: its bytes may be another body.
            self.reset().await?;
        }
        let first = match &resume {
            Some(state) => {
                let gaps = state.done.missing(state.size);
                let Some(&(start, end)) = gaps.first() else {
                    self.transfer.set_total(state.size);
                    self.transfer.set_resumed(state.size);
                    return self.finish(state.size).await;
                };
                let left: u64 = gaps.iter().map(|(s, e)| e - s).sum();
                (start, end.min(start + piece_size(left, connections)))
            }
            // One connection: the whole body in one (ranged, so resumable) request.
            None if connections == 1 => (0, OPEN_END),
            None => (0, self.settings.download_parallel_threshold.max(1)),
        };
        let validator = resume.as_ref().map(|s| s.validator.clone());
        let response = self.get(Some(first), validator.as_ref()).await?;
        match response.status() {
            StatusCode::PARTIAL_CONTENT => {}
            // No range support, or (with If-Range) a different body: take it whole.
            StatusCode::OK => {
                self.reset().await?;
                return self.consume_whole(response).await.map_err(Step::Fail);
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                return Err(Step::Single("the upstream refused the byte range".into()));
            }
            _ => return Err(classify_status(&response).into()),
        }
        let (start, end, total) = content_range(&response)
            .ok_or_else(|| Step::Single("the upstream sent no usable Content-Range".into()))?;
        if (start, end) != (first.0, first.1.min(total)) {
            return Err(Step::Single(format!(
                "the upstream sent bytes {start}-{end} for a request of {}-{}",
                first.0,
                first.1.min(total)
            )));
        }
        self.check_size(total)?;
        let validator = match resume {
            Some(state) => {
                if state.size != total || state.validator.contradicted_by(response.headers()) {
                    return Err(Step::Restart("size or validator differs".into()));
                }
                self.transfer.set_resumed(state.done.covered());
                Some(state.validator)
            }
            None => match Validator::of(response.headers()) {
                // A small body that came whole in this one response has
                // nothing worth resuming: no state file, and none of the
                // fsyncs that keep one.
                Some(v)
                    if (start, end) == (0, total)
                        && total <= self.settings.download_parallel_threshold =>
                {
                    if !self.target.begin_in_memory(total) {
                        self.target.begin(None, Some(total)).await.map_err(local)?;
                    }
                    Some(v)
                }
                Some(v) => {
                    let state = PartialState::new(source, total, v.clone());
                    self.target
                        .begin(Some(state), Some(total))
                        .await
                        .map_err(local)?;
                    Some(v)
                }
                // Without a validator, pieces of two bodies could not be told
                // apart: only a single response that is the whole body is safe.
                None if (start, end) == (0, total) => {
                    if !self.target.begin_in_memory(total) {
                        self.target.begin(None, Some(total)).await.map_err(local)?;
                    }
                    None
                }
                None => {
                    return Err(Step::Single(
                        "the upstream sends neither ETag nor Last-Modified".into(),
                    ));
                }
            },
        };
        self.transfer.set_total(total);
        let etag = validator.as_ref().and_then(etag_of);
        let mut planned = self
            .target
            .state()
            .as_ref()
            .map(|s| s.done.clone())
            .unwrap_or_default();
        planned.insert(start, end);
        let gaps = planned.missing(total);
        let left: u64 = gaps.iter().map(|(s, e)| e - s).sum();
        let queue = Mutex::new(pieces(&gaps, piece_size(left, connections)));
        let workers = (connections as usize).min(1 + queue.lock().map(|q| q.len()).unwrap_or(0));
        self.transfer.set_connections(workers as u64);
        let plan = Plan {
            queue,
            total,
            validator: validator.as_ref(),
            failures: Mutex::new(HashMap::new()),
        };
        let mut all = vec![self.work(&plan, Some((response, start, end)))];
        for _ in 1..workers {
            all.push(self.work(&plan, None));
        }
        let result = self
            .checkpointing(futures_util::future::try_join_all(all))
            .await;
        result?;
        self.finish(total).await.map(|_| etag)
    }

    /// Runs `work` while making progress durable every second, and once more
    /// at the end whatever happened (so a failure keeps what was fetched).
    async fn checkpointing<T>(
        &self,
        work: impl Future<Output = Result<T, Step>>,
    ) -> Result<T, Step> {
        // Polled side by side with the work, so a slow sync never pauses the
        // connections.
        let ticker = async {
            let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = self.target.checkpoint().await {
                    return e;
                }
            }
        };
        let result = tokio::select! {
            result = work => result,
            e = ticker => Err(Step::Fail(local(e))),
        };
        self.target.checkpoint().await.map_err(local)?;
        result
    }

    /// The target is complete when every byte of `total` is recorded.
    async fn finish(&self, total: u64) -> Result<Option<String>, Step> {
        let state = self.target.state().clone();
        match state {
            Some(state) if state.done.is_complete(total) => Ok(etag_of(&state.validator)),
            Some(state) => Err(Step::Fail(transient(format!(
                "download incomplete: {} of {total} bytes",
                state.done.covered()
            )))),
            None => Ok(None),
        }
    }

    /// One connection's loop: the first response's piece if given, then the
    /// next missing piece until none is left. A piece that fails in a way worth
    /// retrying goes back to the front of the queue (only its missing bytes),
    /// while the other connections carry on.
    async fn work(
        &self,
        plan: &Plan<'_>,
        first: Option<(reqwest::Response, u64, u64)>,
    ) -> Result<(), Step> {
        let mut first = first;
        loop {
            let (start, end, result) = match first.take() {
                Some((response, start, end)) => {
                    let result = self.write_body(response, start, end).await;
                    (start, end, result.and_then(|got| complete(start, got, end)))
                }
                None => {
                    let next = plan.queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some((start, end)) = next else {
                        return Ok(());
                    };
                    (start, end, self.piece(plan, start, end).await)
                }
            };
            match result {
                Ok(()) => {
                    tracing::trace!(start, end, "piece done");
                }
                Err(Step::Fail(e)) if e.is_transient() => {
                    let Some(wait) = plan.retry_delay(end, self.settings) else {
                        return Err(Step::Fail(e));
                    };
                    tracing::debug!(url = %redact_url(&self.endpoint.url), start, end, error = %e, "piece failed; retrying its missing bytes");
                    let missing = self.target.missing_between(start, end);
                    if let Ok(mut queue) = plan.queue.lock() {
                        for range in missing.into_iter().rev() {
                            queue.push_front(range);
                        }
                    }
                    tokio::time::sleep(wait).await;
                }
                Err(step) => return Err(step),
            }
        }
    }

    /// Fetches one piece `[start, end)` with a ranged, `If-Range` request.
    async fn piece(&self, plan: &Plan<'_>, start: u64, end: u64) -> Result<(), Step> {
        let Some(validator) = plan.validator else {
            return Err(Step::Single(
                "no validator to keep pieces consistent".into(),
            ));
        };
        let response = self.get(Some((start, end)), Some(validator)).await?;
        match response.status() {
            StatusCode::PARTIAL_CONTENT => {}
            StatusCode::OK | StatusCode::RANGE_NOT_SATISFIABLE => {
                return Err(Step::Restart(format!(
                    "a ranged request was answered with {}",
                    response.status()
                )));
            }
            _ => return Err(classify_status(&response).into()),
        }
        if validator.contradicted_by(response.headers()) {
            return Err(Step::Restart("a piece came with another validator".into()));
        }
        match content_range(&response) {
            Some((s, e, t)) if (s, e) == (start, end) && t == plan.total => {}
            Some((_, _, t)) if t != plan.total => {
                return Err(Step::Restart(format!("the size changed to {t}")));
            }
            _ => {
                return Err(Step::Single(format!(
                    "wrong Content-Range for bytes {start}-{end}"
                )));
            }
        }
        let got = self.write_body(response, start, end).await?;
        complete(start, got, end)
    }

    /// Streams a response's body into the target from `start`, never past `end`;
    /// returns where the body ended. What arrived before a connection broke is
    /// kept (and recorded).
    async fn write_body(
        &self,
        response: reqwest::Response,
        start: u64,
        end: u64,
    ) -> Result<u64, Step> {
        let report = self.transfer.reporter();
        let mut pos = start;
        let mut buf = Vec::with_capacity(WRITE_CHUNK);
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    self.write(&mut buf, &mut pos, &report).await?;
                    return Err(transient(describe_error(&e)).into());
                }
            };
            if pos + (buf.len() + chunk.len()) as u64 > end {
                return Err(Step::Single(format!(
                    "the upstream sent more than {} bytes",
                    end - start
                )));
            }
            buf.extend_from_slice(&chunk);
            if buf.len() >= WRITE_CHUNK {
                self.write(&mut buf, &mut pos, &report).await?;
            }
        }
        self.write(&mut buf, &mut pos, &report).await?;
        Ok(pos)
    }

    async fn write(&self, buf: &mut Vec<u8>, pos: &mut u64, report: &Reporter) -> Result<(), Step> {
        if buf.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(buf, Vec::with_capacity(WRITE_CHUNK));
        let n = data.len() as u64;
        let at = *pos;
        // Read now: only the blocking write itself can outlive this attempt.
        let generation = self.target.generation();
        let written = self
            .target
            .write_at(generation, data, at)
            .await
            .map_err(local)?;
        if !written {
            return Err(Step::Restart("the download started over meanwhile".into()));
        }
        // Recorded only once written: a checkpoint never covers bytes in flight.
        self.target.mark(at, at + n);
        report.add(n);
        self.metrics.upstream_bytes("zip", n);
        *pos += n;
        Ok(())
    }

    /// One plain GET, the whole body over one connection.
    async fn single(&self) -> Result<Option<String>, AttemptError> {
        let response = self.get(None, None).await.map_err(|step| match step {
            Step::Fail(e) => e,
            Step::Restart(r) | Step::Single(r) => transient(r),
        })?;
        if response.status() != StatusCode::OK {
            return Err(classify_status(&response));
        }
        self.consume_whole(response).await
    }

    /// Takes a `200` body from the start. With a known size and a validator,
    /// its progress is recorded so that a later attempt can resume it.
    async fn consume_whole(
        &self,
        response: reqwest::Response,
    ) -> Result<Option<String>, AttemptError> {
        let too_big = || {
            AttemptError::Fatal(format!(
                "invalid response: zip larger than the {}-byte limit",
                self.limit
            ))
        };
        let size = response.content_length();
        if size.is_some_and(|n| n > self.limit) {
            return Err(too_big());
        }
        let validator = Validator::of(response.headers());
        let state = match (size, &validator) {
            (Some(size), Some(v)) if size > 0 => Some(PartialState::new(
                redact_url(&self.endpoint.url),
                size,
                v.clone(),
            )),
            _ => None,
        };
        self.target.begin(state, size).await.map_err(local)?;
        self.transfer.set_total(size.unwrap_or(0));
        self.transfer.set_connections(1);
        let end = size.unwrap_or(self.limit);
        let got = self
            .checkpointing(self.write_body(response, 0, end))
            .await
            .map_err(|step| match step {
                Step::Fail(e) => e,
                // More bytes than announced, or than any zip may have.
                Step::Restart(_) | Step::Single(_) => too_big(),
            })?;
        match size {
            Some(size) => complete(0, got, size).map_err(|step| match step {
                Step::Fail(e) => e,
                Step::Restart(r) | Step::Single(r) => transient(r),
            })?,
            None => {
                // Unknown length: the body ends where it ends.
                let file = self.target.file().map_err(local)?;
                tokio::task::spawn_blocking(move || file.set_len(got))
                    .await
                    .map_err(|e| local(std::io::Error::other(e)))?
                    .map_err(local)?;
            }
        }
        Ok(validator.as_ref().and_then(etag_of))
    }

    fn check_size(&self, size: u64) -> Result<(), Step> {
        if size > self.limit {
            return Err(Step::Fail(AttemptError::Fatal(format!(
                "invalid response: zip larger than the {}-byte limit",
                self.limit
            ))));
        }
        Ok(())
    }

    /// Sends a GET (ranged when `range` is set) within the header timeout.
    async fn get(
        &self,
        range: Option<(u64, u64)>,
        validator: Option<&Validator>,
    ) -> Result<reqwest::Response, Step> {
        let mut headers = HeaderMap::new();
        if let Some((start, end)) = range {
            let spec = match end {
                OPEN_END => format!("bytes={start}-"),
                end => format!("bytes={start}-{}", end - 1),
            };
            headers.insert(RANGE, header_value(&spec)?);
            if let Some(v) = validator {
                headers.insert(IF_RANGE, header_value(v.as_header())?);
            }
        }
        Ok(self.endpoint.get(self.settings, headers).await?)
    }
}

fn header_value(text: &str) -> Result<HeaderValue, Step> {
    HeaderValue::from_str(text)
        .map_err(|_| Step::Single(format!("cannot send {text:?} as a header")))
}

struct Plan<'v> {
    queue: Mutex<VecDeque<(u64, u64)>>,
    total: u64,
    /// `None` only when the first response already was the whole body.
    validator: Option<&'v Validator>,
    /// Failures so far per piece (keyed by the piece's end, which its
    /// requeued remainder keeps).
    failures: Mutex<HashMap<u64, u32>>,
}

impl Plan<'_> {
    /// How long to wait before retrying the piece ending at `end`, or `None`
    /// when it has failed `retry_attempts` times (or cannot be resumed).
    fn retry_delay(&self, end: u64, settings: &Settings) -> Option<Duration> {
        self.validator?;
        let mut failures = self.failures.lock().ok()?;
        let n = failures.entry(end).or_default();
        *n += 1;
        if *n >= settings.retry_attempts {
            return None;
        }
        let wait = settings.retry_backoff.saturating_mul(1 << (*n - 1).min(10));
        Some(wait.min(MAX_PIECE_BACKOFF))
    }
}

/// A body that ended at `got` must have reached `end`.
fn complete(start: u64, got: u64, end: u64) -> Result<(), Step> {
    if got < end {
        return Err(transient(format!(
            "connection closed after {} of {} bytes",
            got - start,
            end - start
        ))
        .into());
    }
    Ok(())
}

fn content_range(response: &reqwest::Response) -> Option<(u64, u64, u64)> {
    parse_content_range(response.headers().get(CONTENT_RANGE)?.to_str().ok()?)
}

fn etag_of(v: &Validator) -> Option<String> {
    match v {
        Validator::Etag(e) => Some(e.clone()),
        Validator::LastModified(_) => None,
    }
}

fn transient(reason: String) -> AttemptError {
    AttemptError::Transient {
        reason,
        retry_after: None,
    }
}

fn local(e: std::io::Error) -> AttemptError {
    AttemptError::Local(format!("cannot write the download to the cache: {e}"))
}
