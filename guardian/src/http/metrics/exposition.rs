//! The two text formats and which one a scraper gets. prometheus-client writes
//! OpenMetrics; scrapers that prefer `text/plain` (the 0.0.4 format: older Prometheus
//! servers, `promtool check metrics`, many agents) get the same samples rewritten, which
//! only touches metadata lines: counters are typed under their `_total` name, info
//! metrics become gauges named `_info`, `# UNIT` and `# EOF` go.

/// A text exposition format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    /// The classic Prometheus text format, version 0.0.4.
    Text,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }

    /// The format an `Accept` header prefers: OpenMetrics when it is acceptable with at
    /// least the quality of `text/plain`, the classic format otherwise (and when the
    /// header is absent or says only `*/*`, as curl and most agents do, so that
    /// `curl .../metrics | promtool check metrics` works).
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let mut openmetrics = 0.0f32;
        let mut text = 0.0f32;
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let quality = parts
                .filter_map(|param| param.split_once('='))
                .find(|(key, _)| key.trim().eq_ignore_ascii_case("q"))
                .and_then(|(_, value)| value.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => openmetrics = openmetrics.max(quality),
                "text/plain" => text = text.max(quality),
                _ => {}
            }
        }
        if openmetrics > 0.0 && openmetrics >= text {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// Rewrites prometheus-client's OpenMetrics output as the 0.0.4 text format.
pub fn to_classic(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // HELP comes before TYPE, and only TYPE says whether the name must change.
    let mut pending_help: Option<&str> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            flush_help(&mut out, pending_help.take(), "");
            pending_help = Some(rest);
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.rsplit_once(' ').unwrap_or((rest, "untyped"));
            let (suffix, kind) = match kind {
                "counter" => ("_total", "counter"),
                "info" => ("_info", "gauge"),
                "gauge" | "histogram" | "summary" => ("", kind),
                _ => ("", "untyped"),
            };
            flush_help(&mut out, pending_help.take(), suffix);
            out.push_str("# TYPE ");
            out.push_str(name);
            out.push_str(suffix);
            out.push(' ');
            out.push_str(kind);
            out.push('\n');
        } else if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        } else {
            flush_help(&mut out, pending_help.take(), "");
            out.push_str(line);
            out.push('\n');
        }
    }
    flush_help(&mut out, pending_help, "");
    out
}

fn flush_help(out: &mut String, help: Option<&str>, suffix: &str) {
    let Some(help) = help else { return };
    let (name, text) = help.split_once(' ').unwrap_or((help, ""));
    out.push_str("# HELP ");
    out.push_str(name);
    out.push_str(suffix);
    out.push(' ');
    out.push_str(text);
    out.push('\n');
}
