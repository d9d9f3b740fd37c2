//! Reading /proc files relative to an open root, into reused buffers: one `read` per
//! file (a short read from procfs is the end of the file), no allocation once a buffer
//! has grown, and "the process is gone" told apart from real errors.

use std::{
    fs::File,
    io::{self, Read as _},
    os::{fd::OwnedFd, unix::fs::FileExt as _},
    path::Path,
};

use nix::{fcntl::OFlag, sys::stat::Mode};

/// The procfs root, held open so each file is opened relative to it (`1234/stat`)
/// instead of walking `/proc` again for every file of every process.
#[derive(Debug)]
pub struct ProcRoot {
    fd: OwnedFd,
}

impl ProcRoot {
    pub fn open(path: &Path) -> io::Result<ProcRoot> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::open(path, flags, Mode::empty()).map_err(io::Error::from)?;
        Ok(ProcRoot { fd })
    }

    /// Reads `PID/name` into the front of `buf`: the length, or `None` when the process
    /// is gone. One open, for reads where nothing must match another file of the same
    /// process.
    pub fn read(&self, pid: i32, name: &str, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
        let mut path = [0u8; 64];
        let relative = relative_path(pid, name, &mut path);
        let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC;
        match nix::fcntl::openat(&self.fd, relative, flags, Mode::empty()) {
            Ok(fd) => read_once(File::from(fd), buf),
            Err(errno) => vanished_or(io::Error::from(errno)),
        }
    }

    /// Opens `PID/name` to keep it: `None` when the process is gone. Errors are raw
    /// (EMFILE and ENFILE included), for the caller to tell "out of descriptors" apart.
    pub fn open_held(&self, pid: i32, name: &str) -> io::Result<Option<HeldFile>> {
        let mut path = [0u8; 64];
        let relative = relative_path(pid, name, &mut path);
        let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC;
        match nix::fcntl::openat(&self.fd, relative, flags, Mode::empty()) {
            Ok(fd) => Ok(Some(HeldFile {
                file: File::from(fd),
            })),
            Err(errno) => vanished_or(io::Error::from(errno)),
        }
    }

    /// Opens `PID` as a directory; `None` when the process is gone.
    pub fn open_pid(&self, pid: i32) -> io::Result<Option<ProcDir>> {
        let mut digits = [0u8; 12];
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        match nix::fcntl::openat(&self.fd, itoa(pid, &mut digits), flags, Mode::empty()) {
            Ok(fd) => Ok(Some(ProcDir { fd })),
            Err(errno) => vanished_or(io::Error::from(errno)),
        }
    }
}

/// A fresh read buffer: always initialised up to its length, files are read into its
/// front, and it grows when a file does not fit.
pub fn buffer() -> Vec<u8> {
    vec![0; 4096]
}

/// `PID/name` in `out`, without allocating.
fn relative_path<'a>(pid: i32, name: &str, out: &'a mut [u8; 64]) -> &'a [u8] {
    let mut digits = [0u8; 12];
    let pid = itoa(pid, &mut digits).as_bytes();
    let len = (pid.len() + 1 + name.len()).min(out.len());
    let mut writer = &mut out[..];
    for part in [pid, b"/", name.as_bytes()] {
        let take = part.len().min(writer.len());
        writer[..take].copy_from_slice(&part[..take]);
        writer = &mut writer[take..];
    }
    &out[..len]
}

/// An open `/proc/PID` directory. Files opened through it belong to the process that
/// held the pid when it was opened: if that process exits, they fail instead of showing
/// a newer process that reused the pid.
#[derive(Debug)]
pub struct ProcDir {
    fd: OwnedFd,
}

impl ProcDir {
    /// Reads `name` into the front of `buf`: the length, or `None` when the process is
    /// gone.
    pub fn read(&self, name: &str, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
        let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC;
        match nix::fcntl::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => read_once(File::from(fd), buf),
            Err(errno) => vanished_or(io::Error::from(errno)),
        }
    }
}

/// A /proc file kept open to be read again and again. procfs files are generated on
/// read: a read at offset 0 produces fresh content each time (seq_file restarts), and a
/// file under `/proc/PID` is pinned to the process it was opened for: once that process
/// is gone (reaped), reads fail with ESRCH even if its pid was reused meanwhile.
#[derive(Debug)]
pub struct HeldFile {
    file: File,
}

impl HeldFile {
    /// Reads the whole file again into the front of `buf` (`pread` from offset 0): the
    /// length, or `None` when its process is gone (ESRCH, ENOENT, or nothing to read).
    pub fn read(&self, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
        Ok(fill(buf, |part, at| self.file.read_at(part, at))?.filter(|len| *len > 0))
    }
}

/// Reads a just-opened file to its end, then closes it.
fn read_once(mut file: File, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
    fill(buf, |part, _| file.read(part))
}

/// Fills `buf` from its front with `read(part, offset)` calls until a short read
/// (procfs produces a file in one go; a short read is its end), growing `buf` as needed.
fn fill(
    buf: &mut Vec<u8>,
    mut read_at: impl FnMut(&mut [u8], u64) -> io::Result<usize>,
) -> io::Result<Option<usize>> {
    let mut len = 0;
    loop {
        let read = match read_at(&mut buf[len..], len as u64) {
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return vanished_or(error),
        };
        len += read;
        if read == 0 || len < buf.len() {
            return Ok(Some(len));
        }
        let grown = buf.len() * 2;
        buf.resize(grown, 0);
    }
}

/// ENOENT (no such pid or file) and ESRCH (the task exited after the open) mean the
/// process is gone: `Ok(None)`. Anything else is an error.
fn vanished_or<T>(error: io::Error) -> io::Result<Option<T>> {
    if error.kind() == io::ErrorKind::NotFound || error.raw_os_error() == Some(libc::ESRCH) {
        Ok(None)
    } else {
        Err(error)
    }
}

/// Formats a pid without allocating.
fn itoa(value: i32, out: &mut [u8; 12]) -> &str {
    let mut at = out.len();
    let negative = value < 0;
    let mut rest = value.unsigned_abs();
    loop {
        at -= 1;
        out[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if negative {
        at -= 1;
        out[at] = b'-';
    }
    std::str::from_utf8(&out[at..]).unwrap_or("0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_pids() {
        for value in [0, 7, 42, 4_194_304, i32::MAX, -1, i32::MIN] {
            assert_eq!(itoa(value, &mut [0; 12]), value.to_string());
        }
    }

    #[test]
    fn reads_files_larger_than_the_buffer_and_tells_gone_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("17")).expect("mkdir");
        let content: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("17/big"), &content).expect("write");
        let root = ProcRoot::open(dir.path()).expect("open");
        let mut buf = buffer();
        let len = root
            .read(17, "big", &mut buf)
            .expect("read")
            .expect("present");
        assert_eq!(&buf[..len], &content[..]);
        assert_eq!(root.read(17, "gone", &mut buf).expect("read"), None);
        assert_eq!(root.read(18, "big", &mut buf).expect("read"), None);
        let pid_dir = root.open_pid(17).expect("open").expect("present");
        let len = pid_dir
            .read("big", &mut buf)
            .expect("read")
            .expect("present");
        assert_eq!(len, content.len());
        assert!(root.open_pid(18).expect("open").is_none());
    }

    #[test]
    fn builds_relative_paths_in_place() {
        let mut out = [0u8; 64];
        assert_eq!(relative_path(1234, "stat", &mut out), b"1234/stat");
        assert_eq!(
            relative_path(5, "oom_score_adj", &mut out),
            b"5/oom_score_adj"
        );
    }
}
