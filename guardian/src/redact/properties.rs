//! Property tests: redaction is idempotent; a random secret placed wherever the tool
//! table says a program takes one never survives, as an argument vector or as a
//! one-string command line; random look-alikes pass unchanged.

use proptest::prelude::*;

use super::{redact_args, redact_argv, redact_text};

/// Command lines with `{}` where the table (or a generic rule) says a secret sits.
const PLACES: &[&str] = &[
    "mysql -u app -p{} shop",
    "mysql --password={} -h db",
    "mysqldump -uroot -p{} db",
    "redis-cli -h cache -a {} ping",
    "redis-cli --pass {} info",
    "redis-server --requirepass {}",
    "sqlcmd -S s -U sa -P {}",
    "sqlplus scott/{}@db",
    "smbclient //fs/s -U alice%{}",
    "ldapsearch -x -D cn=a -w {} -b dc=x",
    "sshpass -p {} ssh host",
    "htpasswd -b /etc/htp admin {}",
    "htpasswd -nb admin {}",
    "docker login -u ci -p {} reg",
    "podman login --password {} quay.io",
    "aws configure set aws_secret_access_key {}",
    "az login -u u -p {}",
    "vault login {}",
    "vault kv get -token={} secret/x",
    "consul agent -encrypt={}",
    "nomad agent -encrypt {}",
    "mc alias set s3 https://s3 AKID {}",
    "kubectl --token {} get pods",
    "kubeadm join h:6443 --token {}",
    "k3s agent --token {}",
    "curl -u user:{} https://x",
    "curl --oauth2-bearer {} https://x",
    "wget --http-password={} http://x",
    "openssl rsa -passin pass:{} -in k",
    "snmpwalk -v2c -c {} host",
    "ipmitool -H h -U u -P {} power status",
    "mosquitto_pub -u u -P {} -t t -m m",
    "zip -P {} a.zip f",
    "7z a -p{} a.7z f",
    "keytool -list -storepass {}",
    "rabbitmqctl add_user app {}",
    "app --password {}",
    "app --api-key={}",
    "DB_PASSWORD={} node main.js",
    "psql postgresql://app:{}@db/app",
    "git clone https://u:{}@git.example/r.git",
];

/// A secret: printable, without quotes or spaces (the shell forms quote it anyway), at
/// least six characters so it cannot occur by chance elsewhere in the line. Not an
/// option word, and not `name=value` (where a tool takes both, as `vault login` does,
/// that is an assignment).
fn secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!@%^*_+=.,~-]{6,24}".prop_filter("not an option or an assignment", |s| {
        !s.starts_with('-') && !super::command::is_assignment(s)
    })
}

fn argv_of(template: &str, secret: &str) -> Vec<String> {
    template
        .split(' ')
        .map(|word| word.replace("{}", secret))
        .collect()
}

/// Things that look like values but are not secrets.
fn lookalike() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{40}",
        "[0-9a-f]{64}",
        "sha256:[0-9a-f]{64}",
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[0-9]{1,10}",
        "[0-9]{1,4}(K|M|G|Ki|Mi|Gi|KiB|MiB|GiB)",
        "(/[a-z0-9_.-]{1,12}){1,6}",
        "https://[a-z]{3,10}\\.example\\.com(/[a-z0-9]{1,8}){0,3}",
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}:[0-9]{2,5}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_secret_where_a_tool_takes_one_never_survives(
        place in prop::sample::select(PLACES),
        secret in secret(),
    ) {
        let argv = argv_of(place, &secret);
        let redacted = redact_argv(&argv);
        prop_assert!(!redacted.contains(&secret), "{argv:?} -> {redacted}");
        let line = shlex::try_join(argv.iter().map(String::as_str)).expect("no NUL");
        let text = redact_text(&line);
        prop_assert!(!text.contains(&secret), "{line} -> {text}");
        // Inside a shell script and as a title rewritten into one argument.
        let script = vec!["sh".to_string(), "-c".to_string(), line.clone()];
        let redacted = redact_argv(&script);
        prop_assert!(!redacted.contains(&secret), "{script:?} -> {redacted}");
        let title = redact_argv(&[argv.join(" ")]);
        prop_assert!(!title.contains(&secret), "{argv:?} as a title -> {title}");
    }

    #[test]
    fn redaction_is_idempotent(
        place in prop::sample::select(PLACES),
        secret in secret(),
        extra in prop::collection::vec("[ -~]{0,16}", 0..4),
    ) {
        let mut argv = argv_of(place, &secret);
        argv.extend(extra);
        let once = redact_args(&argv);
        prop_assert_eq!(redact_args(&once), once.clone());
        let line = shlex::try_join(argv.iter().map(String::as_str)).expect("no NUL");
        let text = redact_text(&line);
        prop_assert_eq!(redact_text(&text), text);
    }

    #[test]
    fn lookalikes_pass_unchanged(
        values in prop::collection::vec(lookalike(), 1..5),
        program in prop::sample::select(&["app", "mysql", "ssh", "docker", "curl", "git", "redis-cli"][..]),
        flag in prop::sample::select(&["--port", "-P", "--size", "--id", "--digest", "--path", "--url", "--token-ttl", "-n"][..]),
    ) {
        let mut argv = vec![program.to_string()];
        for value in values {
            argv.push(flag.to_string());
            argv.push(value);
        }
        prop_assert_eq!(redact_args(&argv), argv.clone());
        let line = argv.join(" ");
        prop_assert_eq!(redact_text(&line), line);
    }
}
