//! The argument-vector pass: splits argv into commands (argv[0] and nested ones such as
//! `sudo mysql`, `kubectl exec pod -- mysql`), applies the tool table and the generic
//! rules (secret-named options, `password VALUE` words, headers split over arguments,
//! key blocks split over arguments, bare high-entropy tokens), then hides the marked
//! ranges. Arguments that are themselves command lines (`sh -c "..."`, a title
//! rewritten into one argument) go through the one-string path.

use std::ops::Range;

use super::{
    REDACTED, names, shapes, split,
    text::{self, AUTH_SCHEMES, PRIVATE_KEY},
    tools::{self, Attach, Part, Tool, When},
};

/// How deep one-string command lines are followed (`sh -c "ssh h 'mysql -p...'"`).
const MAX_DEPTH: u8 = 3;

/// Redacts `argv`, one output argument per input argument; `depth` counts one-string
/// command lines already entered.
pub(super) fn redact<S: AsRef<str>>(argv: &[S], depth: u8) -> Vec<String> {
    let args: Vec<&str> = argv.iter().map(AsRef::as_ref).collect();
    // A shell's `-c` script is a command line of its own: the one-string path reads it.
    let mut marks: Vec<Vec<Range<usize>>> = args
        .iter()
        .enumerate()
        .map(|(i, arg)| {
            if is_script(&args, i) {
                Vec::new()
            } else {
                text::scan(arg)
            }
        })
        .collect();
    spanning(&args, &mut marks);
    for (start, end) in commands(&args) {
        Command::new(&args[start..end], start).apply(&mut marks);
    }
    for (i, arg) in args.iter().enumerate().skip(1) {
        if marks[i].is_empty()
            && let Some(range) = shapes::high_entropy(arg)
        {
            marks[i].push(range);
        }
    }
    args.iter()
        .zip(marks)
        .map(|(arg, arg_marks)| {
            let redacted = hide(arg, arg_marks);
            if depth < MAX_DEPTH && is_command_line(&redacted) {
                split::redact(&redacted, &|words| redact(words, depth + 1))
            } else {
                redacted
            }
        })
        .collect()
}

/// Programs whose `-c` option takes a command line (`sh -c`, `bash -lc`, `su -c`).
const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "busybox", "su", "runuser",
];

/// `args[i]` is the script of a shell's `-c`.
fn is_script(args: &[&str], i: usize) -> bool {
    i >= 2
        && args[i - 1].len() >= 2
        && args[i - 1].starts_with('-')
        && args[i - 1].ends_with('c')
        && args[i - 1][1..].chars().all(|c| c.is_ascii_alphabetic())
        && args[..i - 1]
            .iter()
            .any(|arg| SHELLS.contains(&arg.rsplit('/').next().unwrap_or(arg)))
}

/// An argument that holds a command line of its own: words separated by spaces, not a
/// JSON document.
fn is_command_line(arg: &str) -> bool {
    arg.contains(char::is_whitespace) && !arg.trim_start().starts_with(['{', '['])
}

/// Replaces the marked ranges of `arg` (merged) with [`REDACTED`]. A range that holds
/// nothing but an earlier `[REDACTED]` is left as it is, so redaction is idempotent.
fn hide(arg: &str, mut marks: Vec<Range<usize>>) -> String {
    if marks.is_empty() {
        return arg.to_string();
    }
    marks.sort_by_key(|range| (range.start, std::cmp::Reverse(range.end)));
    let mut merged: Vec<Range<usize>> = Vec::new();
    for range in marks {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    let mut out = String::with_capacity(arg.len());
    let mut last = 0;
    for range in merged {
        let (Some(before), Some(secret)) = (arg.get(last..range.start), arg.get(range.clone()))
        else {
            continue;
        };
        out.push_str(before);
        out.push_str(if already_redacted(secret) {
            secret
        } else {
            REDACTED
        });
        last = range.end;
    }
    out.push_str(arg.get(last..).unwrap_or_default());
    out
}

/// Nothing but `[REDACTED]` markers and punctuation.
fn already_redacted(text: &str) -> bool {
    text.contains(REDACTED)
        && text
            .replace(REDACTED, "")
            .chars()
            .all(|c| c.is_ascii_punctuation() || c.is_whitespace())
}

/// Secrets spread over several arguments: a key block whose lines were split into
/// arguments, a header given as `Authorization:` `Bearer` `TOKEN`.
fn spanning(args: &[&str], marks: &mut [Vec<Range<usize>>]) {
    let mut i = 0;
    while i < args.len() {
        let arg = args[i];
        if let Some(m) = PRIVATE_KEY.find(arg)
            && m.end() == arg.len()
            && !arg.contains("-----END")
        {
            // An open key block: everything up to the argument holding its end.
            let mut j = i + 1;
            while j < args.len() {
                match args[j].find("-----END") {
                    Some(end) => {
                        marks[j].push(0..end);
                        break;
                    }
                    None => marks[j].push(0..args[j].len()),
                }
                j += 1;
            }
            i = j;
            continue;
        }
        if let Some(name) = arg.strip_suffix(':').or_else(|| glued_scheme(arg))
            && is_header_name(name)
        {
            let mut j = i + 1;
            if args
                .get(j)
                .is_some_and(|scheme| AUTH_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()))
            {
                j += 1;
            }
            if let Some(value) = args.get(j) {
                marks[j].push(0..value.len());
            }
            i = j;
        }
        i += 1;
    }
}

/// `Authorization:Basic` written without a space: the header name.
fn glued_scheme(arg: &str) -> Option<&str> {
    let (name, scheme) = arg.split_once(':')?;
    AUTH_SCHEMES
        .contains(&scheme.to_ascii_lowercase().as_str())
        .then_some(name)
}

fn is_header_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && (lower.ends_with("authorization")
            || lower.ends_with("cookie")
            || names::is_secret_name(name))
}

/// Where commands start: argv[0], and each later argument naming a program of the
/// table (`sudo -u app mysql`, `docker exec db mysql`, `-- mysql`), unless it is the
/// value of a long option (`docker run --name mysql -p 3306:3306`).
fn commands(args: &[&str]) -> Vec<(usize, usize)> {
    let mut starts = vec![0];
    for i in 1..args.len() {
        let previous = args[i - 1];
        let after_long_option =
            previous.starts_with("--") && previous != "--" && !previous.contains('=');
        if !after_long_option && tools::find(args[i]).is_some() {
            starts.push(i);
        }
    }
    let ends = starts.iter().skip(1).copied().chain([args.len()]);
    starts.iter().copied().zip(ends).collect()
}

/// One command: a program and its arguments, `offset` its place in argv.
struct Command<'a> {
    args: &'a [&'a str],
    offset: usize,
    tool: Option<&'static Tool>,
    /// Letters of short option clusters (`-cb` gives `c`, `b`).
    shorts: String,
}

impl<'a> Command<'a> {
    fn new(args: &'a [&'a str], offset: usize) -> Self {
        let tool = args.first().and_then(|program| tools::find(program));
        let shorts = args
            .iter()
            .skip(1)
            .filter(|arg| {
                arg.len() > 1
                    && arg.starts_with('-')
                    && !arg.starts_with("--")
                    && arg[1..].chars().all(|c| c.is_ascii_alphabetic())
            })
            .flat_map(|arg| arg[1..].chars())
            .collect();
        Command {
            args,
            offset,
            tool,
            shorts,
        }
    }

    /// Marks this command's secrets in `marks` (indexed by argv position).
    fn apply(&self, marks: &mut [Vec<Range<usize>>]) {
        let mut mark = |i: usize, range: Range<usize>| {
            if !range.is_empty() {
                marks[self.offset + i].push(range);
            }
        };
        let args = self.args;
        let mut positionals: Vec<usize> = Vec::new();
        let mut options_end = false;
        let mut i = 1;
        while i < args.len() {
            let arg = args[i];
            if !options_end && arg == "--" {
                options_end = true;
                i += 1;
                continue;
            }
            if !options_end && arg.len() > 1 && (arg.starts_with('-') || self.is_slash_option(arg))
            {
                let words: Vec<&str> = positionals.iter().map(|&p| args[p]).collect();
                if let Some((flag_part, attach, inline)) = self.tool_flag(arg, &words) {
                    match inline {
                        Some(at) => part_ranges(flag_part, &arg[at..])
                            .into_iter()
                            .for_each(|r| mark(i, r.start + at..r.end + at)),
                        None if attach == Attach::Next && i + 1 < args.len() => {
                            part_ranges(flag_part, args[i + 1])
                                .into_iter()
                                .for_each(|r| mark(i + 1, r));
                            i += 1;
                        }
                        None => {}
                    }
                    i += 1;
                    continue;
                }
                let (name, inline) = match arg.split_once('=') {
                    Some((name, _)) => (name, Some(name.len() + 1)),
                    None => (arg, None),
                };
                if self
                    .tool
                    .is_some_and(|tool| tool.takes_value.contains(&name))
                {
                    i += if inline.is_some() { 1 } else { 2 };
                    continue;
                }
                if names::is_secret_name(name) {
                    match inline.filter(|&at| !names::is_switch(&arg[at..])) {
                        Some(at) => mark(i, at..arg.len()),
                        None if inline.is_none()
                            && i + 1 < args.len()
                            && !looks_like_option(args[i + 1])
                            && !names::is_switch(args[i + 1]) =>
                        {
                            mark(i + 1, 0..args[i + 1].len());
                            i += 1;
                        }
                        None => {}
                    }
                }
                i += 1;
                continue;
            }
            positionals.push(i);
            let subcommand = self.tool.is_some_and(|tool| {
                tool.positionals
                    .iter()
                    .any(|rule| rule.after.iter().any(|word| word.eq_ignore_ascii_case(arg)))
            });
            if !subcommand
                && names::is_secret_word(arg)
                && let Some(next) = args.get(i + 1)
                && !looks_like_option(next)
                && !next.starts_with(['/', '~', '.'])
            {
                mark(i + 1, 0..next.len());
                positionals.push(i + 1);
                i += 1;
            }
            i += 1;
        }
        if let Some(tool) = self.tool {
            for rule in tool.positionals {
                if let Some(at) = self.positional(rule, &positionals) {
                    part_ranges(rule.part, args[at])
                        .into_iter()
                        .for_each(|r| mark(at, r));
                }
            }
        }
    }

    /// Windows-style options of some tools (`xfreerdp /p:secret`).
    fn is_slash_option(&self, arg: &str) -> bool {
        self.tool.is_some_and(|tool| {
            tool.flags
                .iter()
                .flat_map(|flag| flag.names)
                .any(|name| name.starts_with('/') && arg.starts_with(name))
        })
    }

    /// The table's rule for option `arg`, given the positional words before it; returns
    /// the part, how the value attaches and where an inline value starts.
    fn tool_flag(&self, arg: &str, words: &[&str]) -> Option<(Part, Attach, Option<usize>)> {
        let tool = self.tool?;
        let applies = |after: &[&str]| subsequence(after, words).is_some();
        // Exact spelling or `--name=value` first, then a value glued to a short option.
        for flag in tool.flags.iter().filter(|flag| applies(flag.after)) {
            for name in flag.names {
                if arg == *name {
                    return Some((flag.part, flag.attach, None));
                }
                if arg.len() > name.len() + 1
                    && arg.starts_with(name)
                    && arg.as_bytes()[name.len()] == b'='
                {
                    return Some((flag.part, flag.attach, Some(name.len() + 1)));
                }
            }
        }
        // Tools with single-dash long options (`openssl -passin`, `vault -token`) take
        // no glued values: `-key` is an option there, not `-k` with `ey`.
        let single_dash = tool
            .flags
            .iter()
            .flat_map(|flag| flag.names)
            .any(|name| name.len() > 2 && name.starts_with('-') && !name.starts_with("--"));
        if single_dash
            || tool
                .takes_value
                .iter()
                .any(|name| arg.split('=').next() == Some(*name))
        {
            return None;
        }
        for flag in tool.flags.iter().filter(|flag| applies(flag.after)) {
            for name in flag.names {
                let short = name.len() == 2 && name.starts_with('-');
                let prefix = name.ends_with(':');
                if (short || prefix) && arg.len() > name.len() && arg.starts_with(name) {
                    return Some((flag.part, flag.attach, Some(name.len())));
                }
            }
        }
        None
    }

    /// The argv index of the positional `rule` designates, if present and its
    /// conditions hold.
    fn positional(&self, rule: &tools::Positional, positionals: &[usize]) -> Option<usize> {
        if !rule.with.chars().all(|c| self.shorts.contains(c))
            || rule.without.chars().any(|c| self.shorts.contains(c))
        {
            return None;
        }
        let words: Vec<&str> = positionals.iter().map(|&p| self.args[p]).collect();
        let from = subsequence(rule.after, &words)?;
        let rest = &positionals[from..];
        let &at = rest.get(rule.index)?;
        let holds = match rule.when {
            When::Always => true,
            When::NoEquals => !is_assignment(self.args[at]),
            When::KeyIsSecret => {
                rule.index > 0 && names::is_secret_key(self.args[rest[rule.index - 1]])
            }
            When::Last => rule.index + 1 == rest.len(),
        };
        holds.then_some(at)
    }
}

/// `name=value` with an identifier name.
pub(super) fn is_assignment(arg: &str) -> bool {
    arg.split_once('=').is_some_and(|(name, _)| {
        name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    })
}

/// Where `after` ends as a case-insensitive subsequence of `words` (0 when empty).
fn subsequence(after: &[&str], words: &[&str]) -> Option<usize> {
    let mut at = 0;
    for wanted in after {
        let found = words[at..]
            .iter()
            .position(|word| word.eq_ignore_ascii_case(wanted))?;
        at += found + 1;
    }
    Some(at)
}

/// An option rather than a value (`--verbose`, `-v`): letters and dashes only. A value
/// such as `-Zk8!mQ` or `-abc123` is not one.
fn looks_like_option(arg: &str) -> bool {
    let body = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'));
    body.is_some_and(|body| {
        !body.is_empty()
            && body.starts_with(|c: char| c.is_ascii_alphabetic())
            && body.chars().all(|c| c.is_ascii_alphabetic() || c == '-')
    }) || arg.starts_with("--") && arg.len() > 2 && arg.contains('=')
}

/// The range of `value` a [`Part`] hides.
fn part_ranges(part: Part, value: &str) -> Option<Range<usize>> {
    let whole = Some(0..value.len());
    match part {
        Part::Whole => whole,
        Part::Keep => None,
        Part::After(separator) => value
            .find(separator)
            .map(|at| at + separator.len_utf8()..value.len()),
        Part::PassPrefix => {
            if value.starts_with("pass:") {
                Some(5..value.len())
            } else {
                None
            }
        }
        Part::SlashPassword => {
            let start = match value.split_once('=') {
                Some((name, _)) if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                    name.len() + 1
                }
                _ => 0,
            };
            let body = &value[start..];
            let slash = body.find('/')?;
            let user = &body[..slash];
            if user.is_empty() || user.contains(['@', ':']) {
                return None;
            }
            let rest = &body[slash + 1..];
            // The connect identifier follows the last `@`: a password may hold one.
            let end = rest.rfind('@').unwrap_or(rest.len());
            Some(start + slash + 1..start + slash + 1 + end)
        }
        Part::Literal => match value.split_once('=') {
            Some((name, _)) if names::is_identity_name(name) => None,
            Some((name, _)) => Some(name.len() + 1..value.len()),
            None => whole,
        },
        Part::IfAssignment => {
            if value.contains('=') {
                whole
            } else {
                None
            }
        }
    }
}
