//! Tidy checks on the source tree, in the style of rust-analyzer's
//! `tidy.rs`: rules a reviewer would otherwise have to remember. Every
//! module says what it is for; no debugging leftovers; the pure crates stay
//! pure; request paths never panic on purpose; files stay small.
// Test helpers panic on unexpected results by design; the lint is for request paths.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn all_sources() -> Vec<PathBuf> {
    let r = root();
    [
        "crypto/src",
        "policy/src",
        "audit/src",
        "migrations/src",
        "bridge/src",
        "console/src",
        "replication/src",
        "replication/tests",
        "cluster/src",
        "cluster/tests",
        "peer/src",
        "server/src",
        "tests",
    ]
    .iter()
    .flat_map(|d| rust_files(&r.join(d)))
    .collect()
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

/// The code of a file without its `#[cfg(test)]` items (braces counted;
/// good enough for this tree, whose test modules hold no unbalanced braces
/// in strings). Lines are kept as blank so line numbers still match.
fn non_test(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let Some(open) = after.find('{') else { break };
        let mut depth = 0usize;
        let mut end = after.len();
        for (j, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + j + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        out.extend(after[..end].chars().filter(|c| *c == '\n'));
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn every_module_has_a_doc_comment() {
    let missing: Vec<String> = all_sources()
        .into_iter()
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            !text.lines().find(|l| !l.trim().is_empty()).is_some_and(|l| l.starts_with("//!"))
        })
        .map(|p| rel(&p))
        .collect();
    assert!(missing.is_empty(), "modules without a `//!` doc: {missing:?}");
}

#[test]
fn no_debugging_leftovers() {
    // Built from pieces so this file does not find itself.
    let banned = [concat!("dbg", "!("), concat!("todo", "!("), concat!("unimplemented", "!(")];
    let mut found = Vec::new();
    for p in all_sources() {
        let text = std::fs::read_to_string(&p).unwrap();
        for (n, line) in text.lines().enumerate() {
            if banned.iter().any(|b| line.contains(b)) {
                found.push(format!("{}:{}", rel(&p), n + 1));
            }
        }
    }
    assert!(found.is_empty(), "debugging leftovers at {found:?}");
}

/// `policy` decides and `crypto` computes: neither may grow I/O, a clock, a
/// database or a network dependency. `audit` only formats and verifies.
#[test]
fn pure_crates_depend_only_on_an_allow_list() {
    let allowed: [(&str, &[&str]); 9] = [
        ("policy", &["serde", "thiserror", "toml"]),
        (
            "crypto",
            &[
                "argon2",
                "base64",
                "hex",
                "ring",
                "secrecy",
                "serde",
                "serde_json",
                "sha2",
                "thiserror",
                "uuid",
                "zeroize",
            ],
        ),
        ("audit", &["base64", "hex", "ring", "serde", "serde_json", "sha2", "thiserror", "time"]),
        ("migrations", &["rusqlite", "rusqlite_migration"]),
        // Commit records of ciphertext pages: never a key, a store or a network.
        ("replication", &["ring", "thiserror"]),
        // The cluster shell: PostgreSQL and etcd, never the keys or the store.
        ("cluster", &["etcd-client", "thiserror", "tokio", "tokio-postgres"]),
        // The bench's PostgreSQL peer: its own database, never the keys or the store.
        ("peer", &["deadpool-postgres", "futures-util", "tempfile", "thiserror", "tokio", "tokio-postgres"]),
        // The console's rules and pages: no store, no keys, no HTTP server, no network.
        ("console", &["argon2", "askama", "hex", "policy", "ring", "subtle", "thiserror", "totp-rs", "zeroize"]),
        // The bridge speaks HTTP to the platforms and the core's API: never
        // the store, the keys or the policy (it learns what it may say from
        // the core, per request).
        (
            "bridge",
            &[
                "actix-web",
                "async-imap",
                "base64",
                "form_urlencoded",
                "futures-util",
                "hex",
                "lru",
                "minijinja",
                "prometheus-client",
                "reqwest",
                "ring",
                "rustls",
                "secrecy",
                "serde",
                "serde_json",
                "smtp-proto",
                "subtle",
                "thiserror",
                "tokio",
                "tokio-rustls",
                "toml",
                "tracing",
                "webpki-roots",
                "zeroize",
            ],
        ),
    ];
    for (krate, allow) in allowed {
        let manifest = std::fs::read_to_string(root().join(krate).join("Cargo.toml")).unwrap();
        let table: toml::Table = manifest.parse().unwrap();
        let deps = table.get("dependencies").and_then(|d| d.as_table()).cloned().unwrap_or_default();
        let extra: Vec<&String> = deps.keys().filter(|d| !allow.contains(&d.as_str())).collect();
        assert!(extra.is_empty(), "{krate} depends on {extra:?}, outside its allow-list {allow:?}");
    }
}

/// Request paths answer with an error, never a panic: no `unwrap`, `expect`,
/// `panic!` or `unreachable!` outside tests in the server library (the CLI
/// and the benchmark are the binary's edge and may stop the process).
#[test]
fn no_panics_on_request_paths() {
    let banned = [".unwrap()", ".expect(", concat!("panic", "!("), concat!("unreachable", "!(")];
    let mut found = Vec::new();
    let shells = ["server/src", "bridge/src", "console/src", "cluster/src"];
    for p in shells.iter().flat_map(|d| rust_files(&root().join(d))) {
        let r = rel(&p);
        if r.starts_with("server/src/cli/") || r.starts_with("server/src/bench/") || r.ends_with("main.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for (n, line) in non_test(&text).lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if banned.iter().any(|b| code.contains(b)) {
                found.push(format!("{r}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "possible panics on request paths:\n{}", found.join("\n"));
}

#[test]
fn files_stay_small() {
    let big: Vec<String> = all_sources()
        .into_iter()
        .filter_map(|p| {
            let n = std::fs::read_to_string(&p).unwrap().lines().count();
            (n > 650).then(|| format!("{} ({n} lines)", rel(&p)))
        })
        .collect();
    assert!(big.is_empty(), "split these by what they hold: {big:?}");
}

/// The bridge never names the server's crate, its store, its keys or the
/// policy in its code either (a dependency is not the only way in).
#[test]
fn the_bridge_reaches_only_the_api() {
    // A path that starts with one of these (not `rustls::crypto::…`).
    let banned = ["throughline::", "rusqlite::", "crypto::", "policy::", "audit::"];
    let starts_path = |line: &str, b: &str| {
        line.match_indices(b)
            .any(|(i, _)| !line[..i].ends_with(':') && !line[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
    };
    let mut found = Vec::new();
    for p in rust_files(&root().join("bridge/src")) {
        let text = std::fs::read_to_string(&p).unwrap();
        for (n, line) in text.lines().enumerate() {
            if banned.iter().any(|b| starts_path(line, b)) {
                found.push(format!("{}:{}", rel(&p), n + 1));
            }
        }
    }
    assert!(found.is_empty(), "the bridge reaches past the API at {found:?}");
}

/// The console's core never names the server, its store or its keys: the
/// shell (`server/src/console/`) reads the store and hands it plain values.
#[test]
fn the_console_core_reaches_no_store_and_no_key() {
    let banned = ["throughline::", "rusqlite::", "crypto::", "actix_web::", "reqwest::"];
    let mut found = Vec::new();
    for p in rust_files(&root().join("console/src")) {
        let text = std::fs::read_to_string(&p).unwrap();
        for (n, line) in text.lines().enumerate() {
            if banned.iter().any(|b| line.contains(b)) {
                found.push(format!("{}:{}", rel(&p), n + 1));
            }
        }
    }
    assert!(found.is_empty(), "the console core reaches past its values at {found:?}");
}
