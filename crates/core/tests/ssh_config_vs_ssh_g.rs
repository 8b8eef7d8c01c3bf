//! Resolves a corpus of configurations with both `ssh -G` (OpenSSH's own
//! resolver; it prints the configuration and exits without connecting) and
//! `ferrossh_core::ssh_config`, and compares the keywords ferrossh uses.
//! OpenSSH's client lives at /usr/bin/ssh on Unix only.
#![cfg(unix)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use corpus::{Case, CASES};
use ferrossh_core::ssh_config::{
    resolve, AlgorithmDefaults, AlgorithmList, ResolveOptions, ResolvedConfig,
};

const SSH: &str = "/usr/bin/ssh";

/// The keywords compared.
const KEYS: &[&str] = &[
    "hostname",
    "user",
    "port",
    "identityfile",
    "identitiesonly",
    "certificatefile",
    "identityagent",
    "proxyjump",
    "proxycommand",
    "userknownhostsfile",
    "globalknownhostsfile",
    "stricthostkeychecking",
    "hashknownhosts",
    "serveraliveinterval",
    "serveralivecountmax",
    "connecttimeout",
    "ciphers",
    "kexalgorithms",
    "macs",
    "hostkeyalgorithms",
    "compression",
    "setenv",
    "sendenv",
    "localforward",
    "remoteforward",
    "dynamicforward",
];

/// Keywords `ssh -G` prints on one line as a space-separated list.
const ONE_LINE_LISTS: &[&str] = &[
    "userknownhostsfile",
    "globalknownhostsfile",
    "canonicaldomains",
    "permitremoteopen",
    "logverbose",
];

/// Keywords the resolver keeps as written where `ssh -G` prints a converted
/// form (byte counts, octal masks, seconds), or that ssh changes after
/// reading the configuration (UpdateHostKeys): left out of the comparison
/// of every other keyword.
const KEPT_AS_WRITTEN: &[&str] = &[
    "addkeystoagent",
    "controlpersist",
    "escapechar",
    "ipqos",
    "rekeylimit",
    "streamlocalbindmask",
    "updatehostkeys",
];

/// Keywords ssh -G prints unexpanded but ssh expands when loading them,
/// as the resolver does: compared after expanding ssh's output.
const EXPANDED_AT_LOAD: &[&str] = &["identityfile", "certificatefile"];

/// Set for both resolvers, to test `${VAR}` expansion.
const TEST_VAR: (&str, &str) = ("FERROSSH_SSH_CONFIG_TEST", "from-env");

#[test]
fn resolves_like_ssh_g() {
    if !Path::new(SSH).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{SSH} is missing; CI must run this comparison against OpenSSH"
        );
        eprintln!("skipping: {SSH} not found (install openssh-client to run this comparison)");
        return;
    }
    assert!(
        CASES.len() >= 30,
        "the corpus should keep at least 30 configurations"
    );
    std::env::set_var(TEST_VAR.0, TEST_VAR.1);
    let machine = Machine::discover();
    if ssh_version().starts_with("OpenSSH_9.2") {
        assert_eq!(
            machine.algorithms,
            AlgorithmDefaults::openssh_9_2(),
            "the built-in table is OpenSSH 9.2's"
        );
    }
    let mut failures = Vec::new();
    let mut compared = 0;
    for case in CASES {
        let dir = tempfile::tempdir().expect("temp dir");
        let main = write_case(case, dir.path());
        for host in case.hosts {
            for (user, port) in [(None, None), (Some("alice"), None), (None, Some(2222))] {
                let query = Query {
                    main: &main,
                    dir: dir.path(),
                    host,
                    user,
                    port,
                };
                compared += compare(case, &query, &machine, &mut failures);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!(
        "{} configurations, {compared} keyword comparisons agree with ssh -G",
        CASES.len()
    );
}

/// What ssh takes from the system, learned from ssh itself: its `~` is the
/// password database home (not $HOME), the default user is ours, and the
/// algorithm lists are those this build supports.
struct Machine {
    home: String,
    local_user: String,
    algorithms: AlgorithmDefaults,
}

impl Machine {
    fn discover() -> Machine {
        let out = ssh_g(&["-F", "/dev/null", "probe"], Path::new("/")).expect("ssh -G runs");
        let first = |key: &str| {
            out.get(key)
                .and_then(|v| v.first())
                .cloned()
                .unwrap_or_default()
        };
        let known = first("userknownhostsfile");
        let home = known
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_end_matches("/.ssh/known_hosts")
            .to_string();
        let keys = ssh_query("HostKeyAlgorithms");
        let plain_keys: Vec<String> = keys
            .iter()
            .filter(|k| !k.contains("-cert-"))
            .cloned()
            .collect();
        let list = |key: &str, supported: Vec<String>| AlgorithmList {
            default: first(key).split(',').map(str::to_string).collect(),
            supported,
        };
        let algorithms = AlgorithmDefaults {
            ciphers: list("ciphers", ssh_query("cipher")),
            macs: list("macs", ssh_query("mac")),
            kex: list("kexalgorithms", ssh_query("kex")),
            host_keys: list("hostkeyalgorithms", keys),
            ca_signatures: list("casignaturealgorithms", plain_keys),
        };
        Machine {
            home,
            local_user: first("user"),
            algorithms,
        }
    }
}

fn ssh_version() -> String {
    let out = Command::new(SSH)
        .arg("-V")
        .stdin(Stdio::null())
        .output()
        .expect("run ssh -V");
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// `ssh -Q what`: the names this ssh supports, in its order.
fn ssh_query(what: &str) -> Vec<String> {
    let out = Command::new(SSH)
        .args(["-Q", what])
        .stdin(Stdio::null())
        .output()
        .expect("run ssh -Q");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

struct Query<'a> {
    main: &'a Path,
    dir: &'a Path,
    host: &'a str,
    user: Option<&'a str>,
    port: Option<u16>,
}

fn write_case(case: &Case, dir: &Path) -> PathBuf {
    for (name, text) in case.files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, text.replace("@DIR@", &dir.to_string_lossy())).expect("write config");
        set_private(&path);
    }
    dir.join(case.files[0].0)
}

/// ssh refuses included files others can write; make sure umask does not matter.
fn set_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
}

/// Runs `ssh -G` with HOME pointing at the case's directory; `None` if ssh
/// rejected the configuration.
fn ssh_g(args: &[&str], home: &Path) -> Option<BTreeMap<String, Vec<String>>> {
    let out = Command::new(SSH)
        .arg("-G")
        .args(args)
        .env("HOME", home)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh -G");
    if !out.status.success() {
        return None;
    }
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        map.entry(key.to_ascii_lowercase())
            .or_default()
            .push(value.to_string());
    }
    Some(map)
}

fn run_ssh(q: &Query) -> Option<BTreeMap<String, Vec<String>>> {
    let main = q.main.to_string_lossy().into_owned();
    let mut args = vec!["-F".to_string(), main];
    if let Some(user) = q.user {
        args.extend(["-l".to_string(), user.to_string()]);
    }
    if let Some(port) = q.port {
        args.extend(["-p".to_string(), port.to_string()]);
    }
    args.push(q.host.to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    ssh_g(&refs, q.dir)
}

fn run_ours(q: &Query, m: &Machine) -> Result<ResolvedConfig, String> {
    let opts = ResolveOptions {
        file: Some(q.main.to_path_buf()),
        user: q.user.map(str::to_string),
        port: q.port,
        home: Some(PathBuf::from(&m.home)),
        local_user: Some(m.local_user.clone()),
        include_system: false,
        algorithms: Some(m.algorithms.clone()),
        ..ResolveOptions::default()
    };
    resolve(q.host, &opts).map_err(|e| e.to_string())
}

/// Compares one query; returns how many keywords were compared.
fn compare(case: &Case, q: &Query, m: &Machine, failures: &mut Vec<String>) -> usize {
    let label = format!(
        "[{}] host={} user={:?} port={:?}",
        case.name, q.host, q.user, q.port
    );
    let (theirs, ours) = match (run_ssh(q), run_ours(q, m)) {
        (None, Err(e)) if case.accepted() == Some(true) => {
            failures.push(format!(
                "{label}: both rejected a configuration meant to be valid: {e}"
            ));
            return 1;
        }
        (None, Err(_)) => return 1,
        (Some(_), _) if case.accepted() == Some(false) => {
            failures.push(format!(
                "{label}: ssh accepted a configuration meant to be an error"
            ));
            return 1;
        }
        (None, Ok(_)) => {
            failures.push(format!(
                "{label}: ssh rejected the configuration, we accepted it"
            ));
            return 1;
        }
        (Some(_), Err(e)) => {
            failures.push(format!(
                "{label}: ssh accepted the configuration, we failed: {e}"
            ));
            return 1;
        }
        (Some(t), Ok(o)) => (t, o),
    };
    for key in KEYS {
        let expected = expected_values(key, &theirs, &ours, m);
        let actual = ours.get_all(key).to_vec();
        if expected != actual {
            failures.push(format!("{label}: {key}: ssh {expected:?} ours {actual:?}"));
        }
    }
    // Everything else the resolver reports must agree too.
    let others: Vec<&str> = ours
        .entries()
        .map(|(k, _)| k)
        .filter(|k| !KEYS.contains(k) && !KEPT_AS_WRITTEN.contains(k))
        .collect();
    for key in &others {
        let expected = expected_values(key, &theirs, &ours, m);
        let actual = ours.get_all(key).to_vec();
        if expected != actual {
            failures.push(format!("{label}: {key}: ssh {expected:?} ours {actual:?}"));
        }
    }
    KEYS.len() + others.len()
}

fn expected_values(
    key: &str,
    theirs: &BTreeMap<String, Vec<String>>,
    ours: &ResolvedConfig,
    m: &Machine,
) -> Vec<String> {
    let raw = theirs.get(key).cloned().unwrap_or_default();
    if ONE_LINE_LISTS.contains(&key) {
        let words: Vec<String> = raw
            .iter()
            .flat_map(|v| v.split_whitespace().map(str::to_string))
            .collect();
        return words.into_iter().map(|w| tilde(&w, &m.home)).collect();
    }
    if EXPANDED_AT_LOAD.contains(&key) {
        return raw
            .iter()
            .filter(|v| !v.eq_ignore_ascii_case("none"))
            .map(|v| expand_like_ssh(v, ours, m))
            .collect();
    }
    raw
}

/// The expansion ssh applies when loading keys: `~`, then every `%` token
/// and `${VAR}`.
fn expand_like_ssh(value: &str, ours: &ResolvedConfig, m: &Machine) -> String {
    let value = tilde(value, &m.home).replace(&format!("${{{}}}", TEST_VAR.0), TEST_VAR.1);
    ours.tokens()
        .expand(&value, "CLiklnpdhru")
        .unwrap_or_else(|e| format!("<expansion failed: {e}>"))
}

fn tilde(value: &str, home: &str) -> String {
    match value.strip_prefix("~/") {
        Some(rest) => format!("{home}/{rest}"),
        None => value.to_string(),
    }
}

/// Configurations resolved by both `ssh -G` and ferrossh. The first file of
/// each case is passed as `-F`; `@DIR@` becomes the case's directory.
mod corpus {

    pub struct Case {
        pub name: &'static str,
        pub files: &'static [(&'static str, &'static str)],
        pub hosts: &'static [&'static str],
    }

    impl Case {
        /// Whether ssh accepts the configuration: cases named "error …" must be
        /// rejected, "depends …" ones only need both resolvers to agree.
        pub fn accepted(&self) -> Option<bool> {
            if self.name.starts_with("error") {
                Some(false)
            } else if self.name.starts_with("depends") {
                None
            } else {
                Some(true)
            }
        }
    }

    pub const CASES: &[Case] = &[
        Case {
            name: "basic host block",
            files: &[("config", "Host web\n  HostName web.example.com\n  User deploy\n  Port 2200\n")],
            hosts: &["web", "other"],
        },
        Case {
            name: "first obtained value wins",
            files: &[(
                "config",
                "Host db\n  User first\n  Port 1111\nHost d*\n  User second\n  Port 2222\n  HostName fallback.example\nHost *\n  User third\n  ServerAliveInterval 15\n",
            )],
            hosts: &["db", "dx", "zzz"],
        },
        Case {
            name: "wildcards and several patterns",
            files: &[(
                "config",
                "Host web? *.internal build-*\n  User ops\nHost *.example.com\n  Port 2022\nHost ?\n  HostName single-letter\n",
            )],
            hosts: &["web1", "web12", "a.internal", "build-7", "x.example.com", "q"],
        },
        Case {
            name: "negated host pattern cancels the block",
            files: &[(
                "config",
                "Host *.corp !bastion.corp\n  ProxyJump bastion.corp\nHost !nomatch *\n  User everyone\n",
            )],
            hosts: &["app.corp", "bastion.corp", "nomatch", "elsewhere"],
        },
        Case {
            name: "equals signs quotes comments and case",
            files: &[(
                "config",
                "# leading comment\n\nHOST=quoted\n\tuser = \"bob\"\n  PORT=2022 # trailing comment\n  HostName=\"quoted.example\"\n  IdentityFile \"~/.ssh/id with space\"\n  identityFILE '~/.ssh/single quoted'\n  IdentityFile ~/.ssh/escaped\\ space\n",
            )],
            hosts: &["quoted", "unquoted"],
        },
        Case {
            name: "identity files accumulate and drop duplicates",
            files: &[(
                "config",
                "Host k\n  IdentityFile ~/.ssh/k1\n  IdentityFile ~/.ssh/k2\nHost *\n  IdentityFile ~/.ssh/k1\n  IdentityFile /abs/key\n  IdentitiesOnly yes\n",
            )],
            hosts: &["k", "j"],
        },
        Case {
            name: "identity file tokens",
            files: &[(
                "config",
                "Host tok\n  HostName Real.Example.COM\n  User %u-remote\n  IdentityFile ~/.ssh/%h_%r_%p\n  IdentityFile %d/keys/%n-%u-%l\n  IdentityFile /k/%L/%C/%%/%i/%k\n  UserKnownHostsFile ~/.ssh/kh_%h_%r_%p %d/%n/%u/%L/%C/%i/%k/%%\n  IdentityAgent ~/agent-%C-%h\n",
            )],
            hosts: &["tok", "TOK"],
        },
        Case {
            name: "identity file none",
            files: &[("config", "Host none\n  IdentityFile none\nHost *\n  IdentityFile ~/.ssh/late\n")],
            hosts: &["none", "some"],
        },
        Case {
            name: "certificate files",
            files: &[(
                "config",
                "Host c\n  CertificateFile ~/.ssh/c-cert.pub\n  CertificateFile %d/certs/%r.pub\nHost *\n  CertificateFile ~/.ssh/c-cert.pub\n  IdentityFile ~/.ssh/c\n",
            )],
            hosts: &["c", "d"],
        },
        Case {
            name: "known hosts files",
            files: &[(
                "config",
                "Host kh\n  UserKnownHostsFile ~/.ssh/kh1 ~/.ssh/kh2 /abs/kh3\n  GlobalKnownHostsFile /etc/kh-global\nHost nokh\n  UserKnownHostsFile none\n  GlobalKnownHostsFile none\nHost *\n  UserKnownHostsFile ~/.ssh/ignored\n",
            )],
            hosts: &["kh", "nokh", "rest"],
        },
        Case {
            name: "strict host key checking spellings",
            files: &[(
                "config",
                "Host y\n  StrictHostKeyChecking yes\nHost n\n  StrictHostKeyChecking no\nHost a\n  StrictHostKeyChecking accept-new\nHost o\n  StrictHostKeyChecking off\nHost t\n  StrictHostKeyChecking TRUE\nHost *\n  StrictHostKeyChecking ask\n",
            )],
            hosts: &["y", "n", "a", "o", "t", "other"],
        },
        Case {
            name: "flags",
            files: &[(
                "config",
                "Host f1\n  HashKnownHosts true\n  IdentitiesOnly false\n  Compression yes\nHost f2\n  HashKnownHosts no\n  IdentitiesOnly TRUE\n  Compression no\n",
            )],
            hosts: &["f1", "f2", "f3"],
        },
        Case {
            name: "times and counts",
            files: &[(
                "config",
                "Host t1\n  ServerAliveInterval 1m\n  ServerAliveCountMax 5\n  ConnectTimeout 1h30m\nHost t2\n  ServerAliveInterval 90s\n  ConnectTimeout none\nHost *\n  ConnectTimeout 7\n  ServerAliveInterval 2w\n",
            )],
            hosts: &["t1", "t2", "t3"],
        },
        Case {
            name: "proxy jump forms",
            files: &[(
                "config",
                "Host j1\n  ProxyJump jumper@bastion.example:2222\nHost j2\n  ProxyJump first.example,second@hop2:2200,last\nHost j3\n  ProxyJump [2001:db8::1]:22\nHost j4\n  ProxyJump 10.0.0.1\nHost j5\n  ProxyJump ssh://u@uri.example:2022\nHost j6\n  ProxyJump none\nHost *\n  ProxyJump fallback.example\n",
            )],
            hosts: &["j1", "j2", "j3", "j4", "j5", "j6", "j7"],
        },
        Case {
            name: "proxy command and jump precedence",
            files: &[(
                "config",
                "Host pc\n  ProxyCommand ssh -W %h:%p bastion # kept with its comment\nHost pcnone\n  ProxyCommand none\nHost pj\n  ProxyJump hop\nHost *\n  ProxyCommand nc %h %p\n  ProxyJump never-used\n",
            )],
            hosts: &["pc", "pcnone", "pj", "other"],
        },
        Case {
            name: "cipher and mac lists",
            files: &[(
                "config",
                "Host add\n  Ciphers +aes128-cbc,3des-cbc\n  MACs +hmac-md5\nHost rm\n  Ciphers -*-cbc,chacha20*\n  MACs -*etm@openssh.com\nHost head\n  Ciphers ^aes256-gcm@openssh.com,aes128-cbc\n  MACs ^hmac-sha1\nHost set\n  Ciphers aes256-ctr,aes128-ctr\n  MACs hmac-sha2-512\n",
            )],
            hosts: &["add", "rm", "head", "set", "default"],
        },
        Case {
            name: "kex and host key lists",
            files: &[(
                "config",
                "Host add\n  KexAlgorithms +diffie-hellman-group14-sha1\n  HostKeyAlgorithms +ssh-rsa*\nHost rm\n  KexAlgorithms -sntrup*,ecdh-*\n  HostKeyAlgorithms -*-cert-v01@openssh.com\nHost head\n  KexAlgorithms ^curve25519-sha256\n  HostKeyAlgorithms ^ssh-ed25519\nHost set\n  KexAlgorithms curve25519-sha256,diffie-hellman-group16-sha512\n  HostKeyAlgorithms ssh-ed25519*,rsa-sha2-512\n",
            )],
            hosts: &["add", "rm", "head", "set", "default"],
        },
        Case {
            name: "send env accumulates and removes",
            files: &[(
                "config",
                "Host s\n  SendEnv LANG LC_*\n  SendEnv -LC_*\n  SendEnv EDITOR\nHost *\n  SendEnv PAGER\n",
            )],
            hosts: &["s", "t"],
        },
        Case {
            name: "set env first line wins",
            files: &[(
                "config",
                "Host e\n  SetEnv A=1 B=\"two words\" A=3\n  SetEnv C=ignored\nHost *\n  SetEnv D=4\n",
            )],
            hosts: &["e", "f"],
        },
        Case {
            name: "forwardings",
            files: &[(
                "config",
                "Host fw\n  LocalForward 8080 db.internal:5432\n  LocalForward 127.0.0.1:8081 [2001:db8::5]:80\n  LocalForward [::1]:8082 localhost:81\n  LocalForward /tmp/local.sock db:5432\n  RemoteForward 9000 localhost:9000\n  RemoteForward 9001\n  RemoteForward 0.0.0.0:9002 /run/remote.sock\n  DynamicForward 1080\n  DynamicForward localhost:1081\nHost *\n  LocalForward 8080 db.internal:5432\n  DynamicForward 1080\n",
            )],
            hosts: &["fw", "plain"],
        },
        Case {
            name: "clear all forwardings",
            files: &[("config", "Host c\n  ClearAllForwardings yes\nHost *\n  LocalForward 8080 a:80\n  DynamicForward 1080\n")],
            hosts: &["c", "d"],
        },
        Case {
            name: "match host sees the new hostname",
            files: &[(
                "config",
                "Host short\n  HostName long.example.com\nMatch host *.example.com\n  User matched-by-hostname\nMatch originalhost short\n  Port 2201\nMatch host short\n  IdentityFile ~/.ssh/never\n",
            )],
            hosts: &["short", "long.example.com", "other"],
        },
        Case {
            name: "match user and localuser",
            files: &[(
                "config",
                "Match user alice\n  HostName alice-only\nMatch !user alice\n  Port 2023\nMatch localuser nobody-here\n  Compression yes\nMatch localuser *\n  HashKnownHosts yes\n",
            )],
            hosts: &["u1"],
        },
        Case {
            name: "match all and negation",
            files: &[(
                "config",
                "Match !host x*,y*\n  User not-xy\nMatch host x* !originalhost xz\n  Port 3000\nMatch all\n  ServerAliveInterval 5\nMatch !all\n  ServerAliveInterval 99\n",
            )],
            hosts: &["x1", "xz", "y2", "zz"],
        },
        Case {
            name: "match canonical is false without canonicalisation",
            files: &[("config", "Match canonical\n  User canon\nMatch !canonical\n  Port 2024\n")],
            hosts: &["plain"],
        },
        Case {
            name: "match final triggers a second pass",
            files: &[(
                "config",
                "Host alias\n  HostName real.example.org\nHost real.example.org\n  User seen-in-final-pass\nMatch final host *.example.org\n  Port 2025\nMatch !final\n  IdentityFile ~/.ssh/first-pass\nMatch final\n  IdentityFile ~/.ssh/final-pass\n  SendEnv FINAL\nSendEnv EVERY\n",
            )],
            hosts: &["alias", "real.example.org", "other"],
        },
        Case {
            name: "canonicalize hostname triggers a second pass",
            files: &[(
                "config",
                "CanonicalizeHostname yes\nHost c1\n  HostName target.test\nMatch canonical host target.test\n  User canonical-user\nMatch canonical\n  Port 2026\n",
            )],
            hosts: &["c1", "c2"],
        },
        Case {
            name: "match exec",
            files: &[(
                "config",
                "Match exec true\n  User exec-true\nMatch exec false\n  Port 1\nMatch exec \"test %h = ex1\"\n  Port 2027\nMatch host nothing exec \"exit 3\"\n  Port 3\nMatch !exec false\n  Compression yes\n",
            )],
            hosts: &["ex1", "ex2"],
        },
        Case {
            name: "match exec sees tokens",
            files: &[(
                "config",
                "Host tokhost\n  HostName tok.example\n  User tokuser\nMatch exec \"test %h = tok.example -a %n = tokhost -a %r = tokuser -a %p = 22\"\n  IdentityFile ~/.ssh/tokens-matched\n",
            )],
            hosts: &["tokhost"],
        },
        Case {
            name: "include absolute and glob in order",
            files: &[
                ("config", "Include @DIR@/conf.d/*.conf\nHost *\n  User after-include\n"),
                ("conf.d/20-b.conf", "Host b\n  User from-b\n  Port 2002\n"),
                ("conf.d/10-a.conf", "Host a b\n  User from-a\n"),
                ("conf.d/30-c.txt", "Host *\n  User never\n"),
                ("conf.d/.hidden.conf", "Host *\n  User hidden\n"),
            ],
            hosts: &["a", "b", "c"],
        },
        Case {
            name: "include inside host block is conditional",
            files: &[
                ("config", "Host inc\n  Include @DIR@/inc.conf\nHost *\n  Port 2100\n"),
                ("inc.conf", "User included\nHost other\n  Port 2101\n"),
            ],
            hosts: &["inc", "other", "third"],
        },
        Case {
            name: "include in match and nested includes",
            files: &[
                ("config", "Match host n*\n  Include @DIR@/level1.conf\nIdentityFile ~/.ssh/top\n"),
                ("level1.conf", "IdentityFile ~/.ssh/level1\nInclude @DIR@/level2?.conf\n"),
                ("level2a.conf", "IdentityFile ~/.ssh/level2a\nUser nested\n"),
                ("level2b.conf", "Match all\nIdentityFile ~/.ssh/level2b\n"),
            ],
            hosts: &["nested", "flat"],
        },
        Case {
            name: "include without matches is ignored",
            files: &[("config", "Include @DIR@/missing/*.conf @DIR@/absent.conf\nUser still-read\n")],
            hosts: &["any"],
        },
        Case {
            name: "hostname tokens and case",
            files: &[(
                "config",
                "Host pre\n  HostName %h.Example.NET\nHost ip\n  HostName 127.1\nHost v6\n  HostName FE80::1\nHost pct\n  HostName 100%%\n",
            )],
            hosts: &["pre", "ip", "v6", "pct", "MiXeD"],
        },
        Case {
            name: "identity agent and env vars",
            files: &[(
                "config",
                "Host ag1\n  IdentityAgent ${FERROSSH_SSH_CONFIG_TEST}/agent.sock\n  IdentityFile ~/${FERROSSH_SSH_CONFIG_TEST}/key\nHost ag2\n  IdentityAgent SSH_AUTH_SOCK\nHost ag3\n  IdentityAgent none\n",
            )],
            hosts: &["ag1", "ag2", "ag3", "ag4"],
        },
        Case {
            name: "port from config and service name",
            files: &[("config", "Host p1\n  Port 2345\nHost p2\n  Port ssh\n")],
            hosts: &["p1", "p2", "p3"],
        },
        Case {
            name: "assorted keywords",
            files: &[(
                "config",
                "Host m\n  ControlPath ~/.ssh/cm-%C-%h\n  ControlMaster auto\n  LogLevel debug1\n  RemoteCommand echo %h %r %%\n  LocalCommand echo %h %T\n  ForwardAgent ~/agent-%h\n  TunnelDevice 1:2\n  CanonicalDomains a.example b.example\n  PermitRemoteOpen localhost:80 *:443\n  KbdInteractiveDevices pam\n  BindAddress 127.0.0.1\n  HostKeyAlias MyAlias\n  PreferredAuthentications publickey,password\n  SyslogFacility local0\n  FingerprintHash md5\n  LogVerbose kex.c:*\n  ConnectionAttempts 3\n  NumberOfPasswordPrompts 1\n  RequestTTY yes\n  SessionType none\n  Tunnel point-to-point\n  VerifyHostKeyDNS yes\n  PubkeyAuthentication host-bound\n  KnownHostsCommand /bin/kh %h\n  RevokedHostKeys ~/revoked\n  XAuthLocation /opt/xauth\n  SecurityKeyProvider /lib/sk.so\n  RequiredRSASize 2048\n  ForwardX11Timeout 1h\n  GSSAPIAuthentication yes\n  ChallengeResponseAuthentication no\n  PubkeyAcceptedKeyTypes +ssh-rsa\n  CASignatureAlgorithms -ssh-dss\n  Protocol 2\nHost n\n  ForwardAgent yes\n  ControlPath none\n  RemoteCommand none\n  ProxyUseFdpass yes\n  CheckHostIP yes\n  AddressFamily inet6\n",
            )],
            hosts: &["m", "n"],
        },
        Case {
            name: "line syntax corners",
            files: &[(
                "config",
                "IgnoreUnknown UseKeychain,AddressFamilyX\nHost=eq1 eq2\r\n  User=crlf\r\nHost\tTAB\n\tPort\t2030   \nHost hash\n  IdentityFile ~/.ssh/id#1\n  IdentityFile \"~/.ssh/quote\\\"inside\"\n  ProxyCommand=nc %h %p\nHost EQ\n  Cipher blowfish\n  UseKeychain yes\n",
            )],
            hosts: &["eq1", "eq2", "TAB", "tab", "hash", "EQ"],
        },
        Case {
            name: "host matching is case sensitive but match host is not",
            files: &[(
                "config",
                "Host WEB\n  Port 2031\nMatch host WEB\n  User match-upper\nMatch originalhost Web\n  Compression yes\n",
            )],
            hosts: &["web", "WEB", "Web"],
        },
        Case {
            name: "only negated patterns never match",
            files: &[("config", "Host !foo\n  User negated-only\nHost foo !foo\n  Port 2032\n")],
            hosts: &["foo", "bar"],
        },
        Case {
            name: "match syntax corners",
            files: &[(
                "config",
                "Match host=eq* # trailing comment\n  User match-eq\nMatch canonical all\n  Port 2033\nMatch host m* all\n  HashKnownHosts yes\nUser top-level-after\n",
            )],
            hosts: &["eqx", "mx", "other"],
        },
        Case {
            name: "match user follows user set earlier",
            files: &[("config", "Host ux\n  User bob\nMatch user bob\n  Port 2034\nMatch user alice\n  Port 2035\n")],
            hosts: &["ux", "uy"],
        },
        Case {
            name: "match exec with hash token",
            files: &[(
                "config",
                "Host hx\n  HostName hashed.example\nMatch exec \"test -n %C -a %L = %L -a %l = %l -a %u = %u -a %d = %d -a %i = %i -a %k = hashed.example\"\n  IdentityFile %d/.ssh/exec-%C\n",
            )],
            hosts: &["hx"],
        },
        Case {
            name: "remote port zero and service names",
            files: &[(
                "config",
                "Host r\n  RemoteForward 0 localhost:80\n  LocalForward http localhost:https\n  DynamicForward [::1]:1082\n",
            )],
            hosts: &["r"],
        },
        Case {
            name: "include inside inactive block with its own host lines",
            files: &[
                ("config", "Host no-such-host\n  Include @DIR@/inactive.conf\nHost *\n  User outer\n"),
                ("inactive.conf", "Host *\n  User must-not-apply\nMatch all\n  Port 9\n"),
            ],
            hosts: &["a"],
        },
        Case {
            name: "include of a directory reads nothing",
            files: &[("config", "Include @DIR@/d*\nUser after-dir\n"), ("dir/file.conf", "User inside-dir\n")],
            hosts: &["a"],
        },
        Case {
            name: "sixteen nested includes are allowed",
            files: &[
                ("config", "Include @DIR@/i1\n"),
                ("i1", "Include @DIR@/i2\n"),
                ("i2", "Include @DIR@/i3\n"),
                ("i3", "Include @DIR@/i4\n"),
                ("i4", "Include @DIR@/i5\n"),
                ("i5", "Include @DIR@/i6\n"),
                ("i6", "Include @DIR@/i7\n"),
                ("i7", "Include @DIR@/i8\n"),
                ("i8", "Include @DIR@/i9\n"),
                ("i9", "Include @DIR@/i10\n"),
                ("i10", "Include @DIR@/i11\n"),
                ("i11", "Include @DIR@/i12\n"),
                ("i12", "Include @DIR@/i13\n"),
                ("i13", "Include @DIR@/i14\n"),
                ("i14", "Include @DIR@/i15\n"),
                ("i15", "Include @DIR@/i16\n"),
                ("i16", "User deepest\n"),
            ],
            hosts: &["a"],
        },
        Case {
            name: "error seventeen nested includes",
            files: &[
                ("config", "Include @DIR@/i1\n"),
                ("i1", "Include @DIR@/i2\n"),
                ("i2", "Include @DIR@/i3\n"),
                ("i3", "Include @DIR@/i4\n"),
                ("i4", "Include @DIR@/i5\n"),
                ("i5", "Include @DIR@/i6\n"),
                ("i6", "Include @DIR@/i7\n"),
                ("i7", "Include @DIR@/i8\n"),
                ("i8", "Include @DIR@/i9\n"),
                ("i9", "Include @DIR@/i10\n"),
                ("i10", "Include @DIR@/i11\n"),
                ("i11", "Include @DIR@/i12\n"),
                ("i12", "Include @DIR@/i13\n"),
                ("i13", "Include @DIR@/i14\n"),
                ("i14", "Include @DIR@/i15\n"),
                ("i15", "Include @DIR@/i16\n"),
                ("i16", "Include @DIR@/i17\n"),
                ("i17", "User too-deep\n"),
            ],
            hosts: &["a"],
        },
        Case {
            name: "error in an inactive included file",
            files: &[("config", "Host none-such\n  Include @DIR@/bad.conf\n"), ("bad.conf", "Port notaport\n")],
            hosts: &["a"],
        },
        Case {
            name: "error unsupported cipher",
            files: &[("config", "Ciphers aes*\n")],
            hosts: &["a"],
        },
        Case {
            name: "removing every algorithm leaves an empty list",
            files: &[("config", "HostKeyAlgorithms -*\n")],
            hosts: &["a"],
        },
        Case {
            name: "error local forward to port zero",
            files: &[("config", "LocalForward 0 localhost:80\n")],
            hosts: &["a"],
        },
        Case {
            name: "error extra arguments",
            files: &[("config", "Host a\n  Port 22 23\n")],
            hosts: &["a"],
        },
        Case {
            name: "error empty quoted argument",
            files: &[("config", "User \"\"\n")],
            hosts: &["a"],
        },
        Case {
            name: "error hostname with an unknown token",
            files: &[("config", "HostName %r.example\n")],
            hosts: &["a"],
        },
        Case {
            name: "proxy jump corners",
            files: &[(
                "config",
                "Host c1\n  ProxyJump a.example,b.example # trailing comment\nHost c2\n  ProxyCommand none\n  ProxyJump never\nHost c3\n  ProxyJump none\n  ProxyCommand never\nHost c4\n  ProxyJump ssh://h.example:2222,u@h\nHost c5\n  ProxyJump=eq@jump\nMATCH HOST c6\n  PROXYJUMP 192.168.1.1:2200\n",
            )],
            hosts: &["c1", "c2", "c3", "c4", "c5", "c6"],
        },
        Case {
            name: "depends on the port: jump host loop",
            files: &[("config", "ProxyJump a,loop\n")],
            hosts: &["loop"],
        },
        Case {
            name: "error bad port",
            files: &[("config", "Host x\n  Port 70000\n")],
            hosts: &["x"],
        },
        Case {
            name: "error unknown match criterion",
            files: &[("config", "Match colour blue\n  User x\n")],
            hosts: &["x"],
        },
        Case {
            name: "error include loop",
            files: &[("config", "Include @DIR@/config\n")],
            hosts: &["x"],
        },
        Case {
            name: "error unbalanced quotes",
            files: &[("config", "Host x\n  IdentityFile \"~/.ssh/unterminated\n")],
            hosts: &["x"],
        },
        Case {
            name: "error bad flag value",
            files: &[("config", "Host *\n  IdentitiesOnly maybe\n")],
            hosts: &["x"],
        },
        Case {
            name: "error missing argument",
            files: &[("config", "Host x\n  User\n")],
            hosts: &["x"],
        },
        Case {
            name: "error in an inactive block still counts",
            files: &[("config", "Host never-matches\n  ServerAliveInterval soon\n")],
            hosts: &["x"],
        },
    ];
}
