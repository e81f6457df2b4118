//! A bounded fuzz of the OpenAPI importer (issue #14): hostile text, built from the tokens
//! that make YAML and JSON expensive (nesting, quotes, anchors, aliases, merge keys, block
//! scalars) and from byte-level mutations of real definitions. The importer must never panic,
//! must answer within its deadline, and must refuse with at least one located problem.
//!
//! `cargo test -p portico --test openapi_fuzz` runs 128 cases per property (about 3 s, in
//! CI). For a longer run: `PROPTEST_CASES=20000 cargo test -p portico --test openapi_fuzz`.

use std::time::{Duration, Instant};

use proptest::prelude::*;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/localstack-openapi/"
);

/// Fixtures to mutate: one YAML, one JSON, both valid imports.
fn seeds() -> Vec<String> {
    let mut seeds = Vec::new();
    if let Ok(entries) = std::fs::read_dir(FIXTURES) {
        let mut names: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.extension()
                    .is_some_and(|ext| ext == "yaml" || ext == "yml" || ext == "json")
            })
            .collect();
        names.sort();
        for path in names.into_iter().take(8) {
            if let Ok(text) = std::fs::read_to_string(path) {
                seeds.push(text);
            }
        }
    }
    seeds.push(
        "openapi: 3.0.1\ninfo:\n  title: t\n  version: '1'\npaths:\n  /a:\n    get:\n      \
         x-amazon-apigateway-integration:\n        type: MOCK\n"
            .to_string(),
    );
    seeds
}

/// Pieces of YAML and JSON syntax, weighted toward the expensive ones.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("[".to_string()),
        Just("]".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("{a: ".to_string()),
        Just(": ".to_string()),
        Just(", ".to_string()),
        Just("- ".to_string()),
        Just("\n".to_string()),
        Just("\n  ".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("# c\n".to_string()),
        Just("|\n  ".to_string()),
        Just(">-\n  ".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("<<: *a\n".to_string()),
        Just("!!str ".to_string()),
        Just("paths".to_string()),
        Just("openapi: 3.0.1\n".to_string()),
        Just("x-amazon-apigateway-integration".to_string()),
        Just("$ref: '#/a'".to_string()),
        "[a-z0-9]{1,8}".prop_map(String::from),
        // A run of one token, the shape of the quadratic inputs.
        (
            prop::sample::select(vec!["[", "{a: ", "- ", "&x [", "\"\\"]),
            1..200usize
        )
            .prop_map(|(piece, count)| piece.repeat(count)),
    ]
}

fn import_within_deadline(text: &str) {
    let started = Instant::now();
    let outcome = portico::openapi::import("fuzz", text, "fuzzapi000", 1_700_000_000, &mut {
        let mut counter = 0u32;
        move || {
            counter += 1;
            format!("fuzz{counter:06}")
        }
    });
    let took = started.elapsed();
    // The deadline is checked between stages; a stage is bounded by the limits, so the whole
    // import stays well within twice the deadline even in a debug build.
    assert!(
        took < portico::openapi::limits::IMPORT_DEADLINE * 2,
        "{} bytes took {took:?}",
        text.len()
    );
    if let Err(error) = outcome {
        assert!(!error.problems.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES (read by `ProptestConfig::default`) lengthens the run.
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            ProptestConfig::default().cases
        } else {
            128
        },
        max_shrink_time: 10_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn token_soup_never_panics_or_runs_long(tokens in prop::collection::vec(token(), 0..300)) {
        import_within_deadline(&tokens.concat());
    }

    #[test]
    fn mutated_definitions_never_panic_or_run_long(
        seed in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), token()), 1..16),
    ) {
        let seeds = seeds();
        let mut text = seed.get(&seeds).clone();
        for (at, piece) in edits {
            let mut position = at.index(text.len() + 1);
            while !text.is_char_boundary(position) {
                position -= 1;
            }
            text.insert_str(position, &piece);
        }
        import_within_deadline(&text);
    }
}

/// The shapes of the findings in issue #14, at their full size, each refused in well under a
/// second.
#[test]
fn the_reported_shapes_are_refused_quickly() {
    let shapes = [
        format!("{}1{}", "{a: ".repeat(50_000), "}".repeat(50_000)),
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
        format!("[{}0]", "a,".repeat(3_000_000)),
        format!("a: \"{}\"", "x".repeat(7 << 20)),
        // 100 KB that expanded to 50 million nodes (5 GB, 29 s) through aliases.
        format!(
            "a0: &a0 [{}x]\nb: [{}]\n",
            "x,".repeat(50_000),
            vec!["*a0"; 1000].join(",")
        ),
    ];
    for text in shapes {
        let started = Instant::now();
        let outcome = portico::openapi::import("hostile", &text, "hostile000", 0, &mut || {
            "id00000000".to_string()
        });
        let took = started.elapsed();
        assert!(outcome.is_err());
        assert!(
            took < Duration::from_secs(1),
            "{} bytes took {took:?}",
            text.len()
        );
    }
}
