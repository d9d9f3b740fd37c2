//! Reading the end of a log file: the last complete line and any torn fragment after it,
//! without reading the whole file.

use std::{
    fs::File,
    io::{self, Read as _, Seek as _, SeekFrom},
};

/// Longest line looked for; records are far smaller (command lines are capped).
const MAX_LINE: u64 = 16 * 1024 * 1024;
const CHUNK: u64 = 64 * 1024;

/// The end of a log file.
#[derive(Debug, Default, PartialEq)]
pub struct Tail {
    /// The last line ending in a newline (without the newline) and its byte offset.
    pub last_line: Option<(u64, Vec<u8>)>,
    /// Bytes up to and including the last newline: the part worth keeping.
    pub good_len: u64,
    /// Bytes after the last newline: a record cut short by a crash.
    pub torn: Vec<u8>,
}

/// Reads the last complete line and the torn fragment (if any) of `file`.
pub fn read_tail(file: &mut File) -> io::Result<Tail> {
    let len = file.seek(SeekFrom::End(0))?;
    // `buf` holds the file's bytes from `start` to `len`.
    let mut buf: Vec<u8> = Vec::new();
    let mut start = len;
    loop {
        let newlines = buf.iter().filter(|&&b| b == b'\n').count();
        // Enough when the buffer holds the last newline and the one before it.
        if newlines >= 2 || start == 0 {
            break;
        }
        if len - start > MAX_LINE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("no line break in the last {MAX_LINE} bytes"),
            ));
        }
        let next = start.saturating_sub(CHUNK);
        let mut chunk = vec![0; usize::try_from(start - next).unwrap_or(0)];
        file.seek(SeekFrom::Start(next))?;
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
        start = next;
    }
    let Some(last_newline) = buf.iter().rposition(|&b| b == b'\n') else {
        return Ok(Tail {
            last_line: None,
            good_len: 0,
            torn: buf,
        });
    };
    let torn = buf[last_newline + 1..].to_vec();
    let line_start = buf[..last_newline]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |position| position + 1);
    Ok(Tail {
        last_line: Some((
            start + line_start as u64,
            buf[line_start..last_newline].to_vec(),
        )),
        good_len: start + last_newline as u64 + 1,
        torn,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn tail_of(content: &[u8]) -> Tail {
        let mut file = tempfile::tempfile().expect("temp file");
        file.write_all(content).expect("write");
        read_tail(&mut file).expect("tail")
    }

    #[test]
    fn empty_file() {
        assert_eq!(tail_of(b""), Tail::default());
    }

    #[test]
    fn complete_lines() {
        let tail = tail_of(b"one\ntwo\n");
        assert_eq!(tail.last_line, Some((4, b"two".to_vec())));
        assert_eq!(tail.good_len, 8);
        assert!(tail.torn.is_empty());
    }

    #[test]
    fn torn_fragment_after_the_last_line() {
        let tail = tail_of(b"one\ntwo\nthr");
        assert_eq!(tail.last_line, Some((4, b"two".to_vec())));
        assert_eq!(tail.good_len, 8);
        assert_eq!(tail.torn, b"thr");
    }

    #[test]
    fn only_a_torn_fragment() {
        let tail = tail_of(b"{\"seq\":1");
        assert_eq!(tail.last_line, None);
        assert_eq!(tail.good_len, 0);
        assert_eq!(tail.torn, b"{\"seq\":1");
    }

    #[test]
    fn lines_longer_than_a_chunk() {
        let long = vec![b'x'; 150_000];
        let mut content = b"first\n".to_vec();
        content.extend_from_slice(&long);
        content.push(b'\n');
        content.extend_from_slice(b"torn");
        let tail = tail_of(&content);
        assert_eq!(tail.last_line, Some((6, long)));
        assert_eq!(tail.torn, b"torn");
    }
}
