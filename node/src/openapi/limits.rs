//! What a definition may cost before it is parsed: its size, its nesting and its number of
//! nodes, checked by one linear pass over the text.
//!
//! Why before: the parsers' costs are not linear in the text. libyaml's scanner walks every
//! open flow collection for each token (a 160 KB document of nested `{a: ` took 11 s, one of
//! 400 KB 35 s); `yaml_serde` buffers every event and then builds a tree, about 230 bytes per
//! scalar and 430 per nested mapping (a 6 MB flow sequence of one-letter items peaked at
//! 720 MB). Both parsers enforce their own depth limit of 128, but only after the scanner has
//! done its quadratic work and the loader has buffered the whole document. Bounding the flow
//! depth makes the scanner's work linear (at most `MAX_FLOW_DEPTH` steps per token), and
//! bounding the node count bounds the memory of both trees.
//!
//! The scan is deliberately approximate but errs on the side of counting more: quoted
//! scalars, comments and block scalars are skipped so that brackets and commas in text do not
//! count, and every separator (`,`, `:`, `- `, a line) counts as a node. It never accepts more
//! than the parsers would hold within the bounds; a document it refuses is one no API
//! definition needs (32 nested flow collections in YAML, or more nodes than a 6 MB document of real
//! definitions has).

use super::Problem;

/// AWS's limit for ImportRestApi and PutRestApi bodies ("The maximum size of the API
/// definition file is 6MB", botocore's `apigateway` model).
pub const MAX_DOCUMENT_BYTES: usize = 6 * 1024 * 1024;
/// Open `[` / `{` collections at once in a YAML document. Definitions written in YAML nest a
/// few levels deep in flow style at most; the YAML scanner's cost per token grows with this.
pub const MAX_FLOW_DEPTH: usize = 32;
/// The same for a JSON document, all of it flow style: `serde_json`'s own limit (its cost is
/// linear in the text however deep).
pub const MAX_JSON_DEPTH: usize = 128;
/// Estimated nodes (scalars, keys and collections) of a YAML document: about 130 MB of parser
/// memory at the measured ~430 bytes per node, and more than the nodes of a 6 MB definition
/// written as YAML (about 25 bytes of text per node).
pub const MAX_YAML_NODES: usize = 300_000;
/// Estimated nodes of a JSON document, which `serde_json` parses into its tree directly (about
/// 40 bytes per node; a 6 MB document of one-digit array items is 3 million nodes and 100 MB).
pub const MAX_JSON_NODES: usize = 1_500_000;
/// Anchors and aliases: definitions exported by AWS or generators use none; `yaml_serde`
/// bounds the expansion of each alias on its own ("repetition limit exceeded").
pub const MAX_YAML_ALIASES: usize = 1_000;
/// The whole import (parse, conversion, walk) must finish within this, checked after parsing
/// and after the walk; with the bounds above it takes a second or two even in a debug build.
pub const IMPORT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// What the scan measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    pub max_flow_depth: usize,
    pub nodes: usize,
    pub aliases: usize,
}

/// Checks `text` against the limits before any parser sees it.
pub(crate) fn check(text: &str, json: bool) -> Result<Shape, Problem> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(Problem::at(
            "",
            format!(
                "the document is {} bytes; the maximum size of an API definition is {MAX_DOCUMENT_BYTES} bytes (6 MB)",
                text.len()
            ),
        ));
    }
    let shape = scan(text, if json { MAX_JSON_DEPTH } else { MAX_FLOW_DEPTH })?;
    let max_nodes = if json { MAX_JSON_NODES } else { MAX_YAML_NODES };
    if shape.nodes > max_nodes {
        return Err(Problem::at(
            "",
            format!(
                "the document has about {} nodes; at most {max_nodes} are accepted",
                shape.nodes
            ),
        ));
    }
    if shape.aliases > MAX_YAML_ALIASES {
        return Err(Problem::at(
            "",
            format!("the document has more than {MAX_YAML_ALIASES} YAML anchors and aliases"),
        ));
    }
    Ok(shape)
}

/// Counts the nodes of a YAML document as `yaml_serde` will build them, aliases expanded,
/// and stops at `max`. Why: an alias is replayed wherever it appears, so 100 KB of text (an
/// anchored list of 50,000 items, then a list of 1,000 aliases to it) became 50 million
/// nodes, 5 GB and 29 s. The count builds nothing, so it costs the events `yaml_serde`
/// buffers (bounded by the scan's node estimate) and at most `max` visits.
pub(crate) fn count_yaml_nodes(text: &str, max: usize) -> Result<usize, yaml_serde::Error> {
    use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};

    struct Count<'c> {
        nodes: &'c std::cell::Cell<usize>,
        max: usize,
    }

    impl Count<'_> {
        fn one<E: Error>(&self) -> Result<(), E> {
            let nodes = self.nodes.get() + 1;
            self.nodes.set(nodes);
            if nodes > self.max {
                return Err(E::custom(format!(
                    "the document has more than {} nodes once its aliases are expanded",
                    self.max
                )));
            }
            Ok(())
        }
    }

    impl<'de> DeserializeSeed<'de> for &Count<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
            deserializer.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for &Count<'_> {
        type Value = ();
        fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str("any YAML node")
        }
        fn visit_bool<E: Error>(self, _: bool) -> Result<(), E> {
            self.one()
        }
        fn visit_i64<E: Error>(self, _: i64) -> Result<(), E> {
            self.one()
        }
        fn visit_u64<E: Error>(self, _: u64) -> Result<(), E> {
            self.one()
        }
        fn visit_i128<E: Error>(self, _: i128) -> Result<(), E> {
            self.one()
        }
        fn visit_u128<E: Error>(self, _: u128) -> Result<(), E> {
            self.one()
        }
        fn visit_f64<E: Error>(self, _: f64) -> Result<(), E> {
            self.one()
        }
        fn visit_str<E: Error>(self, _: &str) -> Result<(), E> {
            self.one()
        }
        fn visit_unit<E: Error>(self) -> Result<(), E> {
            self.one()
        }
        fn visit_none<E: Error>(self) -> Result<(), E> {
            self.one()
        }
        fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
            deserializer.deserialize_any(self)
        }
        fn visit_newtype_struct<D: Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<(), D::Error> {
            deserializer.deserialize_any(self)
        }
        fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
            // A tagged node (`!Tag value`): the tag, then its value.
            use serde::de::VariantAccess;
            self.one()?;
            let ((), variant) = data.variant_seed(self)?;
            variant.newtype_variant_seed(self)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            self.one()?;
            while seq.next_element_seed(self)?.is_some() {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            self.one()?;
            while map.next_key_seed(self)?.is_some() {
                map.next_value_seed(self)?;
            }
            Ok(())
        }
    }

    let nodes = std::cell::Cell::new(0);
    let count = Count { nodes: &nodes, max };
    (&count).deserialize(yaml_serde::Deserializer::from_str(text))?;
    Ok(nodes.get())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Normal,
    Double,
    Single,
    Comment,
    /// A `|` or `>` scalar: its first line indented deeper than `parent` sets `content`
    /// (0 until then), and it ends at the first line indented less than that, as in libyaml.
    Block {
        parent: usize,
        content: usize,
    },
}

/// One pass over the bytes; fails at the first flow collection past `max_depth`, with its
/// line and column.
pub(crate) fn scan(text: &str, max_depth: usize) -> Result<Shape, Problem> {
    let bytes = text.as_bytes();
    let mut shape = Shape::default();
    let mut state = State::Normal;
    let mut depth = 0usize;
    let (mut line, mut column) = (1usize, 0usize);
    // Indentation of the current line, and whether anything but spaces was seen on it yet.
    let mut indent = 0usize;
    let mut line_started = false;
    // The last token of the line outside quotes and comments (a `|` or `>` header starts a
    // block scalar), as a byte range.
    let mut token = (0usize, 0usize);
    let mut previous = b'\n';
    // In block context: inside a plain scalar, or inside an anchor, alias or tag.
    let (mut plain, mut skip_token) = (false, false);
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        index += 1;
        column += 1;
        if byte == b'\n' {
            if state == State::Comment {
                state = State::Normal;
            }
            if state == State::Normal
                && depth == 0
                && line_started
                && is_block_header(&bytes[token.0..token.1])
            {
                state = State::Block {
                    parent: indent,
                    content: 0,
                };
            }
            if line_started && !matches!(state, State::Block { .. }) {
                shape.nodes += 1;
            }
            line += 1;
            column = 0;
            indent = 0;
            line_started = false;
            token = (index, index);
            previous = b'\n';
            (plain, skip_token) = (false, false);
            continue;
        }
        if let State::Block { parent, content } = state {
            if !line_started {
                if byte == b' ' {
                    indent += 1;
                    continue;
                }
                if byte == b'\r' || byte == b'\t' {
                    continue;
                }
                let inside = if content == 0 {
                    indent > parent
                } else {
                    indent >= content
                };
                if inside {
                    if content == 0 {
                        state = State::Block {
                            parent,
                            content: indent,
                        };
                    }
                    // Content of the block scalar: skip the rest of the line.
                    line_started = true;
                    while index < bytes.len() && bytes[index] != b'\n' {
                        index += 1;
                    }
                    continue;
                }
                state = State::Normal;
            } else {
                continue;
            }
        }
        match state {
            State::Double => {
                if byte == b'\\' {
                    // The escaped byte never ends the string (a newline inside counts as text).
                    if bytes.get(index).is_some_and(|next| *next != b'\n') {
                        index += 1;
                        column += 1;
                    }
                } else if byte == b'"' {
                    state = State::Normal;
                }
                previous = byte;
                continue;
            }
            State::Single => {
                if byte == b'\'' {
                    if bytes.get(index) == Some(&b'\'') {
                        index += 1;
                        column += 1;
                    } else {
                        state = State::Normal;
                    }
                }
                previous = byte;
                continue;
            }
            State::Comment | State::Block { .. } => continue,
            State::Normal => {}
        }
        if !line_started {
            if byte == b' ' {
                indent += 1;
                previous = byte;
                continue;
            }
            line_started = true;
        }
        let at_token_start = matches!(previous, b' ' | b'\t' | b'\n' | b'[' | b'{' | b',');
        let next_is_space = bytes
            .get(index)
            .is_none_or(|next| next.is_ascii_whitespace());
        // In block context, inside a plain scalar (`description: see [1`), brackets, quotes
        // and anchors are text: only `: ` (the value indicator) and ` #` end it before the
        // line does. In flow context plain scalars cannot hold flow indicators, so every
        // bracket there is structure.
        if depth == 0 && (plain || skip_token) {
            match byte {
                b':' if plain && next_is_space => {
                    plain = false;
                    shape.nodes += 1;
                }
                b'#' if previous.is_ascii_whitespace() => {
                    state = State::Comment;
                    continue;
                }
                b' ' | b'\t' if skip_token => skip_token = false,
                _ => {}
            }
        } else {
            match byte {
                b'#' if at_token_start => {
                    state = State::Comment;
                    continue;
                }
                b'"' if at_token_start || previous == b':' => state = State::Double,
                b'\'' if at_token_start || previous == b':' => state = State::Single,
                b'[' | b'{' => {
                    depth += 1;
                    shape.nodes += 1;
                    if depth > shape.max_flow_depth {
                        shape.max_flow_depth = depth;
                    }
                    if depth > max_depth {
                        return Err(Problem {
                            pointer: "/".to_string(),
                            message: format!(
                                "collections are nested more than {max_depth} levels deep"
                            ),
                            line: Some((line, column)),
                        });
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                b',' | b':' => shape.nodes += 1,
                b'-' | b'?' if at_token_start && next_is_space => shape.nodes += 1,
                b'&' | b'*' | b'!' if at_token_start => {
                    if byte != b'!' {
                        shape.aliases += 1;
                    }
                    // The anchor, alias or tag runs to the next space.
                    skip_token = depth == 0;
                }
                b' ' | b'\t' | b'\r' => {}
                _ if depth == 0 => plain = true,
                _ => {}
            }
        }
        if !byte.is_ascii_whitespace() {
            if previous.is_ascii_whitespace() {
                token.0 = index - 1;
            }
            token.1 = index;
        }
        previous = byte;
    }
    if line_started {
        shape.nodes += 1;
    }
    Ok(shape)
}

/// `|` or `>`, then chomping and indentation indicators (`|-`, `>+2`).
fn is_block_header(token: &[u8]) -> bool {
    matches!(token.first(), Some(b'|' | b'>'))
        && token[1..]
            .iter()
            .all(|byte| matches!(byte, b'-' | b'+' | b'1'..=b'9'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_past_the_limit_is_refused_with_its_position() {
        let text = format!("a:\n  b: {}1{}", "{x: ".repeat(70), "}".repeat(70));
        let problem = scan(&text, MAX_FLOW_DEPTH).unwrap_err();
        assert_eq!(
            problem.line,
            Some((2, "  b: ".len() + 4 * MAX_FLOW_DEPTH + 1))
        );
        assert!(
            problem.message.contains("nested more than 32"),
            "{problem:?}"
        );
        let ok = format!("a: {}1{}", "[".repeat(32), "]".repeat(32));
        assert_eq!(scan(&ok, MAX_FLOW_DEPTH).unwrap().max_flow_depth, 32);
        let json = format!("{{\"a\": {}1{}}}", "[".repeat(100), "]".repeat(100));
        assert!(check(&json, true).is_ok());
        assert!(
            check(&json, false).is_err(),
            "as YAML, the same text is too deep"
        );
    }

    #[test]
    fn brackets_in_text_do_not_count() {
        let text = format!(
            "a: \"{open}\"\nb: '{open}'\nc: |\n  {open}\n\n  more {open}\nd: >- # {open}\n  {open}\ne: 1 # {open}\n",
            open = "[".repeat(200)
        );
        let shape = scan(&text, MAX_FLOW_DEPTH).unwrap();
        assert_eq!(shape.max_flow_depth, 0);
        let unbalanced: String = (0..200).map(|i| format!("d{i}: see [{i}\n")).collect();
        assert_eq!(scan(&unbalanced, MAX_FLOW_DEPTH).unwrap().max_flow_depth, 0);
        let compact = format!("{{\"a\":[{}1{}]}}", "[".repeat(10), "]".repeat(10));
        assert_eq!(scan(&compact, MAX_FLOW_DEPTH).unwrap().max_flow_depth, 12);
        let json = format!("{{\"a\": \"{}\\\"\", \"b\": [1]}}", "{".repeat(200));
        assert_eq!(scan(&json, MAX_FLOW_DEPTH).unwrap().max_flow_depth, 2);
    }

    #[test]
    fn a_block_scalar_ends_where_its_indentation_does() {
        // `b` is less indented than the scalar's text, so it is a key again, and its
        // brackets are structure (libyaml scans them as such).
        let text = format!(
            "- a: |\n    text [[[\n\n    more\n  b: {}1{}\n",
            "{a: ".repeat(40),
            "}".repeat(40)
        );
        let problem = scan(&text, MAX_FLOW_DEPTH).unwrap_err();
        assert_eq!(problem.line.map(|(line, _)| line), Some(5));
    }

    #[test]
    fn nodes_are_counted_at_least_once_each() {
        let list = format!("[{}1]", "1,".repeat(1000));
        assert!(scan(&list, MAX_FLOW_DEPTH).unwrap().nodes >= 1001);
        let block: String = (0..1000).map(|i| format!("k{i}: v\n")).collect();
        assert!(scan(&block, MAX_FLOW_DEPTH).unwrap().nodes >= 2000);
        let too_many = format!("[{}1]", "1,".repeat(MAX_YAML_NODES));
        assert!(
            check(&too_many, false)
                .unwrap_err()
                .message
                .contains("nodes")
        );
        assert!(check(&too_many, true).is_ok());
    }

    #[test]
    fn aliases_count_as_what_they_expand_to() {
        let wide = format!(
            "a: &a [{}x]\nb: [{}]\n",
            "x,".repeat(5_000),
            vec!["*a"; 100].join(",")
        );
        assert!(scan(&wide, MAX_FLOW_DEPTH).unwrap().nodes < 6_000);
        let error = count_yaml_nodes(&wide, MAX_YAML_NODES).unwrap_err();
        assert!(
            error.to_string().contains("once its aliases are expanded"),
            "{error}"
        );
        let modest = "base: &b {type: MOCK}\nx: *b\ny: {<<: *b, extra: 1}\n";
        assert_eq!(count_yaml_nodes(modest, MAX_YAML_NODES).unwrap(), 17);
    }

    #[test]
    fn documents_over_six_megabytes_are_refused() {
        let text = format!("a: \"{}\"", "x".repeat(MAX_DOCUMENT_BYTES));
        assert!(check(&text, false).unwrap_err().message.contains("6 MB"));
    }
}
