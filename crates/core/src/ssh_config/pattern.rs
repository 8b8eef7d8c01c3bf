//! Patterns as ssh_config(5) "PATTERNS" defines them.
//!
//! "A pattern consists of zero or more non-whitespace characters, '*' (a
//! wildcard that matches zero or more characters), or '?' (a wildcard that
//! matches exactly one character)." "A pattern-list is a comma-separated
//! list of patterns. Patterns within pattern-lists may be negated by
//! preceding them with an exclamation mark ('!')."

/// Result of matching against a pattern-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListMatch {
    /// A negated pattern matched: this overrides any positive match.
    Negated,
    /// Nothing matched.
    None,
    /// A positive pattern matched and no negated one did.
    Positive,
}

/// Longest sub-pattern ssh accepts in a pattern-list; longer ones never match.
const MAX_SUBPATTERN: usize = 1023;

/// Whether `s` matches `pattern` (`*` and `?` wildcards), byte by byte and
/// case-sensitively.
pub(crate) fn match_pattern(s: &str, pattern: &str) -> bool {
    let (s, p) = (s.as_bytes(), pattern.as_bytes());
    let (mut si, mut pi) = (0usize, 0usize);
    // Where to resume after the last '*': (pattern index after it, string index).
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || (p[pi] != b'*' && p[pi] == s[si])) {
            si += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi + 1, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Matches `s` against a comma-separated pattern-list. With `lowercase`, the
/// patterns are lowercased first (host names are compared that way).
pub(crate) fn match_pattern_list(s: &str, list: &str, lowercase: bool) -> ListMatch {
    let mut positive = false;
    for sub in list.split(',') {
        let (negated, sub) = match sub.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, sub),
        };
        if sub.len() >= MAX_SUBPATTERN {
            return ListMatch::None;
        }
        let sub = if lowercase {
            sub.to_ascii_lowercase()
        } else {
            sub.to_string()
        };
        if match_pattern(s, &sub) {
            if negated {
                return ListMatch::Negated;
            }
            positive = true;
        }
    }
    if positive {
        ListMatch::Positive
    } else {
        ListMatch::None
    }
}

/// `Match host`/`originalhost`: the host is compared in lowercase against a
/// lowercased pattern-list.
pub(crate) fn match_hostname(host: &str, list: &str) -> ListMatch {
    match_pattern_list(&host.to_ascii_lowercase(), list, true)
}

/// One path component of a glob(3) pattern as Include uses it: `*`, `?` and
/// `[...]` classes; a leading '.' must be matched literally.
pub(crate) fn glob_component_matches(name: &str, pattern: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    glob_match(name.as_bytes(), pattern.as_bytes())
}

/// Whether a path component contains glob(3) magic characters.
pub(crate) fn has_glob_magic(component: &str) -> bool {
    component.bytes().any(|c| matches!(c, b'*' | b'?' | b'['))
}

fn glob_match(s: &[u8], p: &[u8]) -> bool {
    let (mut si, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        let step = if pi < p.len() {
            glob_step(s[si], &p[pi..])
        } else {
            None
        };
        match step {
            Some(GlobStep::Star) => {
                star = Some((pi + 1, si));
                pi += 1;
                continue;
            }
            Some(GlobStep::Matched(width)) => {
                si += 1;
                pi += width;
                continue;
            }
            None => {}
        }
        match star {
            Some((sp, ss)) => {
                pi = sp;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

enum GlobStep {
    Star,
    /// The byte matched a pattern element this many bytes long.
    Matched(usize),
}

fn glob_step(c: u8, p: &[u8]) -> Option<GlobStep> {
    match p[0] {
        b'*' => Some(GlobStep::Star),
        b'?' => Some(GlobStep::Matched(1)),
        b'[' => match bracket(c, p) {
            Some((true, width)) => Some(GlobStep::Matched(width)),
            Some((false, _)) => None,
            // An unclosed '[' is an ordinary character.
            None => (c == b'[').then_some(GlobStep::Matched(1)),
        },
        lit => (lit == c).then_some(GlobStep::Matched(1)),
    }
}

/// Evaluates a `[...]` class at the start of `p`: whether `c` is in it and
/// how long the class is; `None` when the class is not closed.
fn bracket(c: u8, p: &[u8]) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        if lo == b']' && !first {
            return Some((found != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|&h| h != b']') {
            let hi = p[i + 2];
            found |= lo <= c && c <= hi;
            i += 3;
        } else {
            found |= lo == c;
            i += 1;
        }
    }
}
