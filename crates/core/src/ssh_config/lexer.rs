//! Splitting of configuration lines into a keyword and its arguments.
//!
//! ssh_config(5): "Configuration options may be separated by whitespace or
//! optional whitespace and exactly one '='; the latter format is useful to
//! avoid the need to quote whitespace when specifying configuration options".
//! "Arguments may optionally be enclosed in double quotes (\") in order to
//! represent arguments containing spaces." The rules below follow how ssh
//! tokenises a line: the keyword is split off on whitespace, a quote or one
//! '=', the rest is split like a shell word list (single or double quotes,
//! backslash escapes, `#` starting a comment only at the start of a word).

/// Characters ssh treats as whitespace between tokens.
const WHITESPACE: &[u8] = b" \t\r\n";

/// One non-empty, non-comment line of a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line<'a> {
    /// The keyword, lowercased (keywords are case-insensitive).
    pub keyword: String,
    /// Everything after the keyword and its separator, trailing whitespace
    /// removed. Commands (ProxyCommand, …), ProxyJump and Match read this.
    pub rest: &'a str,
    /// `rest` split into arguments, quotes and escapes removed.
    pub args: Vec<String>,
}

/// Why a line could not be split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LexError {
    /// A keyword with nothing after it.
    MissingArgument(String),
    /// A quote that is never closed.
    InvalidQuotes,
}

impl std::fmt::Display for LexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LexError::MissingArgument(k) => write!(f, "no argument after keyword \"{k}\""),
            LexError::InvalidQuotes => f.write_str("invalid quotes"),
        }
    }
}

/// Splits one line; `Ok(None)` for blank and comment lines.
pub(crate) fn split_line(line: &str) -> Result<Option<Line<'_>>, LexError> {
    // Trailing whitespace (and a form feed, which some editors leave at the
    // end of a line) never belongs to the last argument.
    let line = line.trim_end_matches([' ', '\t', '\r', '\n', '\x0c']);
    if line.is_empty() {
        return Ok(None);
    }
    let Some((mut keyword, mut rest)) = strdelim(line) else {
        return Ok(None);
    };
    // Leading whitespace yields an empty first token: the keyword is next.
    if keyword.is_empty() {
        match strdelim(rest.unwrap_or("")) {
            Some((k, r)) => {
                keyword = k;
                rest = r;
            }
            None => return Ok(None),
        }
    }
    if keyword.is_empty() || keyword.starts_with('#') {
        return Ok(None);
    }
    let keyword = keyword.to_ascii_lowercase();
    let rest = rest
        .unwrap_or("")
        .trim_start_matches([' ', '\t', '\r', '\n']);
    if rest.is_empty() {
        return Err(LexError::MissingArgument(keyword));
    }
    let args = argv_split(rest, true).ok_or(LexError::InvalidQuotes)?;
    Ok(Some(Line {
        keyword,
        rest,
        args,
    }))
}

/// Takes the next token off `s`, splitting on whitespace, a double-quoted
/// section, or a single `=`. Returns the token and what follows (`None`
/// once the input is used up); `None` overall for an unclosed quote.
///
/// Match criteria are read with this too, so `Match host=foo` and
/// `Match exec "test -f x"` work as they do in ssh.
pub(crate) fn strdelim(s: &str) -> Option<(String, Option<&str>)> {
    let bytes = s.as_bytes();
    let Some(pos) = bytes
        .iter()
        .position(|b| WHITESPACE.contains(b) || *b == b'"' || *b == b'=')
    else {
        return Some((s.to_string(), None));
    };
    if bytes[pos] == b'"' {
        let after = &s[pos + 1..];
        let close = after.find('"')?;
        let token = format!("{}{}", &s[..pos], &after[..close]);
        let rest = skip_whitespace(&after[close + 1..]);
        return Some((token, Some(rest)));
    }
    let token = s[..pos].to_string();
    let mut rest = skip_whitespace(&s[pos + 1..]);
    // Only one '=' may separate tokens: "a = b" and "a=b" but not "a==b".
    if bytes[pos] != b'=' {
        if let Some(after_eq) = rest.strip_prefix('=') {
            rest = skip_whitespace(after_eq);
        }
    }
    Some((token, Some(rest)))
}

fn skip_whitespace(s: &str) -> &str {
    s.trim_start_matches([' ', '\t', '\r', '\n'])
}

/// Splits arguments like ssh does: whitespace separates words, single and
/// double quotes group, a backslash escapes a quote, a backslash or (outside
/// quotes) a space, and `#` at the start of a word ends the line. `None` if
/// a quote is left open.
pub(crate) fn argv_split(s: &str, comments: bool) -> Option<Vec<String>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b' ' || b[i] == b'\t' {
            i += 1;
            continue;
        }
        if comments && b[i] == b'#' {
            break;
        }
        let (word, end, open_quote) = split_word(b, i);
        if open_quote {
            return None;
        }
        out.push(String::from_utf8_lossy(&word).into_owned());
        i = end;
    }
    Some(out)
}

/// Reads one word starting at `start`; returns it, the index after it, and
/// whether the input ended inside a quote.
fn split_word(b: &[u8], start: usize) -> (Vec<u8>, usize, bool) {
    let mut word = Vec::new();
    let mut quote = 0u8;
    let mut i = start;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == b'\\' {
            let escapable =
                matches!(next, Some(b'\'' | b'"' | b'\\')) || (quote == 0 && next == Some(b' '));
            if escapable {
                i += 1;
                word.push(b[i]);
            } else {
                word.push(c);
            }
        } else if quote == 0 && (c == b' ' || c == b'\t') {
            break;
        } else if quote == 0 && (c == b'"' || c == b'\'') {
            quote = c;
        } else if quote != 0 && c == quote {
            quote = 0;
        } else {
            word.push(c);
        }
        i += 1;
    }
    (word, i, i >= b.len() && quote != 0)
}
