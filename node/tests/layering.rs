//! The direction of the node's module dependencies (ARCHITECTURE.md, "Layering").
//!
//! Reads the sources under `node/src/` and fails, naming file and line, when:
//! - a data-plane module (route, authorize, limits, cache, integrate, respond, observe, and the
//!   request context `request.rs`) names a control-plane module (`admin`, `cluster`) or a
//!   wiring module (`dev`, `pipeline`, `serve`, `accept`);
//! - `config` names a request-path module, except the two pure leaves it builds from:
//!   `authorize::policy` (policies are parsed once per deployment) and `route::table` (the
//!   route trie is built once per deployment); those two leaves name nothing of the crate;
//! - the request context (`request.rs`) names anything but the type definitions it holds
//!   references to (`config`, `route::Routed`, `respond::GatewayError`), or one of those names
//!   a stage that uses the context;
//! - `accept` (the listener loop) names the pipeline, the wiring or a stage.
//!
//! Paths are read as the compiler resolves them: `crate::a::b`, `super::super::a` (resolved
//! from the file's place in the module tree), `crate::{a::b, c}` groups, wherever they occur
//! (imports and inline paths alike); comments and string literals are ignored. Test-only code
//! (`#[cfg(test)]` items, and the files of `#[cfg(test)] mod x;` modules) is exempt: unit tests
//! may build their fixtures with the control plane's code (e.g. `dev::build_state`,
//! `admin::iam::derive_signing_keys`), which is never compiled into the node.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The request path's stages and the context they share.
const DATA_PLANE: &[&str] = &[
    "route",
    "authorize",
    "limits",
    "cache",
    "integrate",
    "respond",
    "observe",
    "request",
];
/// Control plane and wiring: what the data plane must never name.
const CONTROL_AND_WIRING: &[&str] = &["admin", "cluster", "dev", "pipeline", "serve", "accept"];
/// The pure leaves `config` may use (module path, as `top::second`).
const CONFIG_LEAVES: &[&str] = &["authorize::policy", "route::table"];
/// What the request context may name: the type definitions its fields refer to.
const REQUEST_MAY_NAME: &[&str] = &["config", "route", "respond"];
/// The stages that use the request context: what it and its dependencies must not name.
const CONTEXT_USERS: &[&str] = &[
    "request",
    "authorize",
    "limits",
    "cache",
    "integrate",
    "observe",
];

/// One path into the crate found in a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference {
    line: usize,
    /// The absolute module path, as far as it names modules (`["admin", "control", "BoxFuture"]`).
    path: Vec<String>,
}

impl Reference {
    fn top(&self) -> &str {
        self.path.first().map(String::as_str).unwrap_or("")
    }

    fn starts_with(&self, prefix: &str) -> bool {
        let prefix: Vec<&str> = prefix.split("::").collect();
        self.path.len() >= prefix.len() && self.path.iter().zip(&prefix).all(|(a, b)| a == b)
    }

    fn show(&self) -> String {
        format!("crate::{}", self.path.join("::"))
    }
}

/// A source file: where it is and its module path (`src/cache/auth.rs` → `["cache", "auth"]`).
#[derive(Debug)]
struct Source {
    file: PathBuf,
    module: Vec<String>,
    text: String,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`, with its module path (files of test-only modules left out).
fn sources(src: &Path) -> Vec<Source> {
    let mut files = Vec::new();
    collect(src, &mut files);
    files.sort();
    let mut sources: Vec<Source> = files
        .into_iter()
        .filter_map(|file| {
            let relative = file.strip_prefix(src).ok()?.to_path_buf();
            let mut module: Vec<String> = relative
                .iter()
                .map(|part| part.to_string_lossy().trim_end_matches(".rs").to_string())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|error| panic!("reading {}: {error}", file.display()));
            Some(Source { file, module, text })
        })
        .collect();
    // Modules declared `#[cfg(test)] mod x;` and everything under them are test-only.
    let mut test_only: BTreeSet<Vec<String>> = BTreeSet::new();
    for source in &sources {
        for name in strip(&source.text).1 {
            let mut module = source.module.clone();
            module.push(name);
            test_only.insert(module);
        }
    }
    sources.retain(|source| {
        !test_only
            .iter()
            .any(|prefix| source.module.starts_with(prefix))
    });
    sources
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|error| panic!("reading {}: {error}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

/// The code with comments, string and char literals and `#[cfg(test)]` items blanked (newlines
/// kept, so line numbers hold), and the names of `#[cfg(test)] mod x;` modules.
fn strip(text: &str) -> (String, Vec<String>) {
    let code = blank_comments_and_literals(text);
    blank_test_items(&code)
}

fn blank_comments_and_literals(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0usize;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && (!prev_is_ident(&chars, i) || (chars[i - 1] == 'b' && !prev_is_ident(&chars, i - 1)))
            && raw_string_end(&chars, i).is_some()
        {
            let end = raw_string_end(&chars, i).unwrap_or(chars.len());
            for &c in &chars[i..end] {
                blank(&mut out, c);
            }
            i = end;
        } else if c == '"' {
            blank(&mut out, c);
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
                if i < chars.len() {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
            if i < chars.len() {
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '\'' && next == Some('\\') {
            // An escaped char literal: '\n', '\'', '\u{..}'.
            blank(&mut out, c);
            i += 2;
            out.push(' ');
            while i < chars.len() && chars[i] != '\'' {
                blank(&mut out, chars[i]);
                i += 1;
            }
            if i < chars.len() {
                out.push(' ');
                i += 1;
            }
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            // A plain char literal ('a'); anything else after a quote is a lifetime.
            out.push_str("   ");
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn prev_is_ident(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// The end (exclusive) of a raw string starting at `start` (`r"…"`, `r#"…"#`), if it is one.
fn raw_string_end(chars: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    let mut hashes = 0;
    while chars.get(i) == Some(&'#') {
        hashes += 1;
        i += 1;
    }
    if chars.get(i) != Some(&'"') {
        return None;
    }
    i += 1;
    while i < chars.len() {
        if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
            return Some(i + 1 + hashes);
        }
        i += 1;
    }
    None
}

/// Blanks every item annotated `#[cfg(test)]` (up to its `;` or its closing brace).
fn blank_test_items(code: &str) -> (String, Vec<String>) {
    const MARK: &str = "#[cfg(test)]";
    let mut bytes = code.as_bytes().to_vec();
    let mut test_modules = Vec::new();
    let mut from = 0;
    while let Some(found) = code[from..].find(MARK) {
        let start = from + found;
        let mut i = start + MARK.len();
        // Find the item's end: the first `;` outside braces, or the brace closing the first `{`.
        let mut depth = 0usize;
        let mut end = code.len();
        while i < code.len() {
            match bytes[i] {
                b'{' => depth += 1,
                b'}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                b';' if depth == 0 => {
                    end = i + 1;
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let item = &code[start + MARK.len()..end];
        let words: Vec<&str> = item
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|word| !word.is_empty())
            .collect();
        if item.trim_end().ends_with(';')
            && let Some(position) = words.iter().position(|word| *word == "mod")
            && let Some(name) = words.get(position + 1)
        {
            test_modules.push(name.to_string());
        }
        for byte in &mut bytes[start..end] {
            if *byte != b'\n' {
                *byte = b' ';
            }
        }
        from = end;
    }
    // Only ASCII bytes were replaced by ASCII bytes.
    let code = String::from_utf8(bytes).expect("blanking keeps UTF-8");
    (code, test_modules)
}

/// Every path into the crate in `code` (already stripped), resolved against `module`.
fn references(code: &str, module: &[String]) -> Vec<Reference> {
    let tokens = tokenize(code);
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let (line, token) = &tokens[i];
        let follows_path = i > 0 && tokens[i - 1].1 == "::";
        let base = match token.as_str() {
            "crate" | "$crate" if !follows_path => Some(Vec::new()),
            "super" if !follows_path => Some(module.to_vec()),
            _ => None,
        };
        let Some(mut base) = base else {
            i += 1;
            continue;
        };
        // `super::super::…`
        let mut j = i + 1;
        if token == "super" {
            base.pop();
            while tokens.get(j).map(|t| t.1.as_str()) == Some("::")
                && tokens.get(j + 1).map(|t| t.1.as_str()) == Some("super")
            {
                base.pop();
                j += 2;
            }
        }
        j = path_tail(&tokens, j, base, *line, &mut found);
        i = j.max(i + 1);
    }
    found
}

/// Reads `::a::b`, `::{a, b::c}` after a path start; pushes one reference per leaf path.
fn path_tail(
    tokens: &[(usize, String)],
    mut j: usize,
    mut path: Vec<String>,
    line: usize,
    found: &mut Vec<Reference>,
) -> usize {
    let mut line = line;
    while tokens.get(j).map(|t| t.1.as_str()) == Some("::") {
        match tokens.get(j + 1) {
            Some((at, word)) if is_ident(word) && word != "self" => {
                path.push(word.clone());
                line = *at;
                j += 2;
            }
            Some((_, word)) if word == "self" => j += 2,
            Some((_, brace)) if brace == "{" => {
                j += 2;
                // Each comma-separated member of the group, relative to `path`.
                loop {
                    match tokens.get(j) {
                        None => return j,
                        Some((_, t)) if t == "}" => return j + 1,
                        Some((_, t)) if t == "," => j += 1,
                        Some((at, word)) if word == "self" => {
                            found.push(Reference {
                                line: *at,
                                path: path.clone(),
                            });
                            j += 1;
                        }
                        Some((at, word)) if is_ident(word) => {
                            let mut member = path.clone();
                            member.push(word.clone());
                            let before = found.len();
                            j = path_tail(tokens, j + 1, member.clone(), *at, found);
                            if found.len() == before {
                                found.push(Reference {
                                    line: *at,
                                    path: member,
                                });
                            }
                            // Skip `as name` and the like up to the next member.
                            while let Some((_, t)) = tokens.get(j) {
                                if t == "," || t == "}" {
                                    break;
                                }
                                j += 1;
                            }
                        }
                        Some(_) => j += 1,
                    }
                }
            }
            _ => break,
        }
    }
    if !path.is_empty() {
        found.push(Reference { line, path });
    }
    j
}

fn is_ident(word: &str) -> bool {
    word.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && word.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// Identifiers (with `$crate`), `::`, `{`, `}`, `,` and other punctuation, with line numbers.
fn tokenize(code: &str) -> Vec<(usize, String)> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push((line, chars[start..i].iter().collect()));
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push((line, "::".to_string()));
            i += 2;
        } else {
            tokens.push((line, c.to_string()));
            i += 1;
        }
    }
    tokens
}

/// `file:line: crate::x::y (why)` for every reference `refused` refuses, in `sources` whose
/// module starts with one of `owners`.
fn violations(
    sources: &[Source],
    owners: &[&str],
    refused: &dyn Fn(&Source, &Reference) -> Option<String>,
) -> Vec<String> {
    let mut lines = Vec::new();
    for source in sources {
        let Some(top) = source.module.first() else {
            continue;
        };
        if !owners.contains(&top.as_str()) {
            continue;
        }
        let (code, _) = strip(&source.text);
        for reference in references(&code, &source.module) {
            // A module's references to itself are never a layering question.
            if reference.top() == top {
                continue;
            }
            if let Some(why) = refused(source, &reference) {
                lines.push(format!(
                    "{}:{}: {} ({why})",
                    source.file.display(),
                    reference.line,
                    reference.show()
                ));
            }
        }
    }
    lines
}

fn data_plane_rule(source: &Source, reference: &Reference) -> Option<String> {
    CONTROL_AND_WIRING.contains(&reference.top()).then(|| {
        format!(
            "the data plane ({}) must not import control-plane or wiring modules",
            source.module[0]
        )
    })
}

fn config_rule(_: &Source, reference: &Reference) -> Option<String> {
    let forbidden =
        DATA_PLANE.contains(&reference.top()) || CONTROL_AND_WIRING.contains(&reference.top());
    let leaf = CONFIG_LEAVES.iter().any(|leaf| reference.starts_with(leaf));
    (forbidden && !leaf).then(|| {
        format!(
            "config feeds the request path and must not import it (only the pure leaves {})",
            CONFIG_LEAVES.join(", ")
        )
    })
}

fn request_rule(_: &Source, reference: &Reference) -> Option<String> {
    (!REQUEST_MAY_NAME.contains(&reference.top())).then(|| {
        format!(
            "the request context is a leaf: it names only {}",
            REQUEST_MAY_NAME.join(", ")
        )
    })
}

fn context_dependency_rule(source: &Source, reference: &Reference) -> Option<String> {
    let leaf = CONFIG_LEAVES.iter().any(|leaf| reference.starts_with(leaf));
    (CONTEXT_USERS.contains(&reference.top()) && !leaf).then(|| {
        format!(
            "the request context depends on {}, which must not depend on the stages that use it",
            source.module[0]
        )
    })
}

fn accept_rule(_: &Source, reference: &Reference) -> Option<String> {
    let allowed = ["body", "request", "tls"];
    (!allowed.contains(&reference.top())).then(|| {
        format!(
            "accept is the listener loop, generic over its handler: it names only {}",
            allowed.join(", ")
        )
    })
}

fn leaf_rule(_: &Source, _: &Reference) -> Option<String> {
    Some("a pure leaf names nothing of the crate".to_string())
}

fn assert_none(what: &str, lines: Vec<String>) {
    assert!(
        lines.is_empty(),
        "{what}: {} violation(s)\n{}",
        lines.len(),
        lines.join("\n")
    );
}

#[test]
fn data_plane_never_imports_control_plane_or_wiring() {
    let sources = sources(&src_dir());
    assert!(
        sources.iter().any(|s| s.module == ["cache", "auth"]),
        "the sources were not found under {}",
        src_dir().display()
    );
    assert_none(
        "data plane → control plane / wiring",
        violations(&sources, DATA_PLANE, &data_plane_rule),
    );
}

#[test]
fn config_imports_only_the_pure_leaves() {
    let sources = sources(&src_dir());
    assert_none(
        "config → request path",
        violations(&sources, &["config"], &config_rule),
    );
    // The leaves config uses name nothing of the crate, so config reaches no stage through them.
    let leaves: Vec<Source> = sources
        .into_iter()
        .filter(|s| {
            CONFIG_LEAVES
                .iter()
                .any(|leaf| s.module.join("::") == *leaf)
        })
        .collect();
    assert_eq!(leaves.len(), CONFIG_LEAVES.len(), "the leaves' files");
    let mut lines = Vec::new();
    for leaf in &leaves {
        let (code, _) = strip(&leaf.text);
        for reference in references(&code, &leaf.module) {
            if !reference.starts_with(&leaf.module.join("::")) {
                lines.push(format!(
                    "{}:{}: {} ({})",
                    leaf.file.display(),
                    reference.line,
                    reference.show(),
                    leaf_rule(leaf, &reference).unwrap_or_default()
                ));
            }
        }
    }
    assert_none("config's leaves → crate", lines);
}

#[test]
fn request_context_is_a_leaf() {
    let sources = sources(&src_dir());
    assert!(sources.iter().any(|s| s.module == ["request"]));
    assert_none(
        "request → crate",
        violations(&sources, &["request"], &request_rule),
    );
    assert_none(
        "request's dependencies → the stages using it",
        violations(
            &sources,
            &["route", "respond", "config"],
            &context_dependency_rule,
        ),
    );
}

#[test]
fn accept_knows_no_stage_and_no_wiring() {
    let sources = sources(&src_dir());
    assert_none(
        "accept → pipeline / stages",
        violations(&sources, &["accept"], &accept_rule),
    );
}

// The checker itself: each kind of path it must see, and what it must not count.

fn refs(text: &str, module: &[&str]) -> Vec<(usize, String)> {
    let module: Vec<String> = module.iter().map(|m| m.to_string()).collect();
    let (code, _) = strip(text);
    references(&code, &module)
        .into_iter()
        .map(|reference| (reference.line, reference.show()))
        .collect()
}

#[test]
fn checker_sees_every_form_of_path() {
    assert_eq!(
        refs("use crate::admin::control::BoxFuture;", &["cache", "auth"]),
        [(1, "crate::admin::control::BoxFuture".to_string())]
    );
    assert_eq!(
        refs(
            "use crate::{\n    body::Body,\n    admin::secrets::SealingKey,\n};",
            &["cache"]
        ),
        [
            (2, "crate::body::Body".to_string()),
            (3, "crate::admin::secrets::SealingKey".to_string())
        ]
    );
    assert_eq!(
        refs("use super::super::admin::sigv4;", &["cache", "auth"]),
        [(1, "crate::admin::sigv4".to_string())]
    );
    assert_eq!(
        refs("use super::auth;", &["cache", "shared"]),
        [(1, "crate::cache::auth".to_string())]
    );
    assert_eq!(
        refs(
            "fn f() { let x = crate::dev::build_state(1); }",
            &["limits"]
        ),
        [(1, "crate::dev::build_state".to_string())]
    );
    assert_eq!(
        refs("use crate::cluster::{self, l2::{Tier, Other}};", &["cache"]),
        [
            (1, "crate::cluster".to_string()),
            (1, "crate::cluster::l2::Tier".to_string()),
            (1, "crate::cluster::l2::Other".to_string())
        ]
    );
}

#[test]
fn checker_ignores_comments_literals_and_test_code() {
    let text = r##"
// use crate::admin::control;
/* crate::cluster /* nested */ crate::dev */
/// See [`crate::pipeline`].
const S: &str = "crate::admin::x";
const R: &str = r#"crate::admin::"y""#;
const C: char = '"';
fn f<'a>(x: &'a str) -> &'a str { x }
#[cfg(test)]
mod tests {
    use crate::dev::build_state;
    fn g() { let _ = '}'; }
}
#[cfg(test)]
mod more_tests;
use crate::respond::GatewayError;
"##;
    assert_eq!(
        refs(text, &["limits"]),
        [(16, "crate::respond::GatewayError".to_string())]
    );
    assert_eq!(strip(text).1, ["more_tests"]);
}

#[test]
fn checker_refuses_what_the_rules_refuse() {
    let source = |module: &[&str], text: &str| Source {
        file: PathBuf::from("src/x.rs"),
        module: module.iter().map(|m| m.to_string()).collect(),
        text: text.to_string(),
    };
    let sources = [
        source(&["limits"], "use crate::admin::control::BoxFuture;"),
        source(
            &["observe", "metrics"],
            "use crate::accept::{self, Listener};",
        ),
        source(&["cache", "dev_auth"], "use super::super::admin::secrets;"),
        source(&["cache"], "#[cfg(test)]\nmod tests { use crate::dev::x; }"),
        source(&["route"], "use crate::respond::GatewayError;"),
    ];
    let lines = violations(&sources, DATA_PLANE, &data_plane_rule);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert!(lines[0].starts_with("src/x.rs:1: crate::admin::control::BoxFuture"));
    assert!(lines[3].contains("crate::admin::secrets"), "{lines:#?}");

    let config = [
        source(&["config", "auth"], "use crate::authorize::policy::Policy;"),
        source(
            &["config", "compile"],
            "use crate::route::table::RouteTable;",
        ),
        source(&["config", "compile"], "use crate::route::Routed;"),
        source(&["config", "auth"], "use crate::authorize::Authorizers;"),
        source(&["config", "cache"], "use crate::admin::x;"),
    ];
    assert_eq!(violations(&config, &["config"], &config_rule).len(), 3);

    let request = [source(&["request"], "use crate::integrate::Integrations;")];
    assert_eq!(violations(&request, &["request"], &request_rule).len(), 1);

    let accept = [source(&["accept"], "use crate::pipeline::Gateway;")];
    assert_eq!(violations(&accept, &["accept"], &accept_rule).len(), 1);
}
