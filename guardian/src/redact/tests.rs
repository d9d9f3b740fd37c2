use super::*;

/// (input, expected) pairs: every secret form the issue names, and look-alikes that
/// must be kept.
const CASES: &[(&str, &str)] = &[
    // Secret flags, `--k v` and `--k=v`.
    (
        "app --password hunter2 --port 80",
        "app --password [REDACTED] --port 80",
    ),
    ("app --password=hunter2", "app --password=[REDACTED]"),
    ("app --passwd s3cret", "app --passwd [REDACTED]"),
    ("app --token abc123", "app --token [REDACTED]"),
    ("app --token=abc123", "app --token=[REDACTED]"),
    ("app --secret xyz", "app --secret [REDACTED]"),
    (
        "app --api-key=K1 --api_key K2",
        "app --api-key=[REDACTED] --api_key [REDACTED]",
    ),
    (
        "app --client-secret cs --clientSecret=cs2",
        "app --client-secret [REDACTED] --clientSecret=[REDACTED]",
    ),
    ("mongod --auth admin:pw", "mongod --auth [REDACTED]"),
    (
        "app --auth-token t --authkey=k",
        "app --auth-token [REDACTED] --authkey=[REDACTED]",
    ),
    (
        "app --db-password p --access-token=t",
        "app --db-password [REDACTED] --access-token=[REDACTED]",
    ),
    ("app -password p", "app -password [REDACTED]"),
    (
        "java -Ddb.password=p -Dhttp.port=8080 -jar app.jar",
        "java -Ddb.password=[REDACTED] -Dhttp.port=8080 -jar app.jar",
    ),
    // A secret flag followed by another flag takes no value.
    ("app --token --verbose", "app --token --verbose"),
    // Names that only point at secrets, or negate them, keep their values.
    (
        "app --password-file /run/secrets/db --token-file=/t",
        "app --password-file /run/secrets/db --token-file=/t",
    ),
    ("app --no-auth server.js", "app --no-auth server.js"),
    ("git commit --author alice", "git commit --author alice"),
    ("app --auth-method kerberos", "app --auth-method kerberos"),
    // Environment-like arguments.
    (
        "docker run -e DB_PASSWORD=p -e MODE=prod img",
        "docker run -e DB_PASSWORD=[REDACTED] -e MODE=prod img",
    ),
    (
        "docker run --env API_TOKEN=t --env=AWS_SECRET_ACCESS_KEY=k img",
        "docker run --env API_TOKEN=[REDACTED] --env=AWS_SECRET_ACCESS_KEY=[REDACTED] img",
    ),
    (
        "JWT_SECRET=abc node dist/main",
        "JWT_SECRET=[REDACTED] node dist/main",
    ),
    (
        "STRIPE_KEY=k GITHUB_CREDENTIALS=c AUTH_HEADER=h node",
        "STRIPE_KEY=[REDACTED] GITHUB_CREDENTIALS=[REDACTED] AUTH_HEADER=[REDACTED] node",
    ),
    (
        "PATH=/usr/bin MONKEY=banana PWD=/root node",
        "PATH=/usr/bin MONKEY=banana PWD=/root node",
    ),
    (
        "helm install --set auth.password=p --set replicas=3",
        "helm install --set auth.password=[REDACTED] --set replicas=3",
    ),
    (
        "docker run -ePASSWORD=p img",
        "docker run -ePASSWORD=[REDACTED] img",
    ),
    // Headers.
    (
        "curl -H Authorization: Bearer abc.def https://x",
        "curl -H Authorization: Bearer [REDACTED] https://x",
    ),
    (
        "curl -H authorization:Basic dXNlcjpwYXNz https://x",
        "curl -H authorization:Basic [REDACTED] https://x",
    ),
    (
        "curl -H Authorization: abc https://x",
        "curl -H Authorization: [REDACTED] https://x",
    ),
    (
        "curl -H X-Api-Key: k1 -H Cookie: sid=1 -H Accept: json",
        "curl -H X-Api-Key: [REDACTED] -H Cookie: [REDACTED] -H Accept: json",
    ),
    // Tokens recognisable by shape.
    (
        "node app.js eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "node app.js [REDACTED]",
    ),
    (
        "aws --key AKIAIOSFODNN7EXAMPLE s3 ls",
        "aws --key [REDACTED] s3 ls",
    ),
    ("tool ASIAY34FZKBOKMUTVV7A", "tool [REDACTED]"),
    ("tool AKIASHORT", "tool AKIASHORT"),
    (
        "git clone ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "git clone [REDACTED]",
    ),
    ("bot xoxb-1234-5678-abcdef", "bot [REDACTED]"),
    (
        "tool -----BEGIN RSA PRIVATE KEY----- MIIEowIBAAKCAQEA abc -----END RSA PRIVATE KEY----- --next",
        "tool -----BEGIN RSA PRIVATE KEY-----[REDACTED]-----END RSA PRIVATE KEY----- --next",
    ),
    (
        "tool -----BEGIN PRIVATE KEY----- MIIEvQ cut",
        "tool -----BEGIN PRIVATE KEY-----[REDACTED]",
    ),
    // URLs.
    (
        "psql postgres://app:hunter2@db:5432/app",
        "psql postgres://app:[REDACTED]@db:5432/app",
    ),
    (
        "git clone https://x-access-token:t0k@github.com/o/r",
        "git clone https://x-access-token:[REDACTED]@github.com/o/r",
    ),
    (
        "curl https://api/x?access_token=t&page=2",
        "curl https://api/x?access_token=[REDACTED]&page=2",
    ),
    (
        "curl https://b.s3/o?X-Amz-Signature=abc&X-Amz-Credential=c&X-Amz-Date=d",
        "curl https://b.s3/o?X-Amz-Signature=[REDACTED]&X-Amz-Credential=[REDACTED]&X-Amz-Date=d",
    ),
    (
        "curl https://example.com/path",
        "curl https://example.com/path",
    ),
    // curl -u user:password, not docker -u uid:gid.
    (
        "curl -u alice:s3cret https://x",
        "curl -u alice:[REDACTED] https://x",
    ),
    (
        "curl --user=alice:s3cret https://x",
        "curl --user=alice:[REDACTED] https://x",
    ),
    ("docker run -u 1000:1000 img", "docker run -u 1000:1000 img"),
    // JSON arguments.
    (
        r#"app --config {"password":"p","port":"80"}"#,
        r#"app --config {"password":"[REDACTED]","port":"80"}"#,
    ),
    // NUL-separated /proc cmdline.
    ("app\0--token\0t", "app --token [REDACTED]"),
    (
        "mysql\0--password\0correct horse\0-h\0db\0",
        "mysql --password [REDACTED] -h db",
    ),
    // Nothing to hide.
    ("node dist/main --port 3000", "node dist/main --port 3000"),
    ("", ""),
];

#[test]
fn table_of_cases() {
    let mut failures = Vec::new();
    for (input, expected) in CASES {
        let got = redact_cmdline(input);
        if got != *expected {
            failures.push(format!(
                "  {input:?}\n    got      {got:?}\n    expected {expected:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "redaction mismatches:\n{}",
        failures.join("\n")
    );
}

#[test]
fn redaction_is_idempotent() {
    for (input, _) in CASES {
        let once = redact_cmdline(input);
        assert_eq!(redact_cmdline(&once), once, "redacting {input:?} twice");
    }
}

#[test]
fn secret_names() {
    for name in [
        "password",
        "DB_PASSWORD",
        "apiKey",
        "--client-secret",
        "AUTH",
        "x-auth-token",
        "private_key",
    ] {
        assert!(is_secret_name(name), "{name} should be secret");
    }
    for name in [
        "port",
        "author",
        "authority",
        "monkey",
        "--no-password",
        "token_file",
        "PWD",
        "keyboard",
    ] {
        assert!(!is_secret_name(name), "{name} should not be secret");
    }
}

#[test]
fn argv_keeps_each_argument_whole() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["mysql", "--password", "correct horse battery"],
            "mysql --password [REDACTED]",
        ),
        (
            &["app", "--password=a b c", "--port", "80"],
            "app --password=[REDACTED] --port 80",
        ),
        (
            &["env", "DB_PASSWORD=a b", "node"],
            "env DB_PASSWORD=[REDACTED] node",
        ),
        (
            &["curl", "-H", "Authorization: Bearer abc", "https://x"],
            "curl -H Authorization: Bearer [REDACTED] https://x",
        ),
        (&["app", "--token", "--verbose"], "app --token --verbose"),
        (
            &["git", "clone", "https://u:p@h/r"],
            "git clone https://u:[REDACTED]@h/r",
        ),
    ];
    for (argv, expected) in cases {
        assert_eq!(redact_argv(argv), *expected, "{argv:?}");
    }
    // The joined form of the same arguments agrees wherever values hold no spaces.
    for (input, expected) in CASES.iter().filter(|(input, _)| !input.contains('\0')) {
        let argv: Vec<&str> = input.split(' ').collect();
        if !input.contains("PRIVATE KEY") && !input.contains(": ") {
            assert_eq!(redact_argv(&argv), *expected, "{input:?}");
        }
    }
}
