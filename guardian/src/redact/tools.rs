//! Where command-line tools take their secrets, from their manuals: data, not code.
//!
//! A flag or position means a secret for one tool and something else for another
//! (`-p` is a password for `mysql` and `sshpass` but a port for `ssh` and `redis-cli`;
//! `-P` a password for `sqlcmd` and `ipmitool` but a port for `mysql`; `-a` a password
//! for `redis-cli`, a flag for `grep`; `-w` a password for the LDAP tools, a width
//! elsewhere), so the table is keyed by program name (argv[0]'s basename).

/// One program family.
pub(super) struct Tool {
    /// Basenames of argv[0] (or of a nested command: `sudo mysql`, `-- mysql`).
    pub names: &'static [&'static str],
    /// Options whose value (or part of it) is secret, or explicitly not (`Keep`).
    pub flags: &'static [Flag],
    /// Positional arguments that are secret.
    pub positionals: &'static [Positional],
    /// Other options that take a separate value, so positions are counted right.
    pub takes_value: &'static [&'static str],
}

/// An option carrying a secret.
pub(super) struct Flag {
    /// Spellings: `-p`, `--password`, `-password`, `/p:`.
    pub names: &'static [&'static str],
    /// Subcommand words that must come before it (`docker login -p`, not `docker run -p`).
    pub after: &'static [&'static str],
    pub attach: Attach,
    pub part: Part,
}

/// How the value is attached.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Attach {
    /// Next argument, `--name=value`, or glued to a short option (`-pVALUE`).
    Next,
    /// Only glued or after `=`: alone the option prompts (`mysql -p`, `--password`).
    Glued,
}

/// Which part of a value is secret.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Part {
    Whole,
    /// After the first separator: `user:password`, `user%password`, `user,password`.
    After(char),
    /// Nothing: the option names a file or a source (`-y FILE`, `--auth-user-pass FILE`).
    Keep,
    /// After `pass:` only (OpenSSL `-passin pass:x`; `file:`, `env:`, `fd:` are kept).
    PassPrefix,
    /// `user/password@db`, optionally after `userid=` (Oracle tools).
    SlashPassword,
    /// `name=value`: the value, unless the name is an identity (`--from-literal`).
    Literal,
    /// Only when it holds `name=value` pairs (curl `-b`: a cookie string, not a file).
    IfAssignment,
}

/// A positional secret: the `index`-th positional after the `after` words.
pub(super) struct Positional {
    /// Subcommand words, in order, case-insensitive (`["configure", "set"]`).
    pub after: &'static [&'static str],
    pub index: usize,
    /// Short options that must all be present (`b` for `htpasswd -b`).
    pub with: &'static str,
    /// Short options that must all be absent (`n` for `htpasswd -n`).
    pub without: &'static str,
    pub when: When,
    pub part: Part,
}

/// An extra condition on a positional.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum When {
    Always,
    /// Not a `name=value` argument (`vault login TOKEN`, not `vault login password=x`).
    NoEquals,
    /// The positional before it names a secret (`config set KEY VALUE`).
    KeyIsSecret,
    /// It is the last positional (`AUTH PASSWORD`, not the user of `AUTH USER PASSWORD`).
    Last,
}

const fn flag(names: &'static [&'static str], part: Part) -> Flag {
    Flag {
        names,
        after: &[],
        attach: Attach::Next,
        part,
    }
}

const fn glued(names: &'static [&'static str]) -> Flag {
    Flag {
        names,
        after: &[],
        attach: Attach::Glued,
        part: Part::Whole,
    }
}

const fn sub_flag(
    after: &'static [&'static str],
    names: &'static [&'static str],
    part: Part,
) -> Flag {
    Flag {
        names,
        after,
        attach: Attach::Next,
        part,
    }
}

const fn pos(after: &'static [&'static str], index: usize, when: When, part: Part) -> Positional {
    Positional {
        after,
        index,
        with: "",
        without: "",
        when,
        part,
    }
}

use Part::{After, IfAssignment, Keep, Literal, PassPrefix, SlashPassword, Whole};
use When::{Always, KeyIsSecret, Last, NoEquals};

const REGISTRY_LOGIN: &[Flag] = &[
    sub_flag(&["login"], &["-p", "--password"], Whole),
    flag(&["--creds", "--src-creds", "--dest-creds"], After(':')),
];

/// The table.
pub(super) static TOOLS: &[Tool] = &[
    Tool {
        names: &[
            "mysql",
            "mariadb",
            "mysqldump",
            "mysqlcheck",
            "mysqlimport",
            "mysqlshow",
            "mysqlpump",
            "mysqlslap",
            "mysqlbinlog",
            "mysqlsh",
            "mariadb-dump",
            "mariadb-check",
            "mariadb-import",
            "mariadb-show",
            "mariadb-binlog",
        ],
        // `-p` alone prompts; `--password VALUE` is taken as meant, conservatively.
        flags: &[glued(&["-p"]), flag(&["--password"], Whole)],
        positionals: &[],
        takes_value: &[
            "-h", "-u", "-P", "-e", "-D", "-S", "--host", "--user", "--port",
        ],
    },
    Tool {
        names: &["mysqladmin", "mariadb-admin"],
        flags: &[glued(&["-p", "--password"])],
        positionals: &[pos(&["password"], 0, Always, Whole)],
        takes_value: &["-h", "-u", "-P", "-S", "--host", "--user", "--port"],
    },
    Tool {
        names: &["redis-cli", "keydb-cli", "valkey-cli"],
        flags: &[flag(&["-a", "--pass"], Whole), flag(&["--askpass"], Keep)],
        positionals: &[
            pos(&["auth"], 0, Last, Whole),
            pos(&["auth"], 1, Always, Whole),
        ],
        takes_value: &[
            "-h",
            "-p",
            "-n",
            "-u",
            "--user",
            "-r",
            "-i",
            "--tls-cert",
            "--cacert",
        ],
    },
    Tool {
        names: &[
            "redis-server",
            "keydb-server",
            "valkey-server",
            "redis-sentinel",
        ],
        flags: &[flag(
            &["--requirepass", "--masterauth", "--sentinel-pass"],
            Whole,
        )],
        positionals: &[],
        takes_value: &[],
    },
    Tool {
        names: &["sqlcmd", "bcp", "osql"],
        flags: &[flag(&["-P"], Whole)],
        positionals: &[],
        takes_value: &["-S", "-U", "-d", "-Q", "-q", "-i", "-o"],
    },
    Tool {
        names: &[
            "sqlplus", "sql", "sqlldr", "expdp", "impdp", "exp", "imp", "dgmgrl",
        ],
        flags: &[],
        positionals: &[pos(&[], 0, Always, SlashPassword)],
        takes_value: &["-M", "-R"],
    },
    Tool {
        names: &["rman"],
        flags: &[],
        positionals: &[
            pos(&["target"], 0, Always, SlashPassword),
            pos(&["catalog"], 0, Always, SlashPassword),
            pos(&["auxiliary"], 0, Always, SlashPassword),
        ],
        takes_value: &[],
    },
    Tool {
        names: &[
            "smbclient",
            "rpcclient",
            "smbcacls",
            "smbget",
            "smbtree",
            "net",
            "smbmap",
        ],
        flags: &[
            flag(&["-U", "--user"], After('%')),
            flag(&["--password"], Whole),
        ],
        positionals: &[],
        takes_value: &["-W", "-I", "-p", "-m", "-s", "-d", "-c", "-D", "-L"],
    },
    Tool {
        names: &[
            "ldapsearch",
            "ldapmodify",
            "ldapadd",
            "ldapdelete",
            "ldapmodrdn",
            "ldapcompare",
            "ldapwhoami",
            "ldapexop",
            "ldapurl",
        ],
        flags: &[flag(&["-w"], Whole), flag(&["-y"], Keep)],
        positionals: &[],
        takes_value: &["-D", "-H", "-h", "-b", "-s", "-f", "-p", "-x"],
    },
    Tool {
        names: &["ldappasswd"],
        flags: &[
            flag(&["-w", "-s", "-a"], Whole),
            flag(&["-y", "-t", "-T"], Keep),
        ],
        positionals: &[],
        takes_value: &["-D", "-H", "-h", "-p"],
    },
    Tool {
        names: &["sshpass"],
        flags: &[flag(&["-p"], Whole), flag(&["-f", "-d", "-P"], Keep)],
        positionals: &[],
        takes_value: &[],
    },
    Tool {
        names: &["htpasswd"],
        flags: &[],
        positionals: &[
            Positional {
                after: &[],
                index: 2,
                with: "b",
                without: "n",
                when: Always,
                part: Whole,
            },
            Positional {
                after: &[],
                index: 1,
                with: "bn",
                without: "",
                when: Always,
                part: Whole,
            },
        ],
        takes_value: &["-C", "-r"],
    },
    Tool {
        names: &[
            "docker", "podman", "nerdctl", "buildah", "skopeo", "oras", "crane", "regctl",
        ],
        flags: REGISTRY_LOGIN,
        positionals: &[],
        takes_value: &["-u", "--username", "--config", "-H", "--host", "--context"],
    },
    Tool {
        names: &["helm"],
        flags: &[sub_flag(&["login"], &["-p", "--password"], Whole)],
        positionals: &[],
        takes_value: &["-u", "--username", "-n", "--namespace"],
    },
    Tool {
        names: &["aws"],
        flags: &[],
        positionals: &[pos(&["configure", "set"], 1, KeyIsSecret, Whole)],
        takes_value: &["--profile", "--region", "--output", "--endpoint-url"],
    },
    Tool {
        names: &["az"],
        flags: &[
            sub_flag(&["login"], &["-p", "--password"], Whole),
            sub_flag(&["secret", "set"], &["--value"], Whole),
            flag(
                &[
                    "--secret",
                    "--client-secret",
                    "--account-key",
                    "--sas-token",
                ],
                Whole,
            ),
        ],
        positionals: &[],
        takes_value: &["-u", "--username", "-g", "-n", "--tenant", "--subscription"],
    },
    Tool {
        names: &["gcloud"],
        flags: &[
            flag(&["--password", "--access-token", "--client-secret"], Whole),
            flag(
                &[
                    "--key-file",
                    "--access-token-file",
                    "--credential-file-override",
                ],
                Keep,
            ),
        ],
        positionals: &[],
        takes_value: &["--project", "--instance", "--host", "--zone", "--region"],
    },
    Tool {
        names: &["vault"],
        flags: &[
            flag(&["-token", "--token"], Whole),
            flag(
                &["-client-key", "-client-cert", "-ca-cert", "-ca-path"],
                Keep,
            ),
        ],
        positionals: &[
            pos(&["login"], 0, NoEquals, Whole),
            pos(&["operator", "unseal"], 0, Always, Whole),
        ],
        takes_value: &[
            "-method",
            "-address",
            "-namespace",
            "-path",
            "-format",
            "-field",
        ],
    },
    Tool {
        names: &["consul", "nomad"],
        flags: &[flag(&["-token", "--token", "-encrypt", "--encrypt"], Whole)],
        positionals: &[],
        takes_value: &[
            "-http-addr",
            "-address",
            "-datacenter",
            "-region",
            "-namespace",
        ],
    },
    Tool {
        names: &["mc", "mcli"],
        flags: &[],
        positionals: &[
            pos(&["alias", "set"], 3, Always, Whole),
            pos(&["config", "host", "add"], 3, Always, Whole),
        ],
        takes_value: &["--api", "--path"],
    },
    Tool {
        names: &["kubectl", "oc"],
        flags: &[
            flag(&["--token", "--password"], Whole),
            sub_flag(&["create", "secret"], &["--from-literal"], Literal),
        ],
        positionals: &[],
        takes_value: &[
            "-n",
            "--namespace",
            "--context",
            "--server",
            "-s",
            "--username",
            "-o",
        ],
    },
    Tool {
        names: &["kubeadm", "k3s", "rke2", "k0s"],
        flags: &[
            flag(
                &[
                    "--token",
                    "--discovery-token",
                    "--tls-bootstrap-token",
                    "--agent-token",
                    "--certificate-key",
                ],
                Whole,
            ),
            flag(
                &["--token-file", "--agent-token-file", "--discovery-file"],
                Keep,
            ),
        ],
        positionals: &[],
        takes_value: &[
            "--token-ttl",
            "--discovery-token-ca-cert-hash",
            "--server",
            "--config",
        ],
    },
    Tool {
        names: &["curl"],
        flags: &[
            flag(&["-u", "--user", "-U", "--proxy-user"], After(':')),
            flag(&["-E", "--cert"], After(':')),
            flag(&["--oauth2-bearer", "--pass", "--proxy-pass"], Whole),
            flag(&["-b", "--cookie"], IfAssignment),
            flag(
                &["-c", "--cookie-jar", "-K", "--config", "--netrc-file"],
                Keep,
            ),
        ],
        positionals: &[],
        takes_value: &[
            "-H", "--header", "-d", "--data", "-X", "-o", "-x", "--proxy", "-A", "-e",
        ],
    },
    Tool {
        names: &["wget"],
        flags: &[
            flag(
                &[
                    "--password",
                    "--http-password",
                    "--ftp-password",
                    "--proxy-password",
                ],
                Whole,
            ),
            flag(
                &["--user", "--http-user", "--ftp-user", "--proxy-user"],
                Keep,
            ),
        ],
        positionals: &[],
        takes_value: &["-O", "-o", "-P", "--header", "-U"],
    },
    Tool {
        names: &["http", "https", "xh", "xhs"],
        flags: &[flag(&["-a", "--auth"], After(':'))],
        positionals: &[],
        takes_value: &[],
    },
    Tool {
        names: &["ab"],
        flags: &[flag(&["-A", "-P"], After(':'))],
        positionals: &[],
        takes_value: &["-n", "-c", "-t", "-H", "-C"],
    },
    Tool {
        names: &["lftp"],
        flags: &[flag(&["-u", "--user"], After(','))],
        positionals: &[],
        takes_value: &["-p", "-e"],
    },
    Tool {
        names: &["etcdctl"],
        flags: &[flag(&["--user"], After(':')), flag(&["--password"], Whole)],
        positionals: &[],
        takes_value: &["--endpoints", "--cacert", "--cert", "--key"],
    },
    Tool {
        names: &["openssl"],
        flags: &[
            flag(&["-passin", "-passout", "-pass"], PassPrefix),
            flag(&["-k", "-K"], Whole),
            flag(&["-kfile"], Keep),
        ],
        positionals: &[pos(&["passwd"], 0, Last, Whole)],
        takes_value: &[
            "-in", "-out", "-inkey", "-key", "-salt", "-config", "-subj", "-days", "-CA", "-CAkey",
        ],
    },
    Tool {
        names: &["zip", "unzip", "zipcloak"],
        flags: &[flag(&["-P", "--password"], Whole)],
        positionals: &[],
        takes_value: &["-d", "-x"],
    },
    Tool {
        names: &["7z", "7za", "7zr", "7zz", "rar", "unrar"],
        flags: &[glued(&["-p"])],
        positionals: &[],
        takes_value: &[],
    },
    Tool {
        names: &["useradd", "usermod", "adduser"],
        flags: &[flag(&["-p", "--password"], Whole)],
        positionals: &[],
        takes_value: &["-d", "-g", "-G", "-s", "-u", "-c", "-e"],
    },
    Tool {
        names: &["twine"],
        flags: &[flag(&["-p", "--password"], Whole)],
        positionals: &[],
        takes_value: &["-u", "--username", "-r", "--repository-url"],
    },
    Tool {
        names: &["doctl"],
        flags: &[flag(&["-t", "--access-token"], Whole)],
        positionals: &[],
        takes_value: &["--context"],
    },
    Tool {
        names: &["rdesktop"],
        flags: &[flag(&["-p"], Whole)],
        positionals: &[],
        takes_value: &["-u", "-d", "-g"],
    },
    Tool {
        names: &["xfreerdp", "wlfreerdp", "sdl-freerdp"],
        flags: &[glued(&["/p:", "/password:", "/gp:", "/gt:"])],
        positionals: &[],
        takes_value: &[],
    },
    Tool {
        names: &[
            "snmpwalk",
            "snmpget",
            "snmpgetnext",
            "snmpbulkwalk",
            "snmpbulkget",
            "snmpset",
            "snmptrap",
            "snmptable",
            "snmpdf",
            "snmpstatus",
            "snmpinform",
        ],
        flags: &[flag(&["-c", "-A", "-X"], Whole)],
        positionals: &[],
        takes_value: &["-v", "-u", "-l", "-a", "-x", "-t", "-r", "-O", "-m"],
    },
    Tool {
        names: &["ipmitool"],
        flags: &[flag(&["-P"], Whole), flag(&["-f"], Keep)],
        positionals: &[],
        takes_value: &["-I", "-H", "-U", "-p", "-L"],
    },
    Tool {
        names: &["mosquitto_pub", "mosquitto_sub", "mosquitto_rr"],
        flags: &[flag(&["-P", "--pw"], Whole)],
        positionals: &[],
        takes_value: &["-h", "-p", "-u", "-t", "-m", "-i", "-q"],
    },
    Tool {
        names: &[
            "mongo",
            "mongosh",
            "mongodump",
            "mongorestore",
            "mongoexport",
            "mongoimport",
            "mongostat",
            "mongotop",
            "cqlsh",
        ],
        flags: &[flag(&["-p", "--password"], Whole)],
        positionals: &[],
        takes_value: &[
            "-u",
            "--username",
            "--host",
            "--port",
            "--db",
            "-d",
            "--out",
        ],
    },
    Tool {
        names: &["keytool", "jarsigner"],
        flags: &[flag(
            &[
                "-storepass",
                "-keypass",
                "-srcstorepass",
                "-deststorepass",
                "-srckeypass",
                "-destkeypass",
                "-new",
            ],
            Whole,
        )],
        positionals: &[],
        takes_value: &[
            "-alias",
            "-keystore",
            "-srckeystore",
            "-destkeystore",
            "-file",
        ],
    },
    Tool {
        names: &["gh"],
        flags: &[sub_flag(&["secret", "set"], &["-b", "--body"], Whole)],
        positionals: &[],
        takes_value: &["-R", "--repo", "-e", "--env"],
    },
    Tool {
        names: &["rabbitmqctl"],
        flags: &[],
        positionals: &[
            pos(&["add_user"], 1, Always, Whole),
            pos(&["change_password"], 1, Always, Whole),
            pos(&["authenticate_user"], 1, Always, Whole),
        ],
        takes_value: &["-n", "-p"],
    },
    Tool {
        names: &["db2"],
        flags: &[],
        positionals: &[pos(&["using"], 0, Always, Whole)],
        takes_value: &[],
    },
    Tool {
        names: &["neo4j-admin"],
        flags: &[],
        positionals: &[pos(&["set-initial-password"], 0, Always, Whole)],
        takes_value: &[],
    },
    Tool {
        names: &["ngrok"],
        flags: &[flag(&["--authtoken"], Whole)],
        positionals: &[
            pos(&["authtoken"], 0, Always, Whole),
            pos(&["add-authtoken"], 0, Always, Whole),
        ],
        takes_value: &[],
    },
    Tool {
        names: &["npm", "pnpm", "yarn"],
        flags: &[],
        positionals: &[pos(&["config", "set"], 1, KeyIsSecret, Whole)],
        takes_value: &["--registry", "--prefix"],
    },
    Tool {
        names: &["wpa_passphrase"],
        flags: &[],
        positionals: &[pos(&[], 1, Always, Whole)],
        takes_value: &[],
    },
    Tool {
        names: &["openvpn"],
        flags: &[flag(
            &["--auth-user-pass", "--askpass", "--tls-auth", "--secret"],
            Keep,
        )],
        positionals: &[],
        takes_value: &["--config", "--remote", "--port"],
    },
    Tool {
        names: &["ssh-keygen"],
        flags: &[flag(&["-N", "-P"], Whole)],
        positionals: &[],
        takes_value: &["-t", "-b", "-f", "-C", "-a"],
    },
];

/// The table's entry for a program, by the basename of argv[0].
pub(super) fn find(program: &str) -> Option<&'static Tool> {
    let base = program.rsplit('/').next().unwrap_or(program);
    TOOLS.iter().find(|tool| tool.names.contains(&base))
}
