//! The request's host, validated once: what every later stage (API selection, gateway
//! responses, `context.domainName`, proxy events, cache invalidation) sees.
//!
//! RFC 9112 §3.2 decides which host a request names and when it names none acceptably: an
//! HTTP/1.1 request without `Host`, or with more than one, or with a malformed one, is answered
//! 400; an absolute-form request target's authority wins over `Host` (§3.2.2); HTTP/2's
//! `:authority` likewise, and a `Host` that contradicts it is refused (RFC 9113 §8.3.1).
//! Malformed means outside RFC 3986's `host [":" port]`: userinfo (`a@b.execute-api...`), spaces,
//! an unclosed IPv6 literal, a port that is not digits; and, stricter than the RFC, a name with
//! sub-delimiters (`,;=!$&'()*+`), which no DNS name has and which would let a folded pair of
//! Hosts (`a.x,b.x`) pass as one. Host names are case-insensitive, so the
//! host is lower-cased here once, and `ABC.execute-api...` finds API `abc`.

use std::borrow::Cow;

use http::request::Parts;

/// Why a request names no acceptable host: the client-visible message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    Missing,
    Repeated,
    Malformed,
    Conflicting,
}

impl HostError {
    pub fn message(self) -> &'static str {
        match self {
            HostError::Missing => "Missing Host header",
            HostError::Repeated => "Multiple Host headers",
            HostError::Malformed => "Invalid Host header",
            HostError::Conflicting => "Host header does not match the request authority",
        }
    }
}

/// The host the request names (`None`: an HTTP/1.0 request without one), lower-cased, port
/// kept.
pub fn request_host(parts: &Parts) -> Result<Option<Cow<'_, str>>, HostError> {
    let mut values = parts.headers.get_all(http::header::HOST).iter();
    let header = values.next();
    if values.next().is_some() {
        return Err(HostError::Repeated);
    }
    let header = header
        .map(|value| value.to_str().map_err(|_| HostError::Malformed))
        .transpose()?;
    if let Some(header) = header
        && !is_valid_authority(header)
    {
        return Err(HostError::Malformed);
    }
    let authority = parts.uri.authority().map(|authority| authority.as_str());
    if let Some(authority) = authority
        && !is_valid_authority(authority)
    {
        return Err(HostError::Malformed);
    }
    let host = match (parts.version, authority, header) {
        // HTTP/2 and later carry the authority as a pseudo-header; Host is optional there but
        // must not name another host.
        (version, Some(authority), header) if version >= http::Version::HTTP_2 => {
            if header.is_some_and(|header| !header.eq_ignore_ascii_case(authority)) {
                return Err(HostError::Conflicting);
            }
            Some(authority)
        }
        (version, authority, header) if version >= http::Version::HTTP_2 => authority.or(header),
        // HTTP/1.1 requires Host even with an absolute-form target, whose authority then wins.
        (http::Version::HTTP_11, _, None) => return Err(HostError::Missing),
        (_, Some(authority), _) => Some(authority),
        (_, None, header) => header,
    };
    Ok(host.map(lower_case))
}

fn lower_case(host: &str) -> Cow<'_, str> {
    if host.bytes().any(|byte| byte.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// RFC 3986 `host [":" port]`: an IP literal in brackets, or a reg-name of unreserved
/// characters and percent-encoded octets (which covers IPv4 addresses; sub-delims refused) of
/// at most 255 bytes, then an optional port of up to five digits. No userinfo, no empty host.
pub fn is_valid_authority(text: &str) -> bool {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let Some((literal, after)) = rest.split_once(']') else {
            return false;
        };
        let literal_ok = !literal.is_empty()
            && literal.contains(':')
            && literal
                .bytes()
                .all(|byte| byte.is_ascii_hexdigit() || byte == b':' || byte == b'.');
        if !literal_ok {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("[]", Some(port)),
                None => return false,
            },
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if let Some(port) = port
        && (port.len() > 5 || !port.bytes().all(|byte| byte.is_ascii_digit()))
    {
        return false;
    }
    host == "[]" || is_reg_name(host)
}

fn is_reg_name(host: &str) -> bool {
    let bytes = host.as_bytes();
    if bytes.is_empty() || bytes.len() > 255 {
        return false;
    }
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte == b'%' {
            let hex = bytes.get(index + 1..index + 3);
            if !hex.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            index += 3;
            continue;
        }
        let allowed = byte.is_ascii_alphanumeric() || b"-._~".contains(&byte);
        if !allowed {
            return false;
        }
        index += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(version: http::Version, target: &str, hosts: &[&str]) -> Parts {
        let mut builder = http::Request::get(target).version(version);
        for host in hosts {
            builder = builder.header(http::header::HOST, *host);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn host(
        version: http::Version,
        target: &str,
        hosts: &[&str],
    ) -> Result<Option<String>, HostError> {
        request_host(&parts(version, target, hosts)).map(|host| host.map(Cow::into_owned))
    }

    const H11: http::Version = http::Version::HTTP_11;

    #[test]
    fn the_rfc_9112_cases() {
        assert_eq!(host(H11, "/p", &[]), Err(HostError::Missing));
        assert_eq!(host(H11, "/p", &["a.x", "b.x"]), Err(HostError::Repeated));
        assert_eq!(host(H11, "/p", &["a.x", "a.x"]), Err(HostError::Repeated));
        assert_eq!(
            host(H11, "http://abc.execute-api.x/p", &["def.execute-api.x"]),
            Ok(Some("abc.execute-api.x".into()))
        );
        // Absolute form does not excuse a missing Host in HTTP/1.1.
        assert_eq!(
            host(H11, "http://abc.execute-api.x/p", &[]),
            Err(HostError::Missing)
        );
        assert_eq!(host(http::Version::HTTP_10, "/p", &[]), Ok(None));
        assert_eq!(
            host(http::Version::HTTP_10, "/p", &["Old.X"]),
            Ok(Some("old.x".into()))
        );
    }

    #[test]
    fn hosts_are_lower_cased_and_ports_kept() {
        assert_eq!(
            host(H11, "/p", &["ABC.Execute-Api.Example.COM:8443"]),
            Ok(Some("abc.execute-api.example.com:8443".into()))
        );
        assert_eq!(host(H11, "/p", &["[::1]:80"]), Ok(Some("[::1]:80".into())));
    }

    #[test]
    fn malformed_hosts_are_refused() {
        for bad in [
            "a@b.execute-api.x",
            "user:pw@b.x",
            "",
            "a b",
            "a.x:port",
            "a.x:123456",
            "[::1",
            "[::1]x",
            "[]",
            "[zz]",
            ":80",
            "a:b:c",
            "a.x/",
            "a%zz",
            "a\\b",
            "a.execute-api.x,b.execute-api.x",
            "a.x;b",
            "a.x=",
        ] {
            assert_eq!(
                host(H11, "/p", &[bad]),
                Err(HostError::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            host(H11, "http://a@b.execute-api.x/p", &["b.execute-api.x"]),
            Err(HostError::Malformed)
        );
        for good in [
            "a.x",
            "a.x:",
            "127.0.0.1:8080",
            "[2001:db8::1]",
            "xn--bcher-kva.x",
            "a%2Db",
        ] {
            assert!(host(H11, "/p", &[good]).is_ok(), "{good:?}");
        }
        let long = "a".repeat(256);
        assert_eq!(host(H11, "/p", &[&long]), Err(HostError::Malformed));
    }

    #[test]
    fn http2_authority_wins_and_must_agree_with_host() {
        let h2 = http::Version::HTTP_2;
        assert_eq!(
            host(h2, "https://abc.execute-api.x/p", &[]),
            Ok(Some("abc.execute-api.x".into()))
        );
        assert_eq!(
            host(h2, "https://abc.execute-api.x/p", &["ABC.execute-api.x"]),
            Ok(Some("abc.execute-api.x".into()))
        );
        assert_eq!(
            host(h2, "https://abc.execute-api.x/p", &["def.execute-api.x"]),
            Err(HostError::Conflicting)
        );
        assert_eq!(host(h2, "/p", &["abc.x"]), Ok(Some("abc.x".into())));
        assert_eq!(host(h2, "/p", &[]), Ok(None));
    }
}
