//! The files of one kill log: the current file (`kills.jsonl`) and its rotated
//! predecessors (`kills.jsonl.1` the newest, up to `kills.jsonl.<keep_files>`).

use std::{
    fs::{self, File},
    path::{Path, PathBuf},
};

use super::AuditError;

/// The directory holding `path` ("." for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `kills.jsonl.N`.
pub fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// The rotated files that exist, as (N, path), N ascending (newest first).
pub fn rotated_files(path: &Path) -> Result<Vec<(u32, PathBuf)>, AuditError> {
    let dir = parent_dir(path);
    let Some(base) = path.file_name().and_then(|name| name.to_str()) else {
        return Ok(Vec::new());
    };
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(AuditError::io("list directory", dir, error)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| AuditError::io("list directory", &dir, error))?;
        let name = entry.file_name();
        let number = name
            .to_str()
            .and_then(|name| name.strip_prefix(base))
            .and_then(|rest| rest.strip_prefix('.'))
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<u32>().ok())
            .filter(|&n| n >= 1);
        if let Some(n) = number {
            found.push((n, rotated_path(path, n)));
        }
    }
    found.sort_by_key(|(n, _)| *n);
    Ok(found)
}

/// Every file of the log at `path`, oldest first: the rotated files from the highest
/// number down, then the current file. Missing entirely is an error.
pub fn log_files(path: &Path) -> Result<Vec<PathBuf>, AuditError> {
    let mut files: Vec<PathBuf> = rotated_files(path)?
        .into_iter()
        .rev()
        .map(|(_, path)| path)
        .collect();
    if path.exists() {
        files.push(path.to_path_buf());
    }
    if files.is_empty() {
        return Err(AuditError::Missing {
            path: path.to_path_buf(),
        });
    }
    Ok(files)
}

/// Shifts the rotated files up by one (the one numbered `keep_files` is overwritten,
/// higher numbers are removed) and moves the current file to `.1` (or removes it when
/// `keep_files` is 0). Stops at the first failure, before the current file is touched,
/// so no kept file is ever overwritten by a half-done rotation.
pub fn rotate(path: &Path, keep_files: u32) -> Result<(), AuditError> {
    let rotated = rotated_files(path)?;
    for (n, old) in rotated.iter().rev() {
        if *n >= keep_files {
            fs::remove_file(old).map_err(|error| AuditError::io("remove", old, error))?;
        } else {
            let to = rotated_path(path, n + 1);
            fs::rename(old, &to).map_err(|error| AuditError::io("rename", old, error))?;
        }
    }
    if keep_files == 0 {
        fs::remove_file(path).map_err(|error| AuditError::io("remove", path, error))?;
    } else {
        fs::rename(path, rotated_path(path, 1))
            .map_err(|error| AuditError::io("rename", path, error))?;
    }
    Ok(())
}

/// fsync a directory, so a created or renamed entry survives a crash.
pub fn sync_dir(dir: &Path) -> Result<(), AuditError> {
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|error| AuditError::io("fsync directory", dir, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path, content: &str) {
        fs::write(path, content).expect("write");
    }

    #[test]
    fn rotation_shifts_and_drops_beyond_keep() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("kills.jsonl");
        touch(&log, "current");
        touch(&rotated_path(&log, 1), "one");
        touch(&rotated_path(&log, 2), "two");
        touch(&rotated_path(&log, 5), "stale");
        touch(&dir.path().join("kills.jsonl.bak"), "not ours");
        rotate(&log, 2).expect("rotate");
        assert!(!log.exists());
        let read = |n| fs::read_to_string(rotated_path(&log, n)).expect("read");
        assert_eq!(read(1), "current");
        assert_eq!(read(2), "one");
        assert!(!rotated_path(&log, 3).exists());
        assert!(!rotated_path(&log, 5).exists());
        assert!(dir.path().join("kills.jsonl.bak").exists());
    }

    #[test]
    fn log_files_are_listed_oldest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("kills.jsonl");
        assert!(matches!(log_files(&log), Err(AuditError::Missing { .. })));
        for n in [1, 2, 10] {
            touch(&rotated_path(&log, n), "");
        }
        touch(&log, "");
        let files = log_files(&log).expect("files");
        let expected = vec![
            rotated_path(&log, 10),
            rotated_path(&log, 2),
            rotated_path(&log, 1),
            log.clone(),
        ];
        assert_eq!(files, expected);
    }

    #[test]
    fn keep_zero_removes_the_current_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("kills.jsonl");
        touch(&log, "current");
        rotate(&log, 0).expect("rotate");
        assert!(!log.exists());
        assert!(rotated_files(&log).expect("list").is_empty());
    }
}
