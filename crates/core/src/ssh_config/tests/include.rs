//! Include, file sources and the default file locations.

use std::path::{Path, PathBuf};

use super::super::{resolve, resolve_str, ResolveOptions};
use super::opts;

/// A temporary home with files under it.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new(files: &[(&str, &str)]) -> Home {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("temp dir: {e}"),
        };
        let home = Home { dir };
        for (name, text) in files {
            home.write(name, text);
        }
        home
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, name: &str, text: &str) {
        let path = self.path().join(name);
        let text = text.replace("@HOME@", &self.path().to_string_lossy());
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| std::fs::write(&path, text));
        assert!(written.is_ok(), "writing {}", path.display());
        set_mode(&path, 0o600);
    }

    fn opts(&self) -> ResolveOptions {
        ResolveOptions {
            home: Some(self.path().to_path_buf()),
            ..opts()
        }
    }

    fn resolve(&self, host: &str, text: &str) -> super::super::ResolvedConfig {
        match resolve_str(host, text, &self.opts()) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert!(std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).is_ok());
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
}

#[test]
fn relative_include_is_under_dot_ssh_and_globs_sort() {
    let home = Home::new(&[
        (".ssh/conf.d/20-b.conf", "Host b\n  User from-b\n"),
        (".ssh/conf.d/10-a.conf", "Host a b\n  User from-a\n"),
        (".ssh/conf.d/.hidden.conf", "User hidden\n"),
    ]);
    let text = "Include conf.d/*.conf\nUser after\n";
    assert_eq!(home.resolve("a", text).user(), "from-a");
    assert_eq!(home.resolve("b", text).user(), "from-a");
    assert_eq!(home.resolve("c", text).user(), "after");
}

#[test]
fn tilde_and_absolute_includes() {
    let home = Home::new(&[("extra/x.conf", "Port 2300\n"), ("abs.conf", "User abs\n")]);
    let text = format!(
        "Include ~/extra/x.conf {}/abs.conf\n",
        home.path().display()
    );
    let cfg = home.resolve("h", &text);
    assert_eq!((cfg.user(), cfg.port()), ("abs".to_string(), 2300));
}

#[test]
fn include_inside_a_block_is_conditional() {
    let home = Home::new(&[(".ssh/inc.conf", "User included\nHost other\n  Port 2301\n")]);
    let text = "Host inc\n  Include inc.conf\nHost *\n  Port 2302\n";
    let inc = home.resolve("inc", text);
    assert_eq!((inc.user(), inc.port()), ("included".to_string(), 2302));
    let other = home.resolve("other", text);
    assert_eq!((other.user(), other.port()), ("tester".to_string(), 2302));
}

#[test]
fn match_in_an_included_file_ends_with_the_file() {
    let home = Home::new(&[(".ssh/m.conf", "Match host nothing\n")]);
    assert_eq!(
        home.resolve("h", "Include m.conf\nUser still-active\n")
            .user(),
        "still-active"
    );
}

#[test]
fn nested_includes_and_missing_files() {
    let home = Home::new(&[
        (".ssh/one.conf", "Include two.conf\nIdentityFile ~/one\n"),
        (".ssh/two.conf", "IdentityFile ~/two\n"),
    ]);
    let cfg = home.resolve(
        "h",
        "Include one.conf missing.conf nothing/*.conf\nIdentityFile ~/top\n",
    );
    let base = home.path().display().to_string();
    assert_eq!(
        cfg.get_all("identityfile"),
        [
            format!("{base}/two"),
            format!("{base}/one"),
            format!("{base}/top")
        ]
    );
}

#[test]
fn a_byte_order_mark_does_not_hide_the_first_line() {
    // "\u{feff}Host prod" read as an unknown keyword would put prod's settings in every block
    let home = Home::new(&[(".ssh/inc.conf", "\u{feff}Host inc\n  User from-inc\n")]);
    let text = "\u{feff}Host prod\n  User produser\n  Port 2222\nHost *\n  Include inc.conf\n";
    let other = home.resolve("other", text);
    assert_eq!((other.user(), other.port()), ("tester".to_string(), 22));
    let prod = home.resolve("prod", text);
    assert_eq!((prod.user(), prod.port()), ("produser".to_string(), 2222));
    assert_eq!(home.resolve("inc", text).user(), "from-inc");
}

#[test]
fn include_loop_hits_the_depth_limit() {
    let home = Home::new(&[(".ssh/loop.conf", "Include loop.conf\n")]);
    let err = resolve_str("h", "Include loop.conf\n", &home.opts()).err();
    let err = err.map(|e| (e.message.contains("recursive"), e.file, e.line));
    assert_eq!(
        err,
        Some((true, Some(home.path().join(".ssh/loop.conf")), Some(1)))
    );
}

#[test]
fn sixteen_levels_are_allowed() {
    let mut files: Vec<(String, String)> = (1..16)
        .map(|i| (format!(".ssh/l{i}"), format!("Include l{}\n", i + 1)))
        .collect();
    files.push((".ssh/l16".into(), "User deep\n".into()));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let home = Home::new(&refs);
    assert_eq!(home.resolve("h", "Include l1\n").user(), "deep");
    home.write(".ssh/l16", "Include l17\n");
    home.write(".ssh/l17", "User too-deep\n");
    assert!(resolve_str("h", "Include l1\n", &home.opts()).is_err());
}

#[test]
fn errors_in_skipped_includes_still_count() {
    let home = Home::new(&[(".ssh/bad.conf", "Port nope\n")]);
    let err = resolve_str("h", "Host other\n  Include bad.conf\n", &home.opts()).err();
    assert_eq!(
        err.map(|e| (e.file, e.line)),
        Some((Some(home.path().join(".ssh/bad.conf")), Some(1)))
    );
}

#[test]
fn skipped_includes_do_not_run_exec() {
    let home = Home::new(&[(".ssh/exec.conf", "Match exec \"touch @HOME@/ran\"\n")]);
    home.resolve("h", "Host other\n  Include exec.conf\n");
    assert!(!home.path().join("ran").exists());
}

#[cfg(unix)]
#[test]
fn writable_included_files_are_refused() {
    let home = Home::new(&[(".ssh/open.conf", "User open\n")]);
    set_mode(&home.path().join(".ssh/open.conf"), 0o666);
    let err = resolve_str("h", "Include open.conf\n", &home.opts()).err();
    assert!(err.is_some_and(|e| e.message.contains("bad owner or permissions")));
}

#[test]
fn file_option_reads_only_that_file() {
    let home = Home::new(&[
        ("custom", "User custom\n"),
        (".ssh/config", "User default\n"),
    ]);
    let o = ResolveOptions {
        file: Some(home.path().join("custom")),
        ..home.opts()
    };
    assert_eq!(
        resolve("h", &o).map(|c| c.user()).ok(),
        Some("custom".to_string())
    );
    let missing = ResolveOptions {
        file: Some(home.path().join("absent")),
        ..home.opts()
    };
    assert!(resolve("h", &missing)
        .err()
        .is_some_and(|e| e.file == Some(home.path().join("absent"))));
}

#[test]
fn default_files_are_the_users_then_the_systems() {
    let home = Home::new(&[
        (".ssh/config", "Host h\n  User from-user\n"),
        ("system/ssh_config", "User from-system\nPort 2400\n"),
    ]);
    let o = ResolveOptions {
        include_system: true,
        system_file: Some(home.path().join("system/ssh_config")),
        ..home.opts()
    };
    let cfg = resolve("h", &o).ok();
    assert_eq!(
        cfg.map(|c| (c.user(), c.port())),
        Some(("from-user".to_string(), 2400))
    );
    let no_user_file = Home::new(&[]);
    assert_eq!(
        resolve("h", &no_user_file.opts()).map(|c| c.user()).ok(),
        Some("tester".to_string())
    );
}

#[test]
fn system_config_includes_are_relative_to_its_directory() {
    let home = Home::new(&[
        ("etc/ssh_config", "Include conf.d/*.conf\n"),
        ("etc/conf.d/a.conf", "User sys-inc\n"),
    ]);
    let o = ResolveOptions {
        include_system: true,
        system_file: Some(home.path().join("etc/ssh_config")),
        ..home.opts()
    };
    assert_eq!(
        resolve("h", &o).map(|c| c.user()).ok(),
        Some("sys-inc".to_string())
    );
    home.write("etc/ssh_config", "Include ~/x.conf\n");
    assert!(resolve("h", &o)
        .err()
        .is_some_and(|e| e.message.contains("bad include path")));
}

#[test]
fn user_config_path_follows_home() {
    let p: PathBuf = super::super::reader::user_config_path("/home/u");
    assert_eq!(p, PathBuf::from("/home/u/.ssh/config"));
}
