//! JSON pointers (RFC 6901) and `$ref` fragments, kept apart because every problem the importer
//! reports is addressed by one, and escaping mistakes would send users to the wrong node.

use percent_encoding::percent_decode_str;

/// Appends one reference token to a pointer, escaping `~` and `/`.
pub(crate) fn child(pointer: &str, token: &str) -> String {
    let mut out = String::with_capacity(pointer.len() + token.len() + 1);
    out.push_str(pointer);
    out.push('/');
    for ch in token.chars() {
        match ch {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            other => out.push(other),
        }
    }
    out
}

/// Appends an array index to a pointer.
pub(crate) fn index(pointer: &str, index: usize) -> String {
    format!("{pointer}/{index}")
}

/// Unescapes one reference token.
pub(crate) fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Turns a local `$ref` (`#/a/b`) into the JSON pointer it denotes, percent-decoding the URI
/// fragment as OpenAPI requires. `None` for anything that is not a local reference.
pub(crate) fn local_ref_pointer(reference: &str) -> Option<String> {
    let fragment = reference.strip_prefix('#')?;
    if !(fragment.is_empty() || fragment.starts_with('/')) {
        return None;
    }
    Some(
        percent_decode_str(fragment)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_tokens() {
        assert_eq!(child("/paths", "/pets/{id}"), "/paths/~1pets~1{id}");
        assert_eq!(child("", "a~b"), "/a~0b");
        assert_eq!(unescape("~1pets~0x"), "/pets~x");
        assert_eq!(
            local_ref_pointer("#/paths/~1a%7Bb%7D").as_deref(),
            Some("/paths/~1a{b}")
        );
        assert_eq!(local_ref_pointer("other.json#/a"), None);
    }
}
