//! Cache keys: what splits the cache, and nothing else.
//!
//! API Gateway keys an entry on the method, the resource path, the path parameters and the
//! declared cache key parameters. A key here is opaque bytes (so the region's L2 can store it
//! without understanding it) built from length-prefixed parts: `("a", "bc")` and `("ab", "c")`
//! can never collide, and neither can a missing parameter and an empty one. The stage's cache
//! generation is part of every key, so a flush is a counter bump: older entries become
//! unreachable at once and age out.

use std::sync::Arc;

use crate::config::cache::{KeyParameter, MethodCache, StageCache};

/// Version of the key layout; bumped if it ever changes, so old L2 entries cannot match.
const LAYOUT: u8 = 1;

/// What a key is built from, borrowed from the request.
#[derive(Debug, Clone, Copy)]
pub struct KeyInput<'a> {
    pub api_id: &'a str,
    pub stage: &'a str,
    pub generation: u64,
    pub verb: &'a str,
    pub resource_path: &'a str,
    /// `(name, raw value)` of every path variable, in template order.
    pub path_parameters: &'a [(&'a str, &'a str)],
    pub query: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
}

struct Writer(Vec<u8>);

impl Writer {
    fn part(&mut self, bytes: &[u8]) {
        self.count(bytes.len());
        self.0.extend_from_slice(bytes);
    }

    fn tag(&mut self, tag: u8) {
        self.0.push(tag);
    }

    fn count(&mut self, count: usize) {
        self.0.extend_from_slice(&(count as u64).to_be_bytes());
    }
}

/// Builds the key of one request.
pub fn build(input: &KeyInput<'_>, key_parameters: &[KeyParameter]) -> Arc<[u8]> {
    let mut writer = Writer(Vec::with_capacity(128));
    writer.tag(LAYOUT);
    writer.part(input.api_id.as_bytes());
    writer.part(input.stage.as_bytes());
    writer.0.extend_from_slice(&input.generation.to_be_bytes());
    writer.part(input.verb.as_bytes());
    writer.part(input.resource_path.as_bytes());
    writer.count(input.path_parameters.len());
    for (name, value) in input.path_parameters {
        writer.part(name.as_bytes());
        writer.part(value.as_bytes());
    }
    let needs_query = key_parameters
        .iter()
        .any(|parameter| matches!(parameter, KeyParameter::Query(_)));
    let query = match needs_query {
        true => crate::integrate::params::parse_query(input.query),
        false => Vec::new(),
    };
    writer.count(key_parameters.len());
    for parameter in key_parameters {
        match parameter {
            KeyParameter::Query(name) => {
                writer.tag(b'q');
                writer.part(name.as_bytes());
                let values: Vec<&str> = query
                    .iter()
                    .filter(|(candidate, _)| candidate == name)
                    .map(|(_, value)| value.as_str())
                    .collect();
                writer.count(values.len());
                for value in values {
                    writer.part(value.as_bytes());
                }
            }
            KeyParameter::Header(name) => {
                writer.tag(b'h');
                writer.part(name.as_bytes());
                let values: Vec<&[u8]> = input
                    .headers
                    .get_all(name.as_str())
                    .iter()
                    .map(|value| value.as_bytes())
                    .collect();
                writer.count(values.len());
                for value in values {
                    writer.part(value);
                }
            }
            // Every path variable is in the key already; a declared one adds nothing but is
            // kept so the declaration itself is visible in the key's shape.
            KeyParameter::Path(name) => {
                writer.tag(b'p');
                writer.part(name.as_bytes());
            }
        }
    }
    Arc::from(writer.0)
}

/// The key of a routed request.
pub fn for_request(
    stage: &StageCache,
    method: &MethodCache,
    view: &crate::request::RequestView<'_>,
) -> Arc<[u8]> {
    let path_parameters: Vec<(&str, &str)> = view.routed.path_parameters(view.path).collect();
    build(
        &KeyInput {
            api_id: &view.stage().api_id,
            stage: &view.stage().name,
            generation: stage.generation,
            verb: view.parts.method.as_str(),
            resource_path: &view.method().resource_path,
            path_parameters: &path_parameters,
            query: view.query,
            headers: &view.parts.headers,
        },
        &method.key_parameters,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(
        query: Option<&str>,
        headers: &[(&str, &str)],
        path_parameters: &[(&str, &str)],
        key_parameters: &[KeyParameter],
    ) -> Arc<[u8]> {
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                http::HeaderValue::from_str(value).expect("value"),
            );
        }
        build(
            &KeyInput {
                api_id: "abc",
                stage: "prod",
                generation: 0,
                verb: "GET",
                resource_path: "/pets/{id}",
                path_parameters,
                query,
                headers: &map,
            },
            key_parameters,
        )
    }

    #[test]
    fn parts_are_unambiguous() {
        let base = KeyInput {
            api_id: "ab",
            stage: "c",
            generation: 0,
            verb: "GET",
            resource_path: "/",
            path_parameters: &[],
            query: None,
            headers: &http::HeaderMap::new(),
        };
        let shifted = KeyInput {
            api_id: "a",
            stage: "bc",
            ..base
        };
        assert_ne!(build(&base, &[]), build(&shifted, &[]));
        let bumped = KeyInput {
            generation: 1,
            ..base
        };
        assert_ne!(build(&base, &[]), build(&bumped, &[]));
        // An absent parameter and an empty one differ.
        let declared = [KeyParameter::Query("q".into())];
        assert_ne!(
            key(None, &[], &[], &declared),
            key(Some("q="), &[], &[], &declared)
        );
    }

    fn token() -> impl Strategy<Value = String> {
        "[a-z0-9]{0,6}"
    }

    proptest! {
        /// A declared query parameter or header splits the cache; undeclared ones never do.
        #[test]
        fn key_parameters_split_and_others_do_not(
            declared_value_a in token(),
            declared_value_b in token(),
            other_value_a in token(),
            other_value_b in token(),
            header_a in token(),
            header_b in token(),
            other_header_a in token(),
            other_header_b in token(),
            id_a in token(),
            id_b in token(),
        ) {
            let declared = [
                KeyParameter::Query("page".into()),
                KeyParameter::Header("x-tenant".into()),
            ];
            let make = |page: &str, other: &str, tenant: &str, other_header: &str, id: &str| {
                let query = format!("page={page}&utm={other}");
                key(
                    Some(&query),
                    &[("x-tenant", tenant), ("x-trace", other_header)],
                    &[("id", id)],
                    &declared,
                )
            };
            let a = make(&declared_value_a, &other_value_a, &header_a, &other_header_a, &id_a);
            // Changing only undeclared parts never changes the key.
            let b = make(&declared_value_a, &other_value_b, &header_a, &other_header_b, &id_a);
            prop_assert_eq!(&a, &b);
            // Changing a declared part (or the path) changes it exactly when the value differs.
            let c = make(&declared_value_b, &other_value_a, &header_a, &other_header_a, &id_a);
            prop_assert_eq!(a == c, declared_value_a == declared_value_b);
            let d = make(&declared_value_a, &other_value_a, &header_b, &other_header_a, &id_a);
            prop_assert_eq!(a == d, header_a == header_b);
            let e = make(&declared_value_a, &other_value_a, &header_a, &other_header_a, &id_b);
            prop_assert_eq!(a == e, id_a == id_b);
        }
    }
}
