//! Config errors: each names the file, and the key, line and column where it can.

use std::path::PathBuf;

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

impl ConfigError {
    /// An error at byte `offset` of `text`, turned into a line and column (1-based).
    pub fn at(path: PathBuf, text: &str, offset: usize, message: String) -> Self {
        let (line, column) = line_column(text, offset);
        ConfigError::Invalid {
            path,
            line,
            column,
            message,
        }
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |newline| before.len() - newline - 1)
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::line_column;

    #[test]
    fn offsets_become_one_based_lines_and_columns() {
        assert_eq!(line_column("a = 1\nbb = 2\n", 0), (1, 1));
        assert_eq!(line_column("a = 1\nbb = 2\n", 8), (2, 3));
    }
}
