//! Expansion of Include patterns the way glob(3) does it: each path
//! component may hold `*`, `?` or `[...]`, hidden names need an explicit
//! leading '.', unreadable directories are skipped, and the result is sorted.

use std::path::{Path, PathBuf};

use super::pattern::{glob_component_matches, has_glob_magic};

/// The existing paths matching `pattern`, sorted bytewise.
pub(crate) fn glob(pattern: &str) -> Vec<PathBuf> {
    let (root, components) = split_pattern(pattern);
    let mut found = vec![root];
    for (i, component) in components.iter().enumerate() {
        let last = i + 1 == components.len();
        found = found
            .into_iter()
            .flat_map(|dir| expand_component(&dir, component, last))
            .collect();
        if found.is_empty() {
            break;
        }
    }
    let mut found: Vec<PathBuf> = found
        .into_iter()
        .filter(|p| p.symlink_metadata().is_ok())
        .collect();
    found.sort_by(|a, b| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
    found
}

/// Splits into the starting directory and the remaining components.
fn split_pattern(pattern: &str) -> (PathBuf, Vec<String>) {
    let root = if pattern.starts_with('/') {
        PathBuf::from("/")
    } else {
        PathBuf::new()
    };
    let components = pattern
        .split('/')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    (root, components)
}

fn expand_component(dir: &Path, component: &str, last: bool) -> Vec<PathBuf> {
    if !has_glob_magic(component) {
        let path = dir.join(component);
        // Intermediate literal components must be directories to go on.
        return if last || path.is_dir() {
            vec![path]
        } else {
            Vec::new()
        };
    }
    let listing = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(listing) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| glob_component_matches(name, component))
        .map(|name| dir.join(name))
        .filter(|p| last || p.is_dir())
        .collect()
}
