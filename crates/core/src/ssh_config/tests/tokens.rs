//! `%`, `~` and `${}` expansion, and where it is applied.

use super::super::expand::{percent_expand, tilde_expand, Tokens};
use super::super::sha1::sha1_hex;
use super::{resolve, resolve_err, strings};

#[test]
fn sha1_known_answers() {
    assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_eq!(sha1_hex(long), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

#[test]
fn percent_expansion() {
    let keys = [('h', "host"), ('p', "22")];
    assert_eq!(
        percent_expand("%h:%p %%h", &keys, false),
        Ok("host:22 %h".into())
    );
    assert!(percent_expand("%x", &keys, false).is_err());
    assert!(percent_expand("trailing %", &keys, false).is_err());
}

#[test]
fn dollar_expansion() {
    let path = std::env::var("PATH").unwrap_or_default();
    assert_eq!(
        percent_expand("${PATH}/x", &[], true),
        Ok(format!("{path}/x"))
    );
    assert_eq!(percent_expand("$PATH", &[], true), Ok("$PATH".into()));
    assert!(percent_expand("${FERROSSH_SURELY_UNSET_VARIABLE}", &[], true).is_err());
    assert!(percent_expand("${PATH", &[], true).is_err());
    assert!(percent_expand("${}", &[], true).is_err());
    assert_eq!(percent_expand("${PATH}", &[], false), Ok("${PATH}".into()));
}

#[test]
fn tilde_expansion() {
    assert_eq!(
        tilde_expand("~/.ssh/id", "/home/t"),
        Ok("/home/t/.ssh/id".into())
    );
    assert_eq!(tilde_expand("~", "/home/t"), Ok("/home/t/".into()));
    assert_eq!(tilde_expand("~//x", "/home/t/"), Ok("/home/t/x".into()));
    assert_eq!(tilde_expand("/abs/~/x", "/home/t"), Ok("/abs/~/x".into()));
    assert!(tilde_expand("~no-such-user-here/x", "/home/t").is_err());
}

#[test]
fn connection_hash_covers_local_host_remote_host_port_and_user() {
    let t = Tokens {
        host: "h".into(),
        port: "22".into(),
        remote_user: "r".into(),
        local_hostname: "l".into(),
        ..Tokens::default()
    };
    assert_eq!(t.connection_hash(), sha1_hex(b"lh22r"));
}

#[test]
fn identity_file_tokens() {
    let cfg = resolve(
        "Alias",
        "Host Alias\n  HostName Real.Example\n  User remote\n  Port 2222\n  HostKeyAlias KEY\n  IdentityFile ~/.ssh/%h-%r-%p-%n-%u-%l-%L-%d-%i-%k-%%\n",
    );
    let expected = "/home/tester/.ssh/real.example-remote-2222-Alias-tester-box.example.org-box-/home/tester-1000-key-%";
    assert_eq!(cfg.get_all("identityfile"), strings(&[expected]));
    let cfg = resolve("a", "IdentityFile /k/%C\n");
    let hash = sha1_hex(b"box.example.orga22tester");
    assert_eq!(cfg.get("identityfile"), Some(format!("/k/{hash}").as_str()));
}

#[test]
fn known_hosts_control_path_and_agent_are_expanded() {
    let cfg = resolve(
        "h",
        "UserKnownHostsFile ~/kh-%h %d/kh2\nControlPath ~/.ssh/cm-%r@%h:%p\nIdentityAgent ~/agent-%u\nGlobalKnownHostsFile ~/global-%h\n",
    );
    assert_eq!(
        cfg.get_all("userknownhostsfile"),
        strings(&["/home/tester/kh-h", "/home/tester/kh2"])
    );
    assert_eq!(
        cfg.get("controlpath"),
        Some("/home/tester/.ssh/cm-tester@h:22")
    );
    assert_eq!(cfg.get("identityagent"), Some("/home/tester/agent-tester"));
    // ssh only expands `~` in GlobalKnownHostsFile.
    assert_eq!(
        cfg.get("globalknownhostsfile"),
        Some("/home/tester/global-%h")
    );
}

#[test]
fn proxy_and_local_command_stay_as_written() {
    let cfg = resolve(
        "h",
        "ProxyCommand nc %h %p\nLocalCommand echo %h %T\nRemoteCommand echo %h %%\n",
    );
    assert_eq!(cfg.get("proxycommand"), Some("nc %h %p"));
    assert_eq!(cfg.get("localcommand"), Some("echo %h %T"));
    assert_eq!(cfg.get("remotecommand"), Some("echo h %"));
    assert_eq!(
        cfg.tokens().expand_proxy_command("nc %h %p %r %n %%"),
        Ok("nc h 22 tester h %".into())
    );
    assert!(cfg.tokens().expand_proxy_command("nc %d").is_err());
}

#[test]
fn hostname_accepts_only_h() {
    assert_eq!(
        resolve("web", "HostName %h.example.com\n").hostname(),
        "web.example.com"
    );
    assert_eq!(resolve("web", "HostName 100%%\n").hostname(), "100%");
    assert!(resolve_err("web", "HostName %r.example.com\n")
        .message
        .contains("%r"));
}

#[test]
fn hostname_is_lowercased_but_addresses_are_canonical() {
    assert_eq!(resolve("MiXeD", "").hostname(), "mixed");
    assert_eq!(resolve("x", "HostName 127.1\n").hostname(), "127.0.0.1");
    assert_eq!(
        resolve("x", "HostName 0x7f.0.0.1\n").hostname(),
        "127.0.0.1"
    );
    assert_eq!(resolve("x", "HostName FE80::1\n").hostname(), "FE80::1");
    assert_eq!(resolve("x", "HostName fe80:0:0::1\n").hostname(), "fe80::1");
}

#[test]
fn unknown_token_in_identity_file_is_an_error() {
    assert!(resolve_err("h", "IdentityFile ~/%z\n")
        .message
        .contains("%z"));
}
