//! Plain-HTTP connections are served by one single-threaded runtime per core,
//! the way nginx runs one worker process per core: a connection lives on one
//! thread from accept to close, so answering a cache hit never hands the
//! connection's task to another thread (a futex wake-up and a context switch
//! on a multi-threaded runtime) and its state never bounces between caches.
//!
//! One accept loop on the main runtime hands each new connection to the
//! worker with the fewest open connections. A cache miss is fetched on the
//! worker that received it too: a fetch is mostly waiting, and what is not
//! (checking and hashing a zip larger than a few KiB, writing files) runs on
//! the blocking pool or on the store thread (`fetch::behind`), so it does not
//! hold up the worker's other connections. Sending misses to a shared runtime
//! instead cost two more thread wake-ups per miss.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tower_service::Service;

/// How much of a response an HTTP/1 connection queues before it stops asking
/// the body for more (hyper's default is ~400 KiB). Bodies come in chunks of
/// up to 128 KiB, so a client being served holds about two: the one queued
/// and the one being read. It also bounds a request's head.
const MAX_BUFFERED: usize = 64 * 1024;

type Handoff = (std::net::TcpStream, SocketAddr, Slot);

/// One worker thread as the accept loop sees it.
struct Worker {
    connections: Arc<AtomicUsize>,
    handoff: mpsc::UnboundedSender<Handoff>,
    done: oneshot::Receiver<()>,
}

/// Serves `app` on `listener` with `count` worker threads until `stopped`
/// turns true, then lets in-flight requests finish. Dropping the returned
/// future (an aborted server task) drops every open connection.
///
/// Tasks that requests started (a fetch still storing what it answered)
/// live on the worker that started them, so a worker's runtime keeps running
/// after its connections are gone, until the sender of `release` is dropped.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    stopped: watch::Receiver<bool>,
    release: watch::Receiver<()>,
    count: usize,
) -> io::Result<()> {
    // Dropped with this future: the workers then stop at once, whatever
    // their connections are doing.
    let (_kill, killed) = watch::channel(());
    let mut workers = Vec::with_capacity(count);
    for index in 0..count.max(1) {
        workers.push(start_worker(
            index,
            app.clone(),
            stopped.clone(),
            killed.clone(),
            release.clone(),
        )?);
    }
    accept_loop(&listener, &workers, stopped).await;
    drop(listener);
    let mut result = Ok(());
    for worker in workers {
        drop(worker.handoff);
        if worker.done.await.is_err() {
            result = Err(io::Error::other(
                "a connection worker thread ended unexpectedly",
            ));
        }
    }
    result
}

fn start_worker(
    index: usize,
    app: axum::Router,
    stopped: watch::Receiver<bool>,
    mut killed: watch::Receiver<()>,
    mut release: watch::Receiver<()>,
) -> io::Result<Worker> {
    let (handoff, incoming) = mpsc::unbounded_channel();
    let (report, done) = oneshot::channel();
    let connections = Arc::new(AtomicUsize::new(0));
    let handed = Handed { incoming };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(format!("goproxy-http-{index}"))
        .spawn(move || {
            runtime.block_on(async move {
                tokio::select! {
                    () = serve_connections(handed, app, stopped) => {}
                    // Only an error: the sender is never used, only dropped.
                    _ = killed.changed() => {}
                }
                let _ = report.send(());
                let _ = release.changed().await;
            });
            // Whatever is left is dropped with the runtime, here on this
            // thread rather than wherever the last handle happens to go.
            drop(runtime);
        })?;
    Ok(Worker {
        connections,
        handoff,
        done,
    })
}

/// Where connections come from: a worker's hand-off, or the TLS listener's
/// completed handshakes.
pub trait Connections: Send {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Kept while the connection is open.
    type Guard: Send + 'static;

    /// The next connection and its client's address.
    fn next(&mut self) -> impl Future<Output = (Self::Io, SocketAddr, Self::Guard)> + Send;
}

/// Serves `incoming` connections until `stopped`, then lets each finish the
/// request it is serving and waits for them to close.
pub async fn serve_connections<C: Connections>(
    mut incoming: C,
    app: axum::Router,
    mut stopped: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().max_buf_size(MAX_BUFFERED);
    loop {
        let (stream, client, guard) = tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => break,
            next = incoming.next() => next,
        };
        let app = app.clone();
        // What `into_make_service_with_connect_info` would add, for the
        // request log and the authentication lockout.
        let service = service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(client));
            app.clone().call(request.map(axum::body::Body::new))
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::trace!(%client, error = %e, "connection ended with an error");
            }
            drop(guard);
        });
    }
    // No new connections while the open ones finish: the TLS accept loop
    // stops (closing the listening socket) once its receiver is gone.
    drop(incoming);
    graceful.shutdown().await;
}

async fn accept_loop(
    listener: &TcpListener,
    workers: &[Worker],
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let (stream, client) = tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => return,
            accepted = super::accept(listener) => accepted,
        };
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(%client, error = %e, "could not hand over a connection");
                continue;
            }
        };
        let Some(worker) = workers
            .iter()
            .min_by_key(|w| w.connections.load(Ordering::Relaxed))
        else {
            return;
        };
        // Counted here, not when the worker picks it up, so a burst of
        // connects spreads over the workers instead of all going to the
        // one that was idle when it began. A connection the worker never
        // takes is counted out as it drops.
        let slot = Slot::take(&worker.connections);
        let _ = worker.handoff.send((stream, client, slot));
    }
}

/// The worker's side of the hand-off.
struct Handed {
    incoming: mpsc::UnboundedReceiver<Handoff>,
}

impl Connections for Handed {
    type Io = TcpStream;
    type Guard = Slot;

    async fn next(&mut self) -> (TcpStream, SocketAddr, Slot) {
        loop {
            let Some((stream, client, slot)) = self.incoming.recv().await else {
                // The accept loop stopped; graceful shutdown ends the worker.
                return std::future::pending().await;
            };
            match TcpStream::from_std(stream) {
                Ok(stream) => return (stream, client, slot),
                Err(e) => tracing::debug!(%client, error = %e, "could not take over a connection"),
            }
        }
    }
}

/// One open connection in a worker's count.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(connections: &Arc<AtomicUsize>) -> Slot {
        connections.fetch_add(1, Ordering::Relaxed);
        Slot(Arc::clone(connections))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::time::Duration;

    /// The name of the worker thread that answers a request on `stream`.
    fn who(stream: &mut std::net::TcpStream) -> String {
        stream
            .write_all(b"GET /who HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        // The body is the last thing in the answer and ends with '\n'.
        while !got.ends_with(b"\n") {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "connection closed early");
            got.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8(got).unwrap();
        text.rsplit("\r\n\r\n").next().unwrap().trim().to_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_go_to_the_least_loaded_worker_and_are_counted_out_when_closed() {
        let app = axum::Router::new().route(
            "/who",
            axum::routing::get(|| async {
                format!("{}\n", std::thread::current().name().unwrap_or("?"))
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        let (alive, release) = watch::channel(());
        let server = tokio::spawn(serve(listener, app, stopped, release, 2));
        let checks = tokio::task::spawn_blocking(move || {
            let connect = || std::net::TcpStream::connect(addr).unwrap();
            let mut first = connect();
            let mut second = connect();
            let (a, b) = (who(&mut first), who(&mut second));
            assert!(a.starts_with("goproxy-http-"), "{a}");
            assert!(b.starts_with("goproxy-http-"), "{b}");
            assert_ne!(a, b, "two connections, two workers");
            // Once the first is closed its worker is the less loaded one
            // again; until the worker has seen the close, new connections go
            // to the other (and are closed again right away).
            drop(first);
            for _ in 0..500 {
                let mut next = connect();
                if who(&mut next) == a {
                    return;
                }
                drop(next);
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!("a closed connection was never counted out of its worker");
        });
        checks.await.unwrap();
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the workers stop once their connections close")
            .unwrap()
            .unwrap();
        drop(alive);
    }
}
