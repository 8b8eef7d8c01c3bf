//! Line splitting and patterns.

use super::super::lexer::{argv_split, split_line, strdelim, LexError};
use super::super::pattern::{
    glob_component_matches, match_hostname, match_pattern, match_pattern_list, ListMatch,
};

fn words(line: &str) -> (String, Vec<String>) {
    match split_line(line) {
        Ok(Some(l)) => (l.keyword, l.args),
        other => panic!("{line:?} gave {other:?}"),
    }
}

#[test]
fn keyword_and_value_separated_by_space_or_equals() {
    for line in [
        "User bob",
        "User=bob",
        "User = bob",
        "  User\tbob",
        "USER bob",
        "user  =  bob  ",
    ] {
        assert_eq!(
            words(line),
            ("user".to_string(), vec!["bob".to_string()]),
            "{line:?}"
        );
    }
}

#[test]
fn only_one_equals_sign_is_a_separator() {
    assert_eq!(words("SetEnv = A=1").1, vec!["A=1"]);
    assert_eq!(words("Host =a").1, vec!["a"]);
}

#[test]
fn blank_and_comment_lines_are_skipped() {
    for line in ["", "   ", "# comment", "   # indented comment", "\t\r"] {
        assert_eq!(split_line(line), Ok(None), "{line:?}");
    }
}

#[test]
fn comments_end_the_line_only_at_word_start() {
    assert_eq!(
        words("IdentityFile ~/.ssh/id#1 # note").1,
        vec!["~/.ssh/id#1"]
    );
}

#[test]
fn quotes_group_words_and_escapes_work() {
    assert_eq!(
        words(r#"IdentityFile "/a b" '/c d' /e\ f"#).1,
        vec!["/a b", "/c d", "/e f"]
    );
    assert_eq!(words(r#"User "a\"b""#).1, vec!["a\"b"]);
    assert_eq!(words(r#"User a\zb"#).1, vec![r"a\zb"]);
    assert_eq!(words(r#"User """#).1, vec![""]);
}

#[test]
fn rest_keeps_the_raw_text_for_commands() {
    let line = split_line("ProxyCommand  ssh -W '%h:%p' bastion # kept   ")
        .ok()
        .flatten();
    assert_eq!(line.map(|l| l.rest), Some("ssh -W '%h:%p' bastion # kept"));
}

#[test]
fn missing_argument_and_open_quote_are_errors() {
    assert_eq!(
        split_line("User"),
        Err(LexError::MissingArgument("user".into()))
    );
    assert_eq!(
        split_line("User   "),
        Err(LexError::MissingArgument("user".into()))
    );
    assert_eq!(split_line("User \"bob"), Err(LexError::InvalidQuotes));
    assert_eq!(split_line("User 'bob"), Err(LexError::InvalidQuotes));
}

#[test]
fn strdelim_splits_like_match_criteria_need() {
    assert_eq!(
        strdelim("host=foo rest"),
        Some(("host".into(), Some("foo rest")))
    );
    assert_eq!(
        strdelim("\"test -f x\" next"),
        Some(("test -f x".into(), Some("next")))
    );
    assert_eq!(strdelim("last"), Some(("last".into(), None)));
    assert_eq!(strdelim("\"open"), None);
}

#[test]
fn argv_split_without_comments_keeps_hashes() {
    assert_eq!(
        argv_split("a #b", false),
        Some(vec!["a".to_string(), "#b".to_string()])
    );
}

#[test]
fn wildcards_match_like_ssh() {
    assert!(match_pattern("web1", "web?"));
    assert!(!match_pattern("web12", "web?"));
    assert!(match_pattern("a.b.example.com", "*.example.com"));
    assert!(match_pattern("anything", "*"));
    assert!(match_pattern("", "*"));
    assert!(match_pattern("abc", "a**c"));
    assert!(!match_pattern("Web1", "web?"));
    assert!(match_pattern("aXbXc", "a*b*c"));
    assert!(!match_pattern("ab", "a*b*c"));
}

#[test]
fn pattern_lists_honour_negation() {
    assert_eq!(
        match_pattern_list("db1", "db*,!db2", false),
        ListMatch::Positive
    );
    assert_eq!(
        match_pattern_list("db2", "db*,!db2", false),
        ListMatch::Negated
    );
    assert_eq!(
        match_pattern_list("web", "db*,!db2", false),
        ListMatch::None
    );
    assert_eq!(match_pattern_list("x", "!y", false), ListMatch::None);
}

#[test]
fn host_lists_compare_in_lowercase() {
    assert_eq!(
        match_hostname("WEB.Example", "web.EXAMPLE"),
        ListMatch::Positive
    );
    assert_eq!(match_pattern_list("Alice", "alice", false), ListMatch::None);
}

#[test]
fn glob_components() {
    assert!(glob_component_matches("10-a.conf", "*.conf"));
    assert!(!glob_component_matches(".hidden.conf", "*.conf"));
    assert!(glob_component_matches(".hidden.conf", ".*.conf"));
    assert!(glob_component_matches("b.conf", "[a-c].conf"));
    assert!(!glob_component_matches("d.conf", "[a-c].conf"));
    assert!(glob_component_matches("d.conf", "[!a-c].conf"));
    assert!(glob_component_matches("x1", "x?"));
    assert!(glob_component_matches("[x", "[x"));
}
