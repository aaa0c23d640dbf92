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
        "store/src",
        "continuity/src",
        "continuity/tests",
        "bridge/src",
        "console/src",
        "replication/src",
        "replication/tests",
        "cluster/src",
        "cluster/tests",
        "peer/src",
        "server/src",
        "cli/src",
        "cli/benches",
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
    let allowed: [(&str, &[&str]); 12] = [
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
        // SQL and files: never a runtime, a socket, JSON for people or the clock.
        (
            "store",
            &[
                "audit",
                "crypto",
                "hex",
                "jiff",
                "migrations",
                "policy",
                "rusqlite",
                "rusqlite_migration",
                "secrecy",
                "serde",
                "sha2",
                "thiserror",
                "tracing",
                "uuid",
                "zeroize",
            ],
        ),
        // The domain: decides and composes through the store; never a socket,
        // a pool, a runtime or a transport (lettre only builds messages).
        (
            "continuity",
            &[
                "audit",
                "base64",
                "crypto",
                "hex",
                "jiff",
                "lettre",
                "mail-parser",
                "phonenumber",
                "policy",
                "psl",
                "serde",
                "serde_json",
                "sha2",
                "store",
                "thiserror",
                "time",
                "uuid",
                "zeroize",
            ],
        ),
        // The service and its edges: never a command line, a progress bar,
        // anyhow, the benchmark's peer or the bridge.
        (
            "server",
            &[
                "actix-multipart",
                "actix-tls",
                "actix-web",
                "audit",
                "base64",
                "cluster",
                "console",
                "continuity",
                "crypto",
                "csv",
                "form_urlencoded",
                "fs4",
                "futures-util",
                "hex",
                "http",
                "humantime",
                "jiff",
                "lettre",
                "mail-parser",
                "migrations",
                "openidconnect",
                "phonenumber",
                "policy",
                "prometheus-client",
                "protoc-bin-vendored",
                "psl",
                "rcgen",
                "replication",
                "reqwest",
                "rusqlite",
                "rusqlite_migration",
                "rustls",
                "sd-notify",
                "secrecy",
                "serde",
                "serde_json",
                "sha2",
                "store",
                "tempfile",
                "thiserror",
                "time",
                "tokio",
                "tokio-rustls",
                "toml",
                "tracing",
                "tracing-subscriber",
                "utoipa",
                "uuid",
                "webpki-roots",
                "x509-parser",
                "zeroize",
            ],
        ),
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
/// crate, `cli`, is the binary's edge and may stop the process).
#[test]
fn no_panics_on_request_paths() {
    let banned = [".unwrap()", ".expect(", concat!("panic", "!("), concat!("unreachable", "!(")];
    let mut found = Vec::new();
    let shells = ["store/src", "continuity/src", "server/src", "bridge/src", "console/src", "cluster/src"];
    for p in shells.iter().flat_map(|d| rust_files(&root().join(d))) {
        let r = rel(&p);
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
    let banned = ["server::", "rusqlite::", "crypto::", "policy::", "audit::"];
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
    let banned = ["server::", "rusqlite::", "crypto::", "actix_web::", "reqwest::"];
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

/// The top-level modules a file of `src` names through `crate::` paths
/// (`crate::a::…` and each head of `crate::{a::…, b}`); a name the crate's
/// root re-exports (`pub use a::Thing;`) counts as its module.
fn crate_edges(src: &Path) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let root_file = ["lib.rs", "main.rs"].iter().map(|f| src.join(f)).find(|p| p.exists()).unwrap();
    let root_text = std::fs::read_to_string(&root_file).unwrap();
    let mut reexported = std::collections::BTreeMap::new();
    for line in root_text.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("pub use ").or_else(|| line.strip_prefix("pub(crate) use ")) else {
            continue;
        };
        let Some((module, items)) = rest.split_once("::") else { continue };
        for item in items.trim_matches(|c| c == '{' || c == '}' || c == ';').split(',') {
            let name = item.split(" as ").last().unwrap_or("").trim();
            let name = name.rsplit("::").next().unwrap_or(name);
            if !name.is_empty() {
                reexported.insert(name.to_owned(), module.to_owned());
            }
        }
    }
    let mut edges: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = Default::default();
    for p in rust_files(src) {
        let inner = p.strip_prefix(src).unwrap();
        let Some(first) = inner.components().next() else { continue };
        let module = first.as_os_str().to_string_lossy().trim_end_matches(".rs").to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        // Code only: a doc link to another module is not a dependency.
        let text: String = non_test(&std::fs::read_to_string(&p).unwrap())
            .lines()
            .map(|l| l.match_indices("//").find(|(i, _)| !l[..*i].ends_with(':')).map_or(l, |(i, _)| &l[..i]))
            .collect::<Vec<_>>()
            .join("\n");
        let mut heads = Vec::new();
        for (i, _) in text.match_indices("crate::") {
            let after = &text[i + "crate::".len()..];
            if let Some(group) = after.strip_prefix('{') {
                let mut depth = 0usize;
                let mut item = String::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => heads.push(std::mem::take(&mut item)),
                        _ => item.push(c),
                    }
                }
                heads.push(item);
            } else {
                heads.push(after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
            }
        }
        for head in heads {
            let head = head.trim().split("::").next().unwrap_or("").trim().to_owned();
            let target = reexported.get(&head).cloned().unwrap_or(head);
            let is_module = src.join(format!("{target}.rs")).exists() || src.join(&target).is_dir();
            if !target.is_empty() && target != module && is_module {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    edges
}

/// Every cycle among a crate's top-level modules, as the modules on it.
fn module_cycles(edges: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>) -> Vec<Vec<String>> {
    // A module is on a cycle with another when each reaches the other.
    let reach = |from: &str| {
        let mut seen = std::collections::BTreeSet::new();
        let mut stack = vec![from.to_owned()];
        while let Some(m) = stack.pop() {
            for n in edges.get(&m).into_iter().flatten() {
                if seen.insert(n.clone()) {
                    stack.push(n.clone());
                }
            }
        }
        seen
    };
    let mut cycles: Vec<Vec<String>> = Vec::new();
    for m in edges.keys() {
        let from_m = reach(m);
        if !from_m.contains(m) || cycles.iter().any(|c| c.contains(m)) {
            continue;
        }
        let mut on: Vec<String> = from_m.into_iter().filter(|n| reach(n).contains(m)).collect();
        on.sort();
        cycles.push(on);
    }
    cycles
}

/// The modules inside each crate depend one way: a cycle (`a` names `b`
/// and `b`, through any path, names `a`) is a wall the compiler does not
/// hold, so this test does.
#[test]
fn no_module_cycles_inside_a_crate() {
    let mut found = Vec::new();
    for src in ["store/src", "continuity/src", "server/src", "cli/src", "bridge/src", "console/src", "cluster/src"] {
        for cycle in module_cycles(&crate_edges(&root().join(src))) {
            found.push(format!("{src}: {}", cycle.join(" <-> ")));
        }
    }
    assert!(found.is_empty(), "module cycles:\n{}", found.join("\n"));
}

/// The check finds a cycle when there is one (so a passing run means
/// something).
#[test]
fn the_cycle_check_sees_a_cycle() {
    let mut edges: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = Default::default();
    edges.entry("api".into()).or_default().insert("tenants".into());
    edges.entry("tenants".into()).or_default().insert("ha".into());
    edges.entry("ha".into()).or_default().insert("api".into());
    edges.entry("metrics".into()).or_default().insert("api".into());
    assert_eq!(module_cycles(&edges), vec![vec!["api".to_owned(), "ha".to_owned(), "tenants".to_owned()]]);
}
