//! Match criteria and the final pass.

use super::super::{resolve_str, ResolveOptions};
use super::{opts, resolve, resolve_err};

#[test]
fn match_host_uses_the_hostname_set_so_far() {
    let text = "Host short\n  HostName Long.Example.com\nMatch host *.example.com\n  User by-hostname\nMatch host short\n  Port 2200\n";
    let cfg = resolve("short", text);
    assert_eq!((cfg.user(), cfg.port()), ("by-hostname".to_string(), 22));
}

#[test]
fn match_originalhost_uses_the_name_given() {
    let text = "Host short\n  HostName long.example.com\nMatch originalhost SHORT\n  Port 2201\n";
    assert_eq!(resolve("short", text).port(), 2201);
}

#[test]
fn match_user_sees_the_user_so_far_and_the_command_line() {
    let text = "Host h\n  User bob\nMatch user bob\n  Port 2202\nMatch user alice\n  Port 2203\n";
    assert_eq!(resolve("h", text).port(), 2202);
    let alice = ResolveOptions {
        user: Some("alice".into()),
        ..opts()
    };
    assert_eq!(
        resolve_str("h", text, &alice).map(|c| c.port()).ok(),
        Some(2203)
    );
}

#[test]
fn match_localuser() {
    assert_eq!(
        resolve("h", "Match localuser test*\n  Port 2204\n").port(),
        2204
    );
    assert_eq!(
        resolve("h", "Match localuser root\n  Port 2204\n").port(),
        22
    );
}

#[test]
fn match_all_and_negation() {
    assert_eq!(resolve("h", "Match all\n  Port 2205\n").port(), 2205);
    assert_eq!(resolve("h", "Match !all\n  Port 2205\n").port(), 22);
    assert_eq!(resolve("x1", "Match !host y*\n  Port 2206\n").port(), 2206);
    assert_eq!(resolve("y1", "Match !host y*\n  Port 2206\n").port(), 22);
    assert_eq!(resolve("x1", "Match host x*,!x1\n  Port 2207\n").port(), 22);
    assert_eq!(
        resolve("x2", "Match host x* !originalhost x2\n  Port 2207\n").port(),
        22
    );
}

#[test]
fn all_after_one_criterion_is_accepted_like_ssh() {
    assert_eq!(
        resolve("m1", "Match host m* all\n  Port 2208\n").port(),
        2208
    );
    assert!(resolve_err("m1", "Match all host m*\n")
        .message
        .contains("cannot be combined"));
}

#[test]
fn criteria_syntax() {
    assert_eq!(
        resolve("eq1", "Match host=eq* # note\n  Port 2209\n").port(),
        2209
    );
    assert_eq!(resolve("c", "MATCH HOST c\n  Port 2210\n").port(), 2210);
    assert!(resolve_err("h", "Match host\n")
        .message
        .contains("missing Match criteria"));
    assert!(resolve_err("h", "Match # only a comment\n")
        .message
        .contains("one or more attributes"));
}

#[test]
fn canonical_is_false_without_a_second_pass() {
    let cfg = resolve(
        "h",
        "Match canonical\n  User canon\nMatch !canonical\n  Port 2211\n",
    );
    assert_eq!((cfg.user(), cfg.port()), ("tester".to_string(), 2211));
}

#[test]
fn any_mention_of_final_asks_for_the_second_pass() {
    // "!final" holds in the first pass and, because it names final, the
    // second pass then sees "canonical" hold.
    let cfg = resolve(
        "h",
        "Match !final\n  Port 2211\nMatch canonical\n  User canon\n",
    );
    assert_eq!((cfg.user(), cfg.port()), ("canon".to_string(), 2211));
}

#[test]
fn match_final_reparses_with_the_hostname() {
    let text = "Host alias\n  HostName real.example.org\nHost real.example.org\n  User final-user\nMatch final host *.example.org\n  Port 2212\nMatch all\n  SendEnv EVERY\nMatch final\n  SendEnv FINAL\n";
    let cfg = resolve("alias", text);
    assert_eq!((cfg.user(), cfg.port()), ("final-user".to_string(), 2212));
    // Nothing from the first pass is forgotten; SendEnv is simply read twice.
    assert_eq!(cfg.get_all("sendenv"), ["EVERY", "EVERY", "FINAL"]);
}

#[test]
fn hostname_cannot_change_in_the_final_pass() {
    let text = "Match final\n  HostName changed.example\n";
    assert_eq!(resolve("orig", text).hostname(), "orig");
}

#[test]
fn canonicalize_hostname_also_reparses() {
    let text = "CanonicalizeHostname yes\nMatch canonical\n  Port 2213\n";
    assert_eq!(resolve("h", text).port(), 2213);
    assert_eq!(resolve("h", "Match canonical\n  Port 2213\n").port(), 22);
}

#[cfg(unix)]
#[test]
fn match_exec_uses_the_exit_status() {
    assert_eq!(resolve("h", "Match exec true\n  Port 2214\n").port(), 2214);
    assert_eq!(resolve("h", "Match exec false\n  Port 2214\n").port(), 22);
    assert_eq!(
        resolve("h", "Match !exec false\n  Port 2215\n").port(),
        2215
    );
    assert_eq!(
        resolve("ex1", "Match exec \"test %h = ex1\"\n  Port 2216\n").port(),
        2216
    );
    assert_eq!(
        resolve("ex2", "Match exec \"test %h = ex1\"\n  Port 2216\n").port(),
        22
    );
}

#[cfg(unix)]
#[test]
fn match_exec_tokens_reflect_options_so_far() {
    let text = "Host t\n  HostName tok.example\n  User u1\n  Port 2000\nMatch exec \"test %h:%n:%r:%p:%u:%d = tok.example:t:u1:2000:tester:/home/tester\"\n  IdentityFile ~/matched\n";
    assert_eq!(
        resolve("t", text).get("identityfile"),
        Some("/home/tester/matched")
    );
}

#[test]
fn match_exec_is_skipped_after_a_failed_criterion() {
    let dir = tempfile::tempdir().ok();
    let marker = dir
        .as_ref()
        .map(|d| d.path().join("ran"))
        .unwrap_or_default();
    let text = format!(
        "Match host nomatch exec \"touch {}\"\n  Port 1\n",
        marker.display()
    );
    assert_eq!(resolve("h", &text).port(), 22);
    assert!(!marker.exists());
}
