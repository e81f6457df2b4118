//! The route table of one deployment: resource path templates compiled into a segment trie.
//!
//! API Gateway's precedence is per segment: a literal beats `{param}`, which beats a greedy
//! `{proxy+}`. When a more specific branch dead-ends further down, matching backs up and tries
//! the next one, so `/pets/{id}/toys` still serves `/pets/mine/toys` next to `/pets/mine`.
//! Every trie node is reached by exactly one path from the root, so a lookup visits each node at
//! most once: the cost is bounded by the table, never exponential in the request.
//!
//! ```text
//!   /                      root
//!   ├── pets               literal children, sorted, binary searched
//!   │   ├── mine           (literal beats param)
//!   │   └── {petId}        one param child per node
//!   │        └── toys
//!   └── {proxy+}           one greedy child per node: takes the rest of the path
//! ```
//!
//! A lookup borrows the request path and records parameter values as byte ranges into it: it
//! allocates nothing per segment (captures go into a small inline array).

use std::ops::Range;

/// Why a path template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("path template `{0}` must start with `/`")]
    NoLeadingSlash(String),
    #[error("path template `{0}` has an empty segment")]
    EmptySegment(String),
    #[error(
        "path template `{template}`: segment `{segment}` is not a literal, `{{name}}` or `{{name+}}`"
    )]
    BadSegment { template: String, segment: String },
    #[error("path template `{0}`: a greedy `{{name+}}` segment must be the last")]
    GreedyNotLast(String),
    #[error(
        "path template `{template}`: `{{{existing}}}` and `{{{new}}}` are both variables under the same parent; only one is allowed"
    )]
    ConflictingVariable {
        template: String,
        existing: String,
        new: String,
    },
    #[error("path template `{0}` is defined twice")]
    Duplicate(String),
    #[error("path template `{template}` has more than {MAX_CAPTURES} variables")]
    TooManyVariables { template: String },
}

/// Templates with more variables than this are refused at compile time, which lets a lookup
/// keep its captures on the stack.
pub const MAX_CAPTURES: usize = 16;

#[derive(Debug)]
struct Node<T> {
    /// Sorted by segment text for binary search.
    literals: Vec<(Box<str>, usize)>,
    param: Option<(Box<str>, usize)>,
    greedy: Option<(Box<str>, usize)>,
    value: Option<T>,
    /// Variable names from the root to here, in order; the captures of a match line up.
    param_names: Vec<Box<str>>,
}

impl<T> Node<T> {
    fn new(param_names: Vec<Box<str>>) -> Self {
        Node {
            literals: Vec::new(),
            param: None,
            greedy: None,
            value: None,
            param_names,
        }
    }
}

/// A compiled table mapping path templates to values of type `T`.
#[derive(Debug)]
pub struct RouteTable<T> {
    nodes: Vec<Node<T>>,
}

/// The values of a match's path variables, as ranges into the looked-up path.
#[derive(Debug, Clone)]
pub struct Captures {
    spans: [(u32, u32); MAX_CAPTURES],
    len: usize,
}

impl Captures {
    fn new() -> Self {
        Captures {
            spans: [(0, 0); MAX_CAPTURES],
            len: 0,
        }
    }

    fn push(&mut self, range: Range<usize>) {
        // Cannot overflow: templates are limited to MAX_CAPTURES variables at compile time.
        if self.len < MAX_CAPTURES {
            self.spans[self.len] = (range.start as u32, range.end as u32);
            self.len += 1;
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, index: usize) -> Option<Range<usize>> {
        (index < self.len).then(|| {
            let (start, end) = self.spans[index];
            start as usize..end as usize
        })
    }
}

/// A successful lookup.
#[derive(Debug)]
pub struct Match<'t, T> {
    pub value: &'t T,
    /// Variable names, in template order.
    pub names: &'t [Box<str>],
    pub captures: Captures,
}

impl<'t, T> Match<'t, T> {
    /// Iterates `(name, raw value)` pairs; values are the request's bytes, not decoded, as API
    /// Gateway passes them.
    pub fn params<'p>(&self, path: &'p str) -> impl Iterator<Item = (&'t str, &'p str)> + '_
    where
        'p: 't,
    {
        self.names
            .iter()
            .enumerate()
            .filter_map(move |(index, name)| {
                let range = self.captures.get(index)?;
                Some((name.as_ref(), path.get(range)?))
            })
    }
}

enum Segment<'a> {
    Literal(&'a str),
    Param(&'a str),
    Greedy(&'a str),
}

fn parse_segment<'a>(template: &str, segment: &'a str) -> Result<Segment<'a>, TemplateError> {
    let bad = || TemplateError::BadSegment {
        template: template.to_string(),
        segment: segment.to_string(),
    };
    if let Some(inner) = segment.strip_prefix('{') {
        let inner = inner.strip_suffix('}').ok_or_else(bad)?;
        let (name, greedy) = match inner.strip_suffix('+') {
            Some(name) => (name, true),
            None => (inner, false),
        };
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
        if !valid {
            return Err(bad());
        }
        Ok(if greedy {
            Segment::Greedy(name)
        } else {
            Segment::Param(name)
        })
    } else if segment.contains(['{', '}']) {
        Err(bad())
    } else {
        Ok(Segment::Literal(segment))
    }
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        RouteTable {
            nodes: vec![Node::new(Vec::new())],
        }
    }
}

impl<T> RouteTable<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a template (`/`, `/pets`, `/pets/{petId}`, `/{proxy+}`).
    pub fn insert(&mut self, template: &str, value: T) -> Result<(), TemplateError> {
        let rest = template
            .strip_prefix('/')
            .ok_or_else(|| TemplateError::NoLeadingSlash(template.to_string()))?;
        let mut node = 0;
        if !rest.is_empty() {
            let segments: Vec<&str> = rest.split('/').collect();
            let n_vars = segments.iter().filter(|s| s.starts_with('{')).count();
            if n_vars > MAX_CAPTURES {
                return Err(TemplateError::TooManyVariables {
                    template: template.to_string(),
                });
            }
            for (index, segment) in segments.iter().enumerate() {
                if segment.is_empty() {
                    return Err(TemplateError::EmptySegment(template.to_string()));
                }
                let parsed = parse_segment(template, segment)?;
                if matches!(parsed, Segment::Greedy(_)) && index + 1 != segments.len() {
                    return Err(TemplateError::GreedyNotLast(template.to_string()));
                }
                node = self.child(node, template, parsed)?;
            }
        }
        let slot = &mut self.nodes[node].value;
        if slot.is_some() {
            return Err(TemplateError::Duplicate(template.to_string()));
        }
        *slot = Some(value);
        Ok(())
    }

    fn child(
        &mut self,
        parent: usize,
        template: &str,
        segment: Segment<'_>,
    ) -> Result<usize, TemplateError> {
        let next = self.nodes.len();
        let mut names = self.nodes[parent].param_names.clone();
        let parent_node = &self.nodes[parent];
        match segment {
            Segment::Literal(text) => {
                match parent_node
                    .literals
                    .binary_search_by(|(existing, _)| existing.as_ref().cmp(text))
                {
                    Ok(found) => Ok(parent_node.literals[found].1),
                    Err(insert_at) => {
                        self.nodes[parent]
                            .literals
                            .insert(insert_at, (text.into(), next));
                        self.nodes.push(Node::new(names));
                        Ok(next)
                    }
                }
            }
            Segment::Param(name) | Segment::Greedy(name) => {
                let greedy = matches!(segment, Segment::Greedy(_));
                // API Gateway allows one variable child per resource, greedy or not.
                let existing = parent_node
                    .param
                    .as_ref()
                    .map(|(n, i)| (n, *i, false))
                    .or(parent_node.greedy.as_ref().map(|(n, i)| (n, *i, true)));
                if let Some((existing_name, index, existing_greedy)) = existing {
                    if existing_name.as_ref() == name && existing_greedy == greedy {
                        return Ok(index);
                    }
                    let render = |n: &str, g: bool| if g { format!("{n}+") } else { n.to_string() };
                    return Err(TemplateError::ConflictingVariable {
                        template: template.to_string(),
                        existing: render(existing_name, existing_greedy),
                        new: render(name, greedy),
                    });
                }
                names.push(name.into());
                self.nodes.push(Node::new(names));
                let slot = (name.into(), next);
                if greedy {
                    self.nodes[parent].greedy = Some(slot);
                } else {
                    self.nodes[parent].param = Some(slot);
                }
                Ok(next)
            }
        }
    }

    /// Finds the most specific template matching `path` (which starts with `/`; the query string
    /// is already gone). One trailing slash is ignored, as API Gateway does.
    pub fn lookup<'t>(&'t self, path: &str) -> Option<Match<'t, T>> {
        let trimmed = if path.len() > 1 {
            path.strip_suffix('/').unwrap_or(path)
        } else {
            path
        };
        // `at` is where the next segment starts; one past the end means "no segments left"
        // (the root), so that an empty segment at the end (`/pets//`) stays distinguishable.
        let start = match trimmed {
            "/" | "" => trimmed.len() + 1,
            _ if trimmed.starts_with('/') => 1,
            _ => 0,
        };
        let mut captures = Captures::new();
        let node = self.walk(0, trimmed, start, &mut captures)?;
        let node = &self.nodes[node];
        Some(Match {
            value: node.value.as_ref()?,
            names: &node.param_names,
            captures,
        })
    }

    /// Matches the segments of `path` from byte `at` below `node`; returns the node holding
    /// the value. `at > path.len()` means every segment has been consumed.
    fn walk(&self, node: usize, path: &str, at: usize, captures: &mut Captures) -> Option<usize> {
        let current = &self.nodes[node];
        if at > path.len() {
            return current.value.is_some().then_some(node);
        }
        let rest = &path[at..];
        let (segment, next_at) = match rest.find('/') {
            Some(slash) => (&rest[..slash], at + slash + 1),
            None => (rest, path.len() + 1),
        };

        if !segment.is_empty() {
            if let Ok(found) = current
                .literals
                .binary_search_by(|(text, _)| text.as_ref().cmp(segment))
            {
                let mark = captures.len;
                if let Some(hit) = self.walk(current.literals[found].1, path, next_at, captures) {
                    return Some(hit);
                }
                captures.len = mark;
            }
            if let Some((_, child)) = &current.param {
                let mark = captures.len;
                captures.push(at..at + segment.len());
                if let Some(hit) = self.walk(*child, path, next_at, captures) {
                    return Some(hit);
                }
                captures.len = mark;
            }
        }
        if let Some((_, child)) = &current.greedy {
            // The greedy variable takes everything left, inner slashes included, but never
            // nothing.
            if self.nodes[*child].value.is_some() && at < path.len() {
                captures.push(at..path.len());
                return Some(*child);
            }
        }
        None
    }

    /// Number of templates in the table.
    pub fn len(&self) -> usize {
        self.nodes
            .iter()
            .filter(|node| node.value.is_some())
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn table(templates: &[&str]) -> RouteTable<String> {
        let mut table = RouteTable::new();
        for template in templates {
            table.insert(template, template.to_string()).unwrap();
        }
        table
    }

    fn check(table: &RouteTable<String>, path: &str) -> String {
        match table.lookup(path) {
            None => "none".to_string(),
            Some(hit) => {
                let params: Vec<String> = hit
                    .params(path)
                    .map(|(name, value)| format!("{name}={value}"))
                    .collect();
                if params.is_empty() {
                    hit.value.clone()
                } else {
                    format!("{} {}", hit.value, params.join(" "))
                }
            }
        }
    }

    #[test]
    fn precedence_literal_then_param_then_greedy() {
        let t = table(&[
            "/",
            "/pets",
            "/pets/mine",
            "/pets/{petId}",
            "/pets/{petId}/toys",
            "/{proxy+}",
        ]);
        let cases = [
            ("/", "/"),
            ("/pets", "/pets"),
            ("/pets/", "/pets"),
            ("/pets/mine", "/pets/mine"),
            ("/pets/7", "/pets/{petId} petId=7"),
            ("/pets/mine/toys", "/pets/{petId}/toys petId=mine"),
            ("/pets/7/toys", "/pets/{petId}/toys petId=7"),
            ("/pets/7/other", "/{proxy+} proxy=pets/7/other"),
            ("/other", "/{proxy+} proxy=other"),
            ("/a//b", "/{proxy+} proxy=a//b"),
            ("/a/b/", "/{proxy+} proxy=a/b"),
        ];
        for (path, expected) in cases {
            assert_eq!(check(&t, path), expected, "path {path}");
        }
    }

    #[test]
    fn no_match_without_greedy() {
        let t = table(&["/pets", "/pets/{petId}"]);
        assert_eq!(check(&t, "/"), "none");
        assert_eq!(check(&t, "/pets/1/2"), "none");
        assert_eq!(check(&t, "/dogs"), "none");
        assert_eq!(check(&t, "/pets//"), "none");
    }

    #[test]
    fn greedy_below_a_literal_and_params_are_raw() {
        let t = table(&["/api/{proxy+}", "/user/{email}"]);
        assert_eq!(check(&t, "/api/a/b%20c"), "/api/{proxy+} proxy=a/b%20c");
        assert_eq!(check(&t, "/api"), "none");
        assert_eq!(
            check(&t, "/user/test%2Balias@gmail.com"),
            "/user/{email} email=test%2Balias@gmail.com"
        );
    }

    #[test]
    fn template_errors() {
        let mut t = RouteTable::new();
        assert!(matches!(
            t.insert("pets", ()),
            Err(TemplateError::NoLeadingSlash(_))
        ));
        assert!(matches!(
            t.insert("/{proxy+}/x", ()),
            Err(TemplateError::GreedyNotLast(_))
        ));
        assert!(matches!(
            t.insert("/a//b", ()),
            Err(TemplateError::EmptySegment(_))
        ));
        assert!(matches!(
            t.insert("/a{b}", ()),
            Err(TemplateError::BadSegment { .. })
        ));
        t.insert("/pets/{id}", ()).unwrap();
        assert!(matches!(
            t.insert("/pets/{petId}", ()),
            Err(TemplateError::ConflictingVariable { .. })
        ));
        assert!(matches!(
            t.insert("/pets/{proxy+}", ()),
            Err(TemplateError::ConflictingVariable { .. })
        ));
        assert!(matches!(
            t.insert("/pets/{id}", ()),
            Err(TemplateError::Duplicate(_))
        ));
    }

    /// A straightforward reference matcher: try every template, keep the most specific by
    /// comparing per-segment kinds left to right (literal < param < greedy).
    fn reference(templates: &[String], path: &str) -> Option<String> {
        let trimmed = if path.len() > 1 {
            path.strip_suffix('/').unwrap_or(path)
        } else {
            path
        };
        let request: Vec<&str> = if trimmed == "/" {
            vec![]
        } else {
            trimmed[1..].split('/').collect()
        };
        let mut best: Option<(Vec<u8>, String)> = None;
        for template in templates {
            let parts: Vec<&str> = if template == "/" {
                vec![]
            } else {
                template[1..].split('/').collect()
            };
            let mut rank = Vec::new();
            let mut ok = true;
            let mut index = 0;
            for part in &parts {
                if part.ends_with("+}") {
                    if index >= request.len() || request[index..].join("/").is_empty() {
                        ok = false;
                    }
                    rank.push(2);
                    index = request.len();
                    break;
                }
                if index >= request.len() || request[index].is_empty() {
                    ok = false;
                    break;
                }
                if part.starts_with('{') {
                    rank.push(1);
                } else if *part != request[index] {
                    ok = false;
                    break;
                } else {
                    rank.push(0);
                }
                index += 1;
            }
            if ok && index == request.len() {
                let better = match &best {
                    None => true,
                    Some((best_rank, _)) => rank < *best_rank,
                };
                if better {
                    best = Some((rank, template.clone()));
                }
            }
        }
        best.map(|(_, template)| template)
    }

    fn template_strategy() -> impl Strategy<Value = String> {
        let segment = prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("{id}".to_string()),
        ];
        (
            proptest::collection::vec(segment, 0..4),
            proptest::bool::ANY,
        )
            .prop_map(|(segments, greedy)| {
                let mut path = String::new();
                for segment in segments {
                    path.push('/');
                    path.push_str(&segment);
                }
                if greedy {
                    path.push_str("/{proxy+}");
                }
                if path.is_empty() {
                    "/".to_string()
                } else {
                    path
                }
            })
    }

    proptest! {
        /// The trie with backtracking picks what the brute-force reference picks.
        #[test]
        fn matches_reference(
            templates in proptest::collection::btree_set(template_strategy(), 1..12),
            request in proptest::collection::vec(prop_oneof![Just("a"), Just("b"), Just("c"), Just("")], 0..6),
        ) {
            // Templates refused for a second variable sibling are left out of both sides.
            let mut table = RouteTable::new();
            let templates: Vec<String> = templates
                .into_iter()
                .filter(|template| table.insert(template, template.clone()).is_ok())
                .collect();
            let path = format!("/{}", request.join("/"));
            let got = table.lookup(&path).map(|hit| hit.value.clone());
            prop_assert_eq!(got, reference(&templates, &path), "path {}", path);
        }
    }
}
