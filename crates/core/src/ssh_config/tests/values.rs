//! Value parsers: times, algorithm lists, forwardings, ProxyJump.

use super::super::algorithms::{assemble, validate, AlgorithmDefaults, AlgorithmList};
use super::super::forward::{self, Connect, Forward, ForwardKind, Listen};
use super::super::jump::{self, JumpSetting};
use super::super::keywords::AlgClass;
use super::super::options::parse_time;
use super::{resolve, resolve_err, strings};

fn table() -> AlgorithmList {
    AlgorithmList {
        default: strings(&["a1", "b1", "c1"]),
        supported: strings(&["a1", "a2", "b1", "b2", "c1"]),
    }
}

#[test]
fn time_formats() {
    assert_eq!(parse_time("90"), Some(90));
    assert_eq!(parse_time("90s"), Some(90));
    assert_eq!(parse_time("1h30m"), Some(5400));
    assert_eq!(parse_time("2d"), Some(172_800));
    assert_eq!(parse_time("1W"), Some(604_800));
    assert_eq!(parse_time("1h30"), Some(3630));
    assert_eq!(parse_time(""), None);
    assert_eq!(parse_time("soon"), None);
    assert_eq!(parse_time("5x"), None);
    assert_eq!(parse_time("99999999999"), None);
}

#[test]
fn algorithm_lists_replace_append_remove_and_prepend() {
    let t = table();
    assert_eq!(assemble(None, &t), Ok(strings(&["a1", "b1", "c1"])));
    assert_eq!(assemble(Some("b2,a1"), &t), Ok(strings(&["b2", "a1"])));
    assert_eq!(
        assemble(Some("+a2,b1"), &t),
        Ok(strings(&["a1", "b1", "c1", "a2"]))
    );
    assert_eq!(assemble(Some("-b*"), &t), Ok(strings(&["a1", "c1"])));
    assert_eq!(assemble(Some("-*"), &t), Ok(Vec::new()));
    assert_eq!(
        assemble(Some("^c1,a2"), &t),
        Ok(strings(&["c1", "a2", "a1", "b1"]))
    );
    assert_eq!(assemble(Some("a*"), &t), Ok(strings(&["a1", "a2"])));
}

#[test]
fn algorithm_names_are_validated() {
    let t = table();
    assert!(validate("a1,b2", AlgClass::Cipher, &t));
    assert!(validate("+a2", AlgClass::Cipher, &t));
    assert!(!validate("zz", AlgClass::Cipher, &t));
    assert!(!validate("a*", AlgClass::Cipher, &t));
    assert!(validate("a*", AlgClass::Key, &t));
    assert!(!validate("z*", AlgClass::Key, &t));
    assert!(validate("-anything*", AlgClass::Mac, &t));
    assert!(!validate("+", AlgClass::Mac, &t));
}

#[test]
fn configured_algorithms_use_the_given_defaults() {
    let cfg = resolve(
        "h",
        "Ciphers +aes128-cbc\nMACs -*-etm@openssh.com\nKexAlgorithms ^curve25519-sha256\n",
    );
    let defaults = AlgorithmDefaults::openssh_9_2();
    let mut ciphers = defaults.ciphers.default.clone();
    ciphers.push("aes128-cbc".into());
    assert_eq!(cfg.get("ciphers"), Some(ciphers.join(",").as_str()));
    assert!(!cfg.get("macs").unwrap_or_default().contains("etm"));
    assert!(cfg
        .get("kexalgorithms")
        .unwrap_or_default()
        .starts_with("curve25519-sha256,sntrup"));
    assert_eq!(
        cfg.get("hostkeyalgorithms"),
        Some(defaults.host_keys.default.join(",").as_str())
    );
    assert!(resolve_err("h", "Ciphers nonsense\n")
        .message
        .contains("nonsense"));
}

fn fwd(spec: &str, dynamic: bool, remote: bool) -> Option<Forward> {
    forward::parse(spec, dynamic, remote)
}

#[test]
fn forward_specifications() {
    let local = fwd("8080:db:5432", false, false);
    assert_eq!(
        local,
        Some(Forward {
            listen: Listen::Port {
                bind: None,
                port: 8080
            },
            connect: Connect::Port {
                host: "db".into(),
                port: 5432
            }
        })
    );
    let v6 = fwd("[::1]:8080:[2001:db8::1]:80", false, false);
    assert_eq!(
        v6.map(|f| f.render(ForwardKind::Local)),
        Some("[::1]:8080 [2001:db8::1]:80".into())
    );
    let socket = fwd("/tmp/l.sock:db:5432", false, false);
    assert_eq!(
        socket.map(|f| f.render(ForwardKind::Local)),
        Some("/tmp/l.sock [db]:5432".into())
    );
    let to_socket = fwd("0.0.0.0:9002:/run/r.sock", false, true);
    assert_eq!(
        to_socket.map(|f| f.render(ForwardKind::Remote)),
        Some("[0.0.0.0]:9002 /run/r.sock".into())
    );
    let dynamic = fwd("localhost:1080", true, false);
    assert_eq!(
        dynamic.map(|f| f.render(ForwardKind::Dynamic)),
        Some("[localhost]:1080".into())
    );
    let remote_socks = fwd("9001", true, true);
    assert_eq!(
        remote_socks.map(|f| f.render(ForwardKind::Remote)),
        Some("9001 [socks]:0".into())
    );
    let escaped = fwd("8080:host\\:x:80", false, false);
    assert_eq!(
        escaped.map(|f| f.connect),
        Some(Connect::Port {
            host: "host:x".into(),
            port: 80
        })
    );
}

#[test]
fn bad_forward_specifications() {
    assert_eq!(fwd("8080:db", false, false), None);
    assert_eq!(fwd("0:db:80", false, false), None);
    assert!(fwd("0:db:80", false, true).is_some());
    assert_eq!(fwd("8080:db:0", false, false), None);
    assert_eq!(fwd("a:b:c:d:e", false, false), None);
    assert_eq!(fwd("1:2:3", true, false), None);
    assert_eq!(fwd("[::1:8080", true, false), None);
    assert_eq!(fwd("99999", true, false), None);
}

fn hop(spec: &str) -> Option<String> {
    match jump::parse(spec)? {
        JumpSetting::Hop(j) => Some(j.render()),
        JumpSetting::Disabled => Some("<none>".into()),
    }
}

#[test]
fn proxy_jump_specifications() {
    assert_eq!(hop("bastion"), Some("bastion".into()));
    assert_eq!(hop("me@bastion:2222"), Some("me@bastion:2222".into()));
    assert_eq!(hop("a,b@c:22,last"), Some("a,b@c:22,last".into()));
    assert_eq!(hop("10.0.0.1"), Some("[10.0.0.1]".into()));
    assert_eq!(hop("[2001:db8::1]:22"), Some("[2001:db8::1]:22".into()));
    assert_eq!(
        hop("ssh://u%40x@h.example:2022"),
        Some("u@x@h.example:2022".into())
    );
    assert_eq!(hop("a,b # comment"), Some("a,b".into()));
    assert_eq!(hop("NONE"), Some("<none>".into()));
    assert_eq!(hop("host:notaport"), None);
    assert_eq!(hop("a,,b"), None);
    assert_eq!(hop("@host"), None);
    assert_eq!(hop("ssh://h.example/path"), None);
}

#[test]
fn forwardings_accumulate_without_duplicates() {
    let cfg = resolve(
        "h",
        "LocalForward 8080 db:5432\nLocalForward 8080 db:5432\nLocalForward 8081 db:5433\nRemoteForward 9000\nDynamicForward 1080\n",
    );
    assert_eq!(
        cfg.get_all("localforward"),
        strings(&["8080 [db]:5432", "8081 [db]:5433"])
    );
    assert_eq!(cfg.get_all("remoteforward"), strings(&["9000 [socks]:0"]));
    assert_eq!(cfg.get_all("dynamicforward"), strings(&["1080"]));
    assert_eq!(cfg.local_forwards().len(), 2);
    assert_eq!(cfg.remote_forwards()[0].connect, Connect::Socks);
    assert_eq!(
        cfg.dynamic_forwards()[0].listen,
        Listen::Port {
            bind: None,
            port: 1080
        }
    );
}

#[test]
fn clear_all_forwardings() {
    let cfg = resolve(
        "h",
        "ClearAllForwardings yes\nLocalForward 8080 db:5432\nDynamicForward 1080\n",
    );
    assert!(cfg.get_all("localforward").is_empty() && cfg.dynamic_forwards().is_empty());
}

#[test]
fn socket_paths_in_forwards_get_tokens() {
    let cfg = resolve("h", "LocalForward /tmp/%h.sock db:5432\n");
    assert_eq!(cfg.get("localforward"), Some("/tmp/h.sock [db]:5432"));
}
