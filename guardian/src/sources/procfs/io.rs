//! Reading /proc files into reused buffers: one `read` per file (a short read from
//! procfs is the end of the file), no allocation once the buffers have grown, and
//! "the process is gone" told apart from real errors.

use std::{
    fs::File,
    io::{self, Read as _},
    os::fd::OwnedFd,
    path::{Path, PathBuf},
};

use nix::{fcntl::OFlag, sys::stat::Mode};

/// Buffers reused across the files and processes of one scan.
#[derive(Debug)]
pub struct Buffers {
    /// Always initialised up to its length; files are read into its front.
    pub data: Vec<u8>,
    pub path: PathBuf,
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers {
            data: vec![0; 4096],
            path: PathBuf::with_capacity(64),
        }
    }
}

/// Points `path` at `root/pid/name`, reusing its allocation.
pub fn set_path(path: &mut PathBuf, root: &Path, pid: i32, name: &str) {
    let path = path.as_mut_os_string();
    path.clear();
    path.push(root.as_os_str());
    path.push("/");
    path.push(itoa(pid, &mut [0; 12]));
    path.push("/");
    path.push(name);
}

/// An open `/proc/PID` directory. Files opened through it belong to the process that
/// held the pid when it was opened: if that process exits, they fail instead of showing
/// a newer process that reused the pid.
#[derive(Debug)]
pub struct ProcDir {
    fd: OwnedFd,
}

impl ProcDir {
    /// `None` when the process is gone.
    pub fn open(path: &Path) -> io::Result<Option<ProcDir>> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        match nix::fcntl::open(path, flags, Mode::empty()) {
            Ok(fd) => Ok(Some(ProcDir { fd })),
            Err(errno) => vanished_or(io::Error::from(errno)),
        }
    }

    /// Reads `name` into the front of `buf`: the length, or `None` when the process is
    /// gone.
    pub fn read(&self, name: &str, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
        let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC;
        match nix::fcntl::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fill(File::from(fd), buf),
            Err(errno) => vanished_or(io::Error::from(errno)),
        }
    }
}

/// Reads the file at `path` into the front of `buf`: the length, or `None` when it (the
/// process) is gone.
pub fn read_path(path: &Path, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
    match File::open(path) {
        Ok(file) => fill(file, buf),
        Err(error) => vanished_or(error),
    }
}

fn fill(mut file: File, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
    let mut len = 0;
    loop {
        let read = match file.read(&mut buf[len..]) {
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
    fn reads_files_larger_than_the_buffer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big");
        let content: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).expect("write");
        let mut buffers = Buffers::default();
        let len = read_path(&path, &mut buffers.data)
            .expect("read")
            .expect("present");
        assert_eq!(&buffers.data[..len], &content[..]);
        assert_eq!(
            read_path(&dir.path().join("gone"), &mut buffers.data).expect("read"),
            None
        );
    }

    #[test]
    fn builds_paths_in_place() {
        let mut path = PathBuf::new();
        set_path(&mut path, Path::new("/proc"), 1234, "stat");
        assert_eq!(path, Path::new("/proc/1234/stat"));
        set_path(&mut path, Path::new("/x"), 5, "status");
        assert_eq!(path, Path::new("/x/5/status"));
    }
}
