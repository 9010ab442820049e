//! File reads that run right on the async worker when the kernel can answer
//! from memory (the dentry cache, the page cache), which is the case for
//! nearly every cache hit. Each one asks the kernel to refuse rather than
//! wait for the disk (`openat2` with `RESOLVE_CACHED`, `preadv2` with
//! `RWF_NOWAIT`); the caller then does the same work on the blocking pool.
//! A trip to that pool costs two thread hand-offs, more than the read of a
//! small file or of a 128 KiB chunk from memory.

use std::fs::File;
use std::io;
use std::path::Path;

#[cfg(target_os = "linux")]
use rustix::fs::{CWD, Mode, OFlags, ResolveFlags};
#[cfg(target_os = "linux")]
use rustix::io::{Errno, ReadWriteFlags};

/// Errors that mean "not possible without blocking, or not here": the
/// lookup or the data is not in memory, the kernel or the file system lacks
/// the call, or a sandbox forbids it. The blocking path gives the real answer.
#[cfg(target_os = "linux")]
fn would_block(e: Errno) -> bool {
    matches!(
        e,
        Errno::AGAIN | Errno::NOSYS | Errno::INVAL | Errno::OPNOTSUPP | Errno::PERM
    )
}

/// Opens `path` for reading if that needs no disk I/O; `None` when it would.
#[cfg(target_os = "linux")]
pub fn open(path: &Path) -> Option<io::Result<File>> {
    match rustix::fs::openat2(
        CWD,
        path,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::CACHED,
    ) {
        Ok(fd) => Some(Ok(File::from(fd))),
        Err(e) if would_block(e) => None,
        Err(e) => Some(Err(e.into())),
    }
}

/// Reads into `buf` at `offset` what is in the page cache (possibly less than
/// asked, 0 at the end of the file); `None` when nothing is.
#[cfg(target_os = "linux")]
pub fn read_at(file: &File, buf: &mut [u8], offset: u64) -> Option<io::Result<usize>> {
    match rustix::io::preadv2(
        file,
        &mut [io::IoSliceMut::new(buf)],
        offset,
        ReadWriteFlags::NOWAIT,
    ) {
        Ok(n) => Some(Ok(n)),
        Err(e) if would_block(e) => None,
        Err(e) => Some(Err(e.into())),
    }
}

/// Elsewhere every read takes the blocking path.
#[cfg(not(target_os = "linux"))]
pub fn open(_path: &Path) -> Option<io::Result<File>> {
    None
}

#[cfg(not(target_os = "linux"))]
pub fn read_at(_file: &File, _buf: &mut [u8], _offset: u64) -> Option<io::Result<usize>> {
    None
}

/// Fills `buf` from `offset` on the calling thread, waiting for the disk if
/// need be; stops early only at the end of the file. Returns the bytes read.
pub fn read_at_blocking(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn reads_a_file_in_the_page_cache_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        // Just written, so the lookup and the pages are in memory.
        let file = open(&path).expect("cached lookup").unwrap();
        let mut buf = vec![0u8; 1000];
        let n = read_at(&file, &mut buf, 5000)
            .expect("cached pages")
            .unwrap();
        assert_eq!(n, 1000);
        assert_eq!(buf, data[5000..6000]);
        assert_eq!(read_at(&file, &mut buf, 100_000).unwrap().unwrap(), 0);

        let mut rest = vec![0u8; 2000];
        assert_eq!(read_at_blocking(&file, &mut rest, 99_000).unwrap(), 1000);
        assert_eq!(rest[..1000], data[99_000..]);
    }

    #[test]
    fn a_missing_file_is_an_error_not_a_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        // Either the lookup is answered from memory (not found) or it is
        // left to the blocking path; it never opens anything.
        match open(&missing) {
            Some(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::NotFound),
            Some(Ok(_)) => panic!("opened a missing file"),
            None => {}
        }
    }
}
