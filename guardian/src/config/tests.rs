use std::path::Path;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("test.toml"), text)
}

fn error_position(text: &str) -> (usize, usize, String) {
    match parse(text) {
        Err(ConfigError::Invalid {
            line,
            column,
            message,
            ..
        }) => (line, column, message),
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

#[test]
fn empty_config_is_valid_and_kills_nothing() {
    let config = parse("").expect("empty config");
    assert!(config.rules.is_empty());
    assert!(config.orphan_rules.is_empty());
    assert_eq!(config.daemon.source, SourceChoice::Auto);
    assert!(config.daemon.listen.ip().is_loopback());
}

#[test]
fn shipped_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/guardian.toml");
    Config::load(&path).expect("shipped config parses");
}

#[test]
fn unknown_key_is_rejected_with_line_and_column() {
    let (line, column, message) = error_position("[daemon]\nscan_interval = \"1s\"\nbogus = 1\n");
    assert_eq!((line, column), (3, 1));
    assert!(message.contains("bogus"), "{message}");
}

#[test]
fn bad_threshold_names_its_position() {
    let text = "[[rule]]\nname = \"a\"\nthreshold = \"lots\"\n";
    let (line, column, message) = error_position(text);
    assert_eq!((line, column), (3, 13));
    assert!(message.contains("lots"), "{message}");
}

#[test]
fn bad_regex_is_rejected() {
    let text =
        "[[rule]]\nname = \"a\"\nthreshold = \"1GiB\"\nmatch = { cmdline = \"(unclosed\" }\n";
    let (line, _, message) = error_position(text);
    assert_eq!(line, 4);
    assert!(message.contains("regular expression"), "{message}");
}

#[test]
fn duplicate_rule_names_are_rejected_at_the_second_rule() {
    let text = "[[rule]]\nname = \"a\"\nthreshold = \"1GiB\"\n\n[[rule]]\nname = \"a\"\nthreshold = \"2GiB\"\n";
    let (line, _, message) = error_position(text);
    // The second rule's table starts on line 5.
    assert_eq!(line, 5);
    assert!(message.contains("more than one rule"), "{message}");
}

#[test]
fn zero_scan_interval_is_rejected_at_its_key() {
    let (line, column, _) = error_position("[daemon]\n  scan_interval = \"0s\"\n");
    assert_eq!((line, column), (2, 3));
}

#[test]
fn rules_with_all_matchers_parse() {
    let text = r#"
[[rule]]
name = "node-leak"
threshold = "10%"
sustain = "30s"
scope = "any"
action = "kill"
match = { comm = ["node"], cmdline = "dist/main", user = ["root", "1000"], cgroup = "/system.slice/*", unit = "api*.service" }
dry_run = true

[[orphan_rule]]
name = "orphans"
older_than = "10m"
match = { cmdline = "npm run" }
"#;
    let config = parse(text).expect("valid");
    let rule = config.rules().next().expect("one rule");
    assert_eq!(rule.threshold, Threshold::PercentOfMemTotal(10.0));
    assert_eq!(rule.scope, Scope::Any);
    assert_eq!(rule.action, KillAction::Kill);
    assert!(
        rule.matchers
            .cmdline
            .as_ref()
            .is_some_and(|p| p.is_match("node dist/main.js"))
    );
    assert_eq!(config.orphan_rules().count(), 1);
}

#[test]
fn missing_file_names_the_path() {
    let error = Config::load(Path::new("/nonexistent/guardian.toml")).expect_err("missing");
    assert!(error.to_string().contains("/nonexistent/guardian.toml"));
}

#[test]
fn slow_window_beyond_the_longest_detector_window_is_rejected() {
    let text = "[trends]\nenabled = true\n  slow_window = \"65m\"\n";
    let (line, column, message) = error_position(text);
    assert_eq!((line, column), (3, 3));
    assert!(message.contains("slow_window"), "{message}");
    assert!(message.contains("64m"), "{message}");
    parse("[trends]\nslow_window = \"64m\"\n").expect("64m is the longest window");
}

#[test]
fn ring_buffer_bytes_must_be_a_power_of_two_of_a_page_or_more() {
    for bad in ["3KiB", "2KiB", "5000", "2GiB"] {
        let text = format!("[daemon]\nring_buffer_bytes = \"{bad}\"\n");
        let (line, column, message) = error_position(&text);
        assert_eq!((line, column), (2, 1), "{bad}");
        assert!(message.contains("power of two"), "{bad}: {message}");
    }
    let config = parse("[daemon]\nring_buffer_bytes = \"4KiB\"\n").expect("one page");
    assert_eq!(config.daemon.ring_buffer_bytes.0, 4096);
}

#[test]
fn pressure_rules_parse_every_trigger() {
    let config = parse(
        "[[pressure_rule]]\nname = \"a\"\nmem_available_below = \"5%\"\nsustain = \"10s\"\n\
         [[pressure_rule]]\nname = \"b\"\nswap_free_below = \"512MiB\"\n\
         [[pressure_rule]]\nname = \"c\"\npsi_some_above = 20\npsi_window = \"60s\"\n\
         [[pressure_rule]]\nname = \"d\"\npsi_full_above = 5.5\npsi_cgroup = \"/system.slice/app.service\"\n\
         scope = \"any\"\nmatch = { unit = \"app.service\" }\naction = \"kill\"\ndry_run = true\n",
    )
    .expect("pressure rules");
    assert_eq!(config.pressure_rules().count(), 4);
    let d = config.pressure_rules().nth(3).expect("rule d");
    assert_eq!(d.psi_full_above, Some(5.5));
    assert_eq!(d.cooldown.0, std::time::Duration::from_secs(30));
}

#[test]
fn pressure_rules_need_exactly_one_valid_trigger() {
    let cases = [
        (
            "[[pressure_rule]]\nname = \"none\"\n",
            "exactly one trigger",
        ),
        (
            "[[pressure_rule]]\nname = \"two\"\nmem_available_below = \"1GiB\"\npsi_some_above = 10\n",
            "exactly one trigger",
        ),
        (
            "[[pressure_rule]]\nname = \"pct\"\npsi_full_above = 150\n",
            "0 to 100",
        ),
        (
            "[[pressure_rule]]\nname = \"rel\"\npsi_some_above = 10\npsi_cgroup = \"app/../x\"\n",
            "absolute path",
        ),
        (
            "[[pressure_rule]]\nname = \"nopsi\"\nmem_available_below = \"1GiB\"\npsi_cgroup = \"/app\"\n",
            "psi_cgroup needs",
        ),
    ];
    for (text, expected) in cases {
        let text = format!("[daemon]\nscan_interval = \"1s\"\n\n{text}");
        let (line, _, message) = error_position(&text);
        assert_eq!(line, 4, "{text}");
        assert!(message.contains(expected), "{text}: {message}");
    }
    let (line, column, message) =
        error_position("[[pressure_rule]]\nname = \"x\"\nmem_available_below = \"0%\"\n");
    assert_eq!((line, column), (3, 23));
    assert!(message.contains("percentage"), "{message}");
}

#[test]
fn pressure_rule_names_share_the_rule_namespace() {
    let (_, _, message) = error_position(
        "[[rule]]\nname = \"a\"\nthreshold = \"1GiB\"\n[[pressure_rule]]\nname = \"a\"\nmem_available_below = \"1GiB\"\n",
    );
    assert!(message.contains("more than one rule"), "{message}");
}

#[test]
fn hooks_parse_with_defaults() {
    let config = parse(
        "[[hook]]\nname = \"pager\"\nevents = [\"kill\", \"oom\", \"leak\", \"imminent\", \"pressure\"]\n\
         command = [\"/usr/local/bin/notify\", \"--quiet\"]\nurl = \"http://127.0.0.1:9000/x\"\n",
    )
    .expect("hook config");
    let hook = config.hooks().next().expect("one hook");
    assert_eq!(hook.events, HookEvent::ALL.to_vec());
    assert_eq!(hook.timeout.0, std::time::Duration::from_secs(5));
    assert_eq!((hook.retries, hook.max_concurrent), (2, 4));
}

#[test]
fn bad_hooks_are_rejected_naming_the_hook_and_the_field() {
    let hook = |body: &str| format!("[daemon]\n\n[[hook]]\nname = \"pager\"\n{body}\n");
    for (body, words) in [
        ("events = [\"kill\"]", "needs a command, a url or both"),
        ("events = []\nurl = \"http://h/\"", "events"),
        (
            "events = [\"kill\"]\ncommand = [\"notify\"]",
            "absolute path",
        ),
        (
            "events = [\"kill\"]\ncommand = []",
            "command must name a program",
        ),
        (
            "events = [\"kill\"]\nurl = \"https://h/\"",
            "url \"https://h/\" must be an http://",
        ),
        (
            "events = [\"kill\"]\nurl = \"http://h/\"\ntimeout = \"0s\"",
            "timeout",
        ),
        (
            "events = [\"kill\"]\nurl = \"http://h/\"\nretries = 11",
            "retries",
        ),
        (
            "events = [\"kill\"]\nurl = \"http://h/\"\nmax_concurrent = 0",
            "max_concurrent",
        ),
    ] {
        let (line, _, message) = error_position(&hook(body));
        assert_eq!(line, 3, "{body}: {message}");
        assert!(message.contains("hook \"pager\""), "{body}: {message}");
        assert!(message.contains(words), "{body}: {message}");
    }
    let (_, _, message) = error_position(&hook("events = [\"bogus\"]\nurl = \"http://h/\""));
    assert!(message.contains("bogus"), "{message}");
    let twice = format!(
        "{}{}",
        hook("events = [\"kill\"]\nurl = \"http://h/\""),
        hook("events = [\"oom\"]\nurl = \"http://h/\"").replace("[daemon]\n", "")
    );
    let (_, _, message) = error_position(&twice);
    assert!(message.contains("used by more than one hook"), "{message}");
}
