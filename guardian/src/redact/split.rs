//! One-string command lines (`sh -c "..."`, a process that rewrote its title into one
//! argument, free text such as a kill reason): split shell-style with `shlex`, redacted
//! as an argument vector, and each hidden range put back where it sits in the original,
//! so quoting and spacing stay as they were. When that cannot be done exactly (a secret
//! straddling quotes), the redacted words are joined by spaces instead.

use std::ops::Range;

use super::{REDACTED, text::PRIVATE_KEY};

/// The argument-vector pass the words go through (the caller's, which knows how deep
/// the one-string command lines already go).
pub(super) type ArgvPass<'a> = &'a dyn Fn(&[&str]) -> Vec<String>;

/// Redacts `line`, its words through `argv`.
pub(super) fn redact(line: &str, argv: ArgvPass<'_>) -> String {
    // Key blocks first: split into words their markers would no longer be recognised.
    let line = PRIVATE_KEY.replace_all(line, |c: &regex::Captures<'_>| {
        let (Some(all), Some(body)) = (c.get(0), c.get(1)) else {
            return String::new();
        };
        let (start, end) = (body.start() - all.start(), body.end() - all.start());
        let all = all.as_str();
        if body.as_str().trim().is_empty() || body.as_str() == REDACTED {
            all.to_string()
        } else {
            format!("{}{REDACTED}{}", &all[..start], &all[end..])
        }
    });
    let Some(words) = shlex::split(&line) else {
        // Unbalanced quotes: words by whitespace, joined back the same way.
        let words: Vec<&str> = line.split_whitespace().collect();
        let redacted = redact_words(&words, argv);
        return if redacted == words {
            line.into_owned()
        } else {
            redacted.join(" ")
        };
    };
    let redacted = redact_words(&words, argv);
    if redacted == words {
        return line.into_owned();
    }
    in_place(&line, &words, &redacted).unwrap_or_else(|| redacted.join(" "))
}

/// Redacts words; a shell separator glued to a word (`ping;`) is not part of it.
fn redact_words<S: AsRef<str>>(words: &[S], argv: ArgvPass<'_>) -> Vec<String> {
    let trimmed: Vec<&str> = words
        .iter()
        .map(|word| {
            let word = word.as_ref();
            match word.trim_end_matches([';', '&']) {
                "" => word,
                trimmed => trimmed,
            }
        })
        .collect();
    argv(&trimmed)
        .into_iter()
        .zip(words.iter().zip(&trimmed))
        .map(|(mut redacted, (word, trimmed))| {
            redacted.push_str(&word.as_ref()[trimmed.len()..]);
            redacted
        })
        .collect()
}

/// `line` with each word's hidden ranges replaced where they sit; `None` when the result
/// would not split back into exactly the redacted words.
fn in_place(line: &str, words: &[String], redacted: &[String]) -> Option<String> {
    let located = locate(line)?;
    if located.len() != words.len()
        || located
            .iter()
            .zip(words)
            .any(|(found, word)| found.0 != *word)
    {
        return None;
    }
    let mut raw_ranges: Vec<Range<usize>> = Vec::new();
    for ((word, offsets), new) in located.iter().zip(redacted) {
        for hidden in hidden_ranges(word, new)? {
            if hidden.is_empty() {
                continue;
            }
            let start = offsets[hidden.start];
            let last = offsets[hidden.end - 1];
            let end = last + line[last..].chars().next().map_or(1, char::len_utf8);
            raw_ranges.push(start..end);
        }
    }
    let mut out = String::with_capacity(line.len());
    let mut copied = 0;
    for range in raw_ranges {
        out.push_str(line.get(copied..range.start)?);
        out.push_str(REDACTED);
        copied = range.end;
    }
    out.push_str(line.get(copied..)?);
    (shlex::split(&out).as_deref() == Some(redacted)).then_some(out)
}

/// The ranges of `word` that became `[REDACTED]` in `new`, found by matching the text
/// between markers; `None` if they do not line up.
fn hidden_ranges(word: &str, new: &str) -> Option<Vec<Range<usize>>> {
    if word == new {
        return Some(Vec::new());
    }
    let literals: Vec<&str> = new.split(REDACTED).collect();
    let (first, rest) = literals.split_first()?;
    let (last, middle) = rest.split_last()?;
    if !word.starts_with(first) || !word.ends_with(last) || first.len() + last.len() > word.len() {
        return None;
    }
    let end_limit = word.len() - last.len();
    let mut ranges = Vec::new();
    let mut at = first.len();
    for literal in middle {
        let found = at + word.get(at..end_limit)?.find(literal)?;
        ranges.push(at..found);
        at = found + literal.len();
    }
    ranges.push(at..end_limit);
    // An earlier `[REDACTED]` kept as it was is not a hidden range.
    ranges.retain(|range| word.get(range.clone()) != Some(REDACTED));
    Some(ranges)
}

/// The words of `line` as a POSIX shell splits them (what `shlex` does), each with the
/// byte offset in `line` of every byte of the word; `None` on unbalanced quotes.
fn locate(line: &str) -> Option<Vec<(String, Vec<usize>)>> {
    let mut words = Vec::new();
    let mut word: Option<(String, Vec<usize>)> = None;
    let mut chars = line.char_indices().peekable();
    let push = |word: &mut Option<(String, Vec<usize>)>, c: char, at: usize| {
        let (text, offsets) = word.get_or_insert_with(Default::default);
        text.push(c);
        offsets.extend(std::iter::repeat_n(at, c.len_utf8()));
    };
    while let Some((at, c)) = chars.next() {
        match c {
            '\'' => {
                word.get_or_insert_with(Default::default);
                loop {
                    let (at, c) = chars.next()?;
                    if c == '\'' {
                        break;
                    }
                    push(&mut word, c, at);
                }
            }
            '"' => {
                word.get_or_insert_with(Default::default);
                loop {
                    let (at, c) = chars.next()?;
                    match c {
                        '"' => break,
                        '\\' => match chars.peek() {
                            Some(&(_, '\n')) => {
                                chars.next();
                            }
                            Some(&(next_at, next @ ('$' | '`' | '"' | '\\'))) => {
                                chars.next();
                                push(&mut word, next, next_at);
                            }
                            _ => push(&mut word, c, at),
                        },
                        _ => push(&mut word, c, at),
                    }
                }
            }
            '\\' => match chars.next() {
                Some((_, '\n')) => {}
                Some((next_at, next)) => push(&mut word, next, next_at),
                None => return None,
            },
            '#' if word.is_none() => {
                // A comment runs to the end of the line.
                for (_, c) in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            c if c.is_whitespace() => {
                if let Some(done) = word.take() {
                    words.push(done);
                }
            }
            _ => push(&mut word, c, at),
        }
    }
    words.extend(word);
    Some(words)
}
