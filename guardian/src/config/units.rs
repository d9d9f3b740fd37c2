//! Value types that parse from human-written strings ("300MiB", "10%", "5s", a regex)
//! while deserializing, so a bad value is reported with its key, line and column.

use std::{fmt, str::FromStr, time::Duration};

use serde::{Deserialize, Deserializer, de::Error as _};

/// A size in bytes written as "300MiB", "300 MB", "4096" or a bare integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub u64);

impl FromStr for Bytes {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        bytesize::ByteSize::from_str(text.trim())
            .map(|size| Bytes(size.as_u64()))
            .map_err(|error| format!("invalid size {text:?} ({error}); write e.g. \"300MiB\""))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        bytes_or_text(deserializer, Bytes)
    }
}

/// Deserializes a bare integer of bytes through `from_bytes`, or text through `FromStr`
/// (its message becomes the error, placed at the value by the TOML parser).
fn bytes_or_text<'de, D, T>(deserializer: D, from_bytes: fn(u64) -> T) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err = String>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Text(String),
    }
    match Raw::deserialize(deserializer)? {
        Raw::Int(bytes) => Ok(from_bytes(bytes)),
        Raw::Text(text) => text.parse().map_err(D::Error::custom),
    }
}

/// A memory threshold: absolute, or a share of the host's MemTotal.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Threshold {
    Bytes(u64),
    /// Percent of MemTotal, in (0, 100].
    PercentOfMemTotal(f64),
}

impl Threshold {
    /// The threshold in bytes on a host with `mem_total` bytes; none for a percentage
    /// while MemTotal is unknown (0), which must never turn "10%" into 0 bytes.
    pub fn resolve(self, mem_total: u64) -> Option<u64> {
        match self {
            Threshold::Bytes(bytes) => Some(bytes),
            Threshold::PercentOfMemTotal(_) if mem_total == 0 => None,
            Threshold::PercentOfMemTotal(percent) => {
                Some((mem_total as f64 * percent / 100.0) as u64)
            }
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Threshold::Bytes(bytes) => {
                write!(f, "{}", bytesize::ByteSize::b(*bytes).display().iec())
            }
            Threshold::PercentOfMemTotal(percent) => write!(f, "{percent}% of MemTotal"),
        }
    }
}

impl FromStr for Threshold {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        match text.strip_suffix('%') {
            Some(number) => {
                let percent: f64 = number
                    .trim()
                    .parse()
                    .map_err(|_| format!("invalid percentage {text:?}; write e.g. \"10%\""))?;
                if !(percent > 0.0 && percent <= 100.0) {
                    return Err(format!(
                        "percentage {text:?} must be above 0 and at most 100"
                    ));
                }
                Ok(Threshold::PercentOfMemTotal(percent))
            }
            None => Ok(Threshold::Bytes(text.parse::<Bytes>()?.0)),
        }
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        bytes_or_text(deserializer, Threshold::Bytes)
    }
}

/// A duration written as "5s", "10m", "1h 30m" or "250ms".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Interval(pub Duration);

impl FromStr for Interval {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(text.trim())
            .map(Interval)
            .map_err(|error| {
                format!("invalid duration {text:?} ({error}); write e.g. \"10s\" or \"5m\"")
            })
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(D::Error::custom)
    }
}

/// A regular expression, compiled when the config is read.
#[derive(Clone, Debug)]
pub struct Pattern(pub regex::Regex);

impl Pattern {
    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        regex::Regex::new(&text)
            .map(Pattern)
            .map_err(|error| D::Error::custom(format!("invalid regular expression: {error}")))
    }
}

/// A shell-style glob ("docker-*.scope", "/system.slice/*"), compiled when read.
#[derive(Clone, Debug)]
pub struct Glob(pub glob::Pattern);

impl Glob {
    pub fn matches(&self, text: &str) -> bool {
        self.0.matches(text)
    }
}

impl<'de> Deserialize<'de> for Glob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        glob::Pattern::new(&text)
            .map(Glob)
            .map_err(|error| D::Error::custom(format!("invalid glob {text:?}: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_si_and_iec_units() {
        assert_eq!("300MiB".parse::<Bytes>(), Ok(Bytes(300 * 1024 * 1024)));
        assert_eq!("300 MB".parse::<Bytes>(), Ok(Bytes(300_000_000)));
        assert!("lots".parse::<Bytes>().is_err());
    }

    #[test]
    fn thresholds_accept_percentages_of_memtotal() {
        assert_eq!(
            "10%".parse::<Threshold>(),
            Ok(Threshold::PercentOfMemTotal(10.0))
        );
        assert_eq!(Threshold::PercentOfMemTotal(10.0).resolve(1000), Some(100));
        assert_eq!(Threshold::PercentOfMemTotal(10.0).resolve(0), None);
        assert_eq!(Threshold::Bytes(7).resolve(0), Some(7));
        assert!("0%".parse::<Threshold>().is_err());
        assert!("101%".parse::<Threshold>().is_err());
    }

    #[test]
    fn intervals_parse_humantime() {
        assert_eq!(
            "1m 30s".parse::<Interval>(),
            Ok(Interval(Duration::from_secs(90)))
        );
        assert!("soon".parse::<Interval>().is_err());
    }
}
