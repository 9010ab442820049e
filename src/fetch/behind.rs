//! Where fetched artifacts are stored after they were answered: a runtime of
//! its own whose threads run at a lower CPU priority. Storing is the bulk of
//! a cache miss's CPU (creating files and directories, fsyncs, the journal
//! work they cause), and none of it is waited for by anyone; at normal
//! priority it competed with the requests being answered, and with whatever
//! else runs on the machine (on a build box: the go command itself). The
//! kernel's fair scheduler still gives it a share of a busy CPU, so stores
//! are late under load, never starved.

use std::io;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The niceness of store threads: 10 gives them about a tenth of a CPU that
/// a normal-priority thread wants too, and all of an idle one.
const NICENESS: i32 = 10;

pub struct Behind {
    handle: Handle,
    /// Dropped with this value: the runtime's thread then returns, dropping
    /// the runtime there (a runtime cannot be dropped on an async worker).
    _stop: oneshot::Sender<()>,
}

impl Behind {
    pub fn start() -> io::Result<Behind> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("goproxy-store")
            .on_thread_start(lower_priority)
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("goproxy-store".to_owned())
            .spawn(move || {
                lower_priority();
                let _ = runtime.block_on(stopped);
                // Stores still running are cut off: they leave temp files
                // at most, which the next start sweeps.
                runtime.shutdown_background();
            })?;
        Ok(Behind {
            handle,
            _stop: stop,
        })
    }

    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }
}

/// Lowers the calling thread's priority (on Linux, niceness is per thread).
/// Where that is not allowed the thread keeps its priority: storing still
/// works, only without the courtesy.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let thread = rustix::thread::gettid();
        let current = rustix::process::getpriority_process(Some(thread)).unwrap_or(0);
        if let Err(e) = rustix::process::setpriority_process(Some(thread), current.max(NICENESS)) {
            tracing::debug!(error = %e, "could not lower the priority of a store thread");
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_run_at_a_lower_priority_on_their_own_threads() {
        let nice = || rustix::process::getpriority_process(Some(rustix::thread::gettid()));
        let before = nice().unwrap();
        let behind = Behind::start().unwrap();
        let (async_nice, blocking_nice) = behind
            .handle()
            .spawn(async {
                let here = rustix::process::getpriority_process(Some(rustix::thread::gettid()));
                let blocking = tokio::task::spawn_blocking(|| {
                    rustix::process::getpriority_process(Some(rustix::thread::gettid()))
                })
                .await
                .unwrap();
                (here.unwrap(), blocking.unwrap())
            })
            .await
            .unwrap();
        assert!(async_nice >= NICENESS, "store thread niceness {async_nice}");
        assert!(
            blocking_nice >= NICENESS,
            "blocking thread niceness {blocking_nice}"
        );
        assert_eq!(
            nice().unwrap(),
            before,
            "the caller's thread kept its priority"
        );
    }
}
