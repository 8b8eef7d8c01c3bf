//! Malformed configuration: every error names its line.

use std::path::PathBuf;

use super::super::ConfigError;
use super::resolve_err;

/// The line and a fragment of the message for a configuration error.
fn error_at(text: &str) -> (Option<usize>, String) {
    let e = resolve_err("h", text);
    (e.line, e.message)
}

#[test]
fn malformed_lines_report_their_line() {
    let cases: &[(&str, usize, &str)] = &[
        ("User ok\nPort 70000\n", 2, "bad port"),
        ("Port 0\n", 1, "bad port"),
        ("\n\nUser\n", 3, "no argument"),
        ("IdentityFile \"~/open\n", 1, "invalid quotes"),
        ("IdentitiesOnly maybe\n", 1, "unsupported option"),
        ("StrictHostKeyChecking perhaps\n", 1, "unsupported option"),
        ("Match colour blue\n", 1, "unsupported Match attribute"),
        ("Port 22 23\n", 1, "extra arguments"),
        ("User \"\"\n", 1, "missing argument"),
        ("ServerAliveInterval soon\n", 1, "invalid time"),
        ("ServerAliveCountMax -1\n", 1, "integer"),
        ("LocalForward 8080\n", 1, "missing target"),
        ("LocalForward 8080 nowhere\n", 1, "bad forwarding"),
        ("SendEnv A=B\n", 1, "invalid environment name"),
        ("SetEnv NOVALUE\n", 1, "invalid SetEnv"),
        ("ProxyJump host:port\n", 1, "invalid ProxyJump"),
        ("UserKnownHostsFile none /a\n", 1, "must appear alone"),
        ("Host \"\"\n", 1, "empty argument"),
        ("IdentityAgent $BAD-NAME\n", 1, "invalid environment name"),
    ];
    for (text, line, fragment) in cases {
        let (got_line, message) = error_at(text);
        assert_eq!(got_line, Some(*line), "{text:?}: {message}");
        assert!(
            message.contains(fragment),
            "{text:?}: {message:?} lacks {fragment:?}"
        );
    }
}

#[test]
fn errors_in_blocks_that_do_not_apply_still_count() {
    assert_eq!(error_at("Host other\n  Port nope\n").0, Some(2));
}

#[test]
fn display_names_file_and_line() {
    let e = ConfigError {
        message: "bad port '0'".into(),
        file: Some(PathBuf::from("/x/config")),
        line: Some(3),
    };
    assert_eq!(e.to_string(), "/x/config:3: bad port '0'");
    let no_file = ConfigError {
        message: "m".into(),
        file: None,
        line: Some(2),
    };
    assert_eq!(no_file.to_string(), "line 2: m");
    let neither = ConfigError {
        message: "m".into(),
        file: None,
        line: None,
    };
    assert_eq!(neither.to_string(), "m");
}
