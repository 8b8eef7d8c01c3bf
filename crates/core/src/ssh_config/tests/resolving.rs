//! Precedence, Host blocks, defaults and the public accessors.

use super::super::{resolve_str, ResolveOptions};
use super::{opts, resolve, strings};

#[test]
fn first_obtained_value_wins() {
    let text = "Host web\n  User first\n  Port 2200\nHost *\n  User second\n  Port 2300\n  Compression yes\n";
    let cfg = resolve("web", text);
    assert_eq!((cfg.user(), cfg.port()), ("first".to_string(), 2200));
    assert_eq!(cfg.get("compression"), Some("yes"));
    let other = resolve("db", text);
    assert_eq!((other.user(), other.port()), ("second".to_string(), 2300));
}

#[test]
fn command_line_user_and_port_win() {
    let o = ResolveOptions {
        user: Some("cli".into()),
        port: Some(2022),
        ..opts()
    };
    let cfg = resolve_str("h", "User file\nPort 2200\n", &o).ok();
    assert_eq!(
        cfg.map(|c| (c.user(), c.port())),
        Some(("cli".to_string(), 2022))
    );
}

#[test]
fn defaults_when_nothing_is_set() {
    let cfg = resolve("Plain", "");
    assert_eq!(
        (cfg.hostname(), cfg.user(), cfg.port()),
        ("plain".to_string(), "tester".to_string(), 22)
    );
    assert_eq!(cfg.get_all("identityfile").len(), 7);
    assert_eq!(cfg.get("identityfile"), Some("/home/tester/.ssh/id_rsa"));
    assert_eq!(
        cfg.get_all("userknownhostsfile"),
        strings(&[
            "/home/tester/.ssh/known_hosts",
            "/home/tester/.ssh/known_hosts2"
        ])
    );
    assert_eq!(
        cfg.get_all("globalknownhostsfile"),
        strings(&["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"])
    );
    for (key, value) in [
        ("stricthostkeychecking", "ask"),
        ("serveraliveinterval", "0"),
        ("serveralivecountmax", "3"),
        ("connecttimeout", "none"),
        ("identitiesonly", "no"),
        ("hashknownhosts", "no"),
        ("compression", "no"),
    ] {
        assert_eq!(cfg.get(key), Some(value), "{key}");
    }
    assert_eq!(cfg.get("proxycommand"), None);
    assert_eq!(cfg.get("proxyjump"), None);
}

#[test]
fn host_patterns_and_negation() {
    let text = "Host *.corp !bastion.corp\n  User corp\nHost web? build-*\n  Port 2200\n";
    assert_eq!(resolve("app.corp", text).user(), "corp");
    assert_eq!(resolve("bastion.corp", text).user(), "tester");
    assert_eq!(resolve("web1", text).port(), 2200);
    assert_eq!(resolve("web12", text).port(), 22);
    assert_eq!(resolve("build-x", text).port(), 2200);
}

#[test]
fn a_line_of_only_negations_never_matches() {
    assert_eq!(resolve("other", "Host !foo\n  User neg\n").user(), "tester");
}

#[test]
fn host_patterns_are_case_sensitive() {
    assert_eq!(resolve("web", "Host WEB\n  Port 2200\n").port(), 22);
    assert_eq!(resolve("WEB", "Host WEB\n  Port 2200\n").port(), 2200);
}

#[test]
fn keywords_are_case_insensitive_and_aliases_map() {
    let cfg = resolve(
        "h",
        "USER Bob\nChallengeResponseAuthentication no\nPubkeyAcceptedKeyTypes +ssh-rsa\n",
    );
    assert_eq!(cfg.user(), "Bob");
    assert_eq!(cfg.get("kbdinteractiveauthentication"), Some("no"));
    assert!(cfg
        .get("pubkeyacceptedalgorithms")
        .unwrap_or_default()
        .ends_with(",ssh-rsa"));
}

#[test]
fn identity_and_certificate_files_accumulate() {
    let text = "Host h\n  IdentityFile ~/.ssh/a\n  CertificateFile ~/.ssh/a-cert.pub\nHost *\n  IdentityFile ~/.ssh/b\n  IdentityFile ~/.ssh/a\n";
    let cfg = resolve("h", text);
    assert_eq!(
        cfg.get_all("identityfile"),
        strings(&["/home/tester/.ssh/a", "/home/tester/.ssh/b"])
    );
    assert_eq!(
        cfg.get_all("certificatefile"),
        strings(&["/home/tester/.ssh/a-cert.pub"])
    );
}

#[test]
fn identity_file_none_means_no_keys() {
    assert!(resolve("h", "IdentityFile none\n")
        .get_all("identityfile")
        .is_empty());
}

#[test]
fn known_hosts_lists_take_the_first_line_whole() {
    let cfg = resolve("h", "UserKnownHostsFile /a /b\nUserKnownHostsFile /c\n");
    assert_eq!(cfg.get_all("userknownhostsfile"), strings(&["/a", "/b"]));
    assert_eq!(
        resolve("h", "UserKnownHostsFile none\n").get_all("userknownhostsfile"),
        strings(&["none"])
    );
}

#[test]
fn send_env_accumulates_and_removes() {
    let cfg = resolve(
        "h",
        "SendEnv LANG LC_*\nSendEnv -LC_*\nSendEnv EDITOR\nSendEnv LANG\n",
    );
    assert_eq!(cfg.get_all("sendenv"), strings(&["LANG", "EDITOR", "LANG"]));
}

#[test]
fn set_env_first_line_wins_and_keeps_first_of_a_name() {
    let cfg = resolve("h", "SetEnv A=1 B=\"x y\" A=2\nSetEnv C=3\n");
    assert_eq!(cfg.get_all("setenv"), strings(&["A=1", "B=x y"]));
}

#[test]
fn values_are_normalised_like_ssh_g() {
    let cfg = resolve(
        "h",
        "StrictHostKeyChecking yes\nIdentitiesOnly true\nServerAliveInterval 1m\nConnectTimeout 1h\nLogLevel debug1\nFingerprintHash md5\n",
    );
    for (key, value) in [
        ("stricthostkeychecking", "true"),
        ("identitiesonly", "yes"),
        ("serveraliveinterval", "60"),
        ("connecttimeout", "3600"),
        ("loglevel", "DEBUG"),
        ("fingerprinthash", "MD5"),
    ] {
        assert_eq!(cfg.get(key), Some(value), "{key}");
    }
}

#[test]
fn time_none_leaves_the_keyword_open() {
    assert_eq!(
        resolve("h", "ConnectTimeout none\nConnectTimeout 5\n").get("connecttimeout"),
        Some("5")
    );
}

#[test]
fn proxy_jump_and_command_exclude_each_other() {
    let jump_first = resolve("h", "ProxyJump me@hop:2200\nProxyCommand nc %h %p\n");
    assert_eq!(jump_first.get("proxyjump"), Some("me@hop:2200"));
    assert_eq!(jump_first.get("proxycommand"), None);
    let command_first = resolve("h", "ProxyCommand nc %h %p\nProxyJump hop\n");
    assert_eq!(
        (
            command_first.get("proxycommand"),
            command_first.get("proxyjump")
        ),
        (Some("nc %h %p"), None)
    );
}

#[test]
fn none_unsets_proxy_jump_and_command() {
    let cfg = resolve("h", "ProxyJump none\nProxyJump later\n");
    assert_eq!(cfg.get("proxyjump"), None);
    let cfg = resolve(
        "h",
        "ProxyCommand none\nProxyJump later\nProxyCommand later\n",
    );
    assert_eq!(
        (cfg.get("proxyjump"), cfg.get("proxycommand")),
        (None, None)
    );
    let cfg = resolve("h", "ProxyJump none\nProxyCommand nc %h %p\n");
    assert_eq!(cfg.get("proxycommand"), Some("nc %h %p"));
}

#[test]
fn jumping_through_the_destination_is_a_loop() {
    assert!(super::resolve_err("b", "ProxyJump a,b\n")
        .message
        .contains("jumphost loop"));
    assert_eq!(
        resolve("b", "ProxyJump b:2222\n").get("proxyjump"),
        Some("b:2222")
    );
    assert_eq!(
        resolve("b", "ProxyJump other@b\n").get("proxyjump"),
        Some("other@b")
    );
}

#[test]
fn unknown_and_deprecated_keywords_are_ignored() {
    let cfg = resolve(
        "h",
        "UseKeychain yes\nSomeFutureOption x y z\nProtocol 2\nCipher blowfish\nUser ok\n",
    );
    assert_eq!(cfg.user(), "ok");
    assert_eq!(cfg.get("usekeychain"), None);
}

#[test]
fn accessors() {
    let cfg = resolve("h", "SendEnv A\n");
    assert_eq!(cfg.get("SENDENV"), Some("A"));
    assert!(cfg.get_all("nosuchkey").is_empty());
    let keys: Vec<&str> = cfg.entries().map(|(k, _)| k).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "entries are sorted");
    assert!(keys.contains(&"hostname") && keys.contains(&"sendenv") && keys.contains(&"ciphers"));
}

#[test]
fn syslog_facility_applies_even_in_a_non_matching_block() {
    assert_eq!(
        resolve("h", "Host other\n  SyslogFacility LOCAL3\n").get("syslogfacility"),
        Some("LOCAL3")
    );
}
