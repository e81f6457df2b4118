//! `portico::sigv4::verify` against the `aws-sigv4` crate as an oracle: random requests
//! signed the way the AWS SDKs sign them must verify, and any single-byte change must not.
//! Every check also runs `verify_with_signing_key` with the derived signing key (what edges
//! hold for AWS_IAM) and requires the same answer.

use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign as oracle_sign,
};
use aws_sigv4::sign::v4;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, HeaderValue};
use portico::sigv4::{
    AuthError, SignedRequest, Verified, derive_signing_key, sign, verify, verify_with_signing_key,
};
use proptest::prelude::*;

const ACCESS_KEY_ID: &str = "AKIAPORTICOTEST00001";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SERVICE: &str = "apigateway";
const ENDPOINT: &str = "https://apigateway.eu-west-1.amazonaws.com";
const HOST: &str = "apigateway.eu-west-1.amazonaws.com";

/// A request as a client builds it, before signing.
#[derive(Debug, Clone)]
struct Draft {
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    region: String,
    signed_at: i64,
}

/// The request as the server receives it after the oracle signed it.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Draft {
    fn uri(&self) -> String {
        match &self.query {
            Some(query) => format!("{ENDPOINT}{}?{query}", self.path),
            None => format!("{ENDPOINT}{}", self.path),
        }
    }

    /// Signs with aws-sigv4's defaults (double-encoded, normalised path; SHA-256 payload hash),
    /// or presigns into the query when `expires` is set.
    fn sign_with_oracle(&self, expires: Option<Duration>) -> Received {
        let identity = Credentials::new(ACCESS_KEY_ID, SECRET, None, None, "test").into();
        let mut settings = SigningSettings::default();
        if let Some(expires) = expires {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(expires);
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SERVICE)
            .time(UNIX_EPOCH + Duration::from_secs(self.signed_at as u64))
            .settings(settings)
            .build()
            .expect("signing params")
            .into();
        let uri = self.uri();
        let signable = SignableRequest::new(
            &self.method,
            uri.as_str(),
            self.headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
            SignableBody::Bytes(&self.body),
        )
        .expect("signable request");
        let (instructions, _signature) = oracle_sign(signable, &params)
            .expect("oracle signs")
            .into_parts();

        let mut request = http::Request::builder()
            .method(self.method.as_str())
            .uri(uri.as_str());
        // The HTTP client adds Host; aws-sigv4 signs it from the URI.
        request = request.header("host", HOST);
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let mut request = request.body(()).expect("request");
        instructions.apply_to_request_http1x(&mut request);
        Received {
            method: self.method.clone(),
            path: request.uri().path().to_owned(),
            query: request.uri().query().map(str::to_owned),
            headers: request.headers().clone(),
            body: self.body.clone(),
        }
    }
}

impl Received {
    fn verify_at(&self, now: i64) -> Result<Verified, AuthError> {
        let request = SignedRequest {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &self.headers,
            body: &self.body,
        };
        let region_allowed = |region: &str| region == "eu-west-1" || region == "us-east-1";
        let with_secret = verify(&request, now, SERVICE, &region_allowed, &|access_key_id| {
            (access_key_id == ACCESS_KEY_ID).then(|| SECRET.to_owned())
        });
        // The edge's way (AWS_IAM): the per-day signing key derived from the secret must give
        // exactly the same answer, for every request and tampering the properties generate.
        let with_derived_key = verify_with_signing_key(
            &request,
            now,
            SERVICE,
            &region_allowed,
            &|access_key_id, date, region| {
                (access_key_id == ACCESS_KEY_ID)
                    .then(|| derive_signing_key(SECRET, date, region, SERVICE))
            },
        );
        assert_eq!(
            with_derived_key, with_secret,
            "derived-key verification differs"
        );
        with_secret
    }
}

// === generators ===

/// Path pieces as clients put them on the wire: unreserved characters, sub-delimiters the URI
/// grammar allows bare, and percent-encoded bytes (including UTF-8 and an encoded slash).
const PATH_PIECES: &[&str] = &[
    "a",
    "Z",
    "0",
    "9",
    "-",
    "_",
    "~",
    ".",
    "!",
    "$",
    "&",
    "'",
    "(",
    ")",
    "*",
    "+",
    ",",
    ";",
    "=",
    ":",
    "@",
    "%20",
    "%2F",
    "%25",
    "%E1%88%B4",
    "%7B",
    "restapis",
    "GET",
    "x1y2",
];
const QUERY_PIECES: &[&str] = &[
    "a",
    "Z",
    "0",
    "-",
    "_",
    "~",
    ".",
    "+",
    "%20",
    "%2B",
    "%26",
    "%3D",
    "%2F",
    "/",
    "?",
    ":",
    "@",
    "!",
    "$",
    "'",
    "(",
    ")",
    "*",
    ",",
    ";",
    "%E1%88%B4",
    "mode",
    "import",
];

fn piece_string(pieces: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(pieces), 0..max).prop_map(|parts| parts.concat())
}

fn segment(with_dots: bool) -> BoxedStrategy<String> {
    let plain = piece_string(PATH_PIECES, 6);
    if with_dots {
        prop_oneof![
            6 => plain,
            1 => Just(".".to_owned()),
            1 => Just("..".to_owned()),
        ]
        .boxed()
    } else {
        // A segment of dots alone would be normalised away, and so could a change next to it.
        plain
            .prop_filter("not a dot segment", |text| {
                !text.is_empty() && text.bytes().any(|byte| byte != b'.')
            })
            .boxed()
    }
}

fn path(with_dots: bool) -> impl Strategy<Value = String> {
    (
        prop::collection::vec(segment(with_dots), 0..5),
        any::<bool>(),
    )
        .prop_map(|(segments, trailing_slash)| {
            let mut path = format!("/{}", segments.join("/"));
            if trailing_slash && !segments.is_empty() {
                path.push('/');
            }
            path
        })
}

fn query() -> impl Strategy<Value = Option<String>> {
    let pair = (
        piece_string(QUERY_PIECES, 4),
        prop::option::of(piece_string(QUERY_PIECES, 5)),
    )
        .prop_map(|(name, value)| match value {
            Some(value) => format!("{name}={value}"),
            None => name,
        });
    prop::option::of(prop::collection::vec(pair, 1..4).prop_map(|pairs| pairs.join("&")))
        .prop_map(|query| query.filter(|text| !text.is_empty()))
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        Just("accept".to_owned()),
        Just("content-type".to_owned()),
        Just("x-portico-test".to_owned()),
        "x-[a-z]{1,6}-[a-z]{1,4}".prop_filter("not a header the signer sets", |name| {
            name != "x-amz-date"
        }),
    ];
    // Visible ASCII and spaces, with runs of spaces and spaces at the ends.
    let value = "[ -~]{0,16}";
    prop::collection::vec((name, value), 0..4)
}

fn method() -> impl Strategy<Value = String> {
    prop::sample::select(&["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"][..])
        .prop_map(str::to_owned)
}

fn draft(with_dots: bool) -> impl Strategy<Value = Draft> {
    (
        method(),
        path(with_dots),
        query(),
        headers(),
        prop::collection::vec(any::<u8>(), 0..48),
        prop::sample::select(&["eu-west-1", "us-east-1"][..]),
        // 2001-09-09 .. 2096-10-02
        1_000_000_000i64..4_000_000_000,
    )
        .prop_map(
            |(method, path, query, headers, body, region, signed_at)| Draft {
                method,
                path,
                query,
                headers,
                body,
                region: region.to_owned(),
                signed_at,
            },
        )
}

/// Positions of ASCII letters and digits that are not the two hex digits after a `%`, so that
/// changing one changes the decoded text (`%4a` and `%4A` decode alike).
fn mutable_positions(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut positions = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            index += 3;
            continue;
        }
        if bytes[index].is_ascii_alphanumeric() {
            positions.push(index);
        }
        index += 1;
    }
    positions
}

/// Changes one byte of `text` (a letter or digit outside escapes) or appends one.
fn change_one_byte(text: &str, pick: usize) -> String {
    let positions = mutable_positions(text);
    if positions.is_empty() {
        return format!("{text}a");
    }
    let position = positions[pick % positions.len()];
    let mut bytes = text.as_bytes().to_vec();
    bytes[position] = if bytes[position] == b'q' { b'r' } else { b'q' };
    String::from_utf8(bytes).expect("ASCII change keeps UTF-8")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn oracle_signed_requests_verify(draft in draft(true)) {
        let received = draft.sign_with_oracle(None);
        let verified = received.verify_at(draft.signed_at);
        prop_assert_eq!(
            verified,
            Ok(Verified {
                access_key_id: ACCESS_KEY_ID.to_owned(),
                region: draft.region.clone(),
                service: SERVICE.to_owned(),
            }),
            "request: {:?}", received
        );
    }

    #[test]
    fn our_signer_matches_the_oracle(draft in draft(true)) {
        let received = draft.sign_with_oracle(None);
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static(HOST));
        for (name, value) in &draft.headers {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        let uri: http::Uri = draft.uri().parse().expect("uri");
        sign(
            &draft.method, &uri, &mut headers, &draft.body, ACCESS_KEY_ID, SECRET,
            &draft.region, SERVICE, draft.signed_at,
        );
        prop_assert_eq!(headers.get(AUTHORIZATION), received.headers.get(AUTHORIZATION));
    }

    #[test]
    fn any_single_byte_change_is_refused(draft in draft(false), pick in any::<usize>(), which in 0u8..5) {
        let received = draft.sign_with_oracle(None);
        prop_assert!(received.verify_at(draft.signed_at).is_ok());
        let mut tampered = received.clone();
        match which {
            0 => {
                if tampered.body.is_empty() {
                    tampered.body.push(b'x');
                } else {
                    let index = pick % tampered.body.len();
                    tampered.body[index] ^= 0x01;
                }
            }
            1 => {
                // A signed header's value (host when the draft has none of its own).
                let name = draft
                    .headers
                    .first()
                    .map(|(name, _)| name.clone())
                    .unwrap_or_else(|| "host".to_owned());
                let old = tampered.headers.get(name.as_str()).expect("signed header").to_str().expect("ascii").to_owned();
                let new = change_one_byte(&old, pick);
                tampered.headers.insert(
                    HeaderName::from_bytes(name.as_bytes()).expect("name"),
                    HeaderValue::from_str(&new).expect("value"),
                );
            }
            2 => tampered.path = change_one_byte(&tampered.path, pick),
            3 => {
                tampered.query = Some(match &tampered.query {
                    Some(query) => change_one_byte(query, pick),
                    None => "a".to_owned(),
                });
            }
            _ => {
                let old = tampered.headers.get(AUTHORIZATION).expect("signed").to_str().expect("ascii").to_owned();
                let at = old.len() - 1 - pick % 64;
                let mut bytes = old.into_bytes();
                bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
                tampered.headers.insert(
                    AUTHORIZATION,
                    HeaderValue::from_bytes(&bytes).expect("value"),
                );
            }
        }
        let outcome = tampered.verify_at(draft.signed_at);
        prop_assert_eq!(outcome, Err(AuthError::SignatureMismatch), "change {} to {:?}", which, tampered);
    }

    #[test]
    fn six_minutes_off_is_stale_and_four_passes(draft in draft(true), later in any::<bool>()) {
        let received = draft.sign_with_oracle(None);
        let direction = if later { 1 } else { -1 };
        prop_assert!(received.verify_at(draft.signed_at + direction * 240).is_ok());
        let stale = received.verify_at(draft.signed_at + direction * 360);
        prop_assert!(
            matches!(stale, Err(AuthError::Stale { skew_seconds, .. }) if skew_seconds == direction * 360),
            "{:?}", stale
        );
    }

    #[test]
    fn presigned_requests_verify_until_they_expire(draft in draft(true), expires in 60u64..86_400) {
        let received = draft.sign_with_oracle(Some(Duration::from_secs(expires)));
        prop_assert!(received.headers.get(AUTHORIZATION).is_none());
        let expires = expires as i64;
        prop_assert!(received.verify_at(draft.signed_at).is_ok(), "{:?}", received);
        prop_assert!(received.verify_at(draft.signed_at + expires).is_ok());
        let expired = received.verify_at(draft.signed_at + expires + 1);
        prop_assert!(matches!(expired, Err(AuthError::Stale { .. })), "{:?}", expired);
        let early = received.verify_at(draft.signed_at - 360);
        prop_assert!(matches!(early, Err(AuthError::Stale { .. })), "{:?}", early);
    }
}

#[test]
fn presigned_signature_change_is_refused() {
    let draft = Draft {
        method: "GET".to_owned(),
        path: "/restapis".to_owned(),
        query: Some("limit=25".to_owned()),
        headers: vec![],
        body: vec![],
        region: "eu-west-1".to_owned(),
        signed_at: 1_700_000_000,
    };
    let received = draft.sign_with_oracle(Some(Duration::from_secs(900)));
    assert!(received.verify_at(draft.signed_at).is_ok());
    let query = received.query.clone().expect("presigned query");
    let position = query.find("X-Amz-Signature=").expect("signature param") + 16;
    let mut bytes = query.into_bytes();
    bytes[position] = if bytes[position] == b'0' { b'1' } else { b'0' };
    let mut tampered = received;
    tampered.query = Some(String::from_utf8(bytes).expect("ascii"));
    assert_eq!(
        tampered.verify_at(draft.signed_at),
        Err(AuthError::SignatureMismatch)
    );
}

#[test]
fn our_signature_is_accepted_by_our_verifier_at_the_edges_of_the_window() {
    let mut headers = HeaderMap::new();
    headers.insert("accept", HeaderValue::from_static("application/json"));
    let uri: http::Uri = "http://localhost:9000/restapis?limit=5"
        .parse()
        .expect("uri");
    let at = 1_800_000_000;
    sign(
        "GET",
        &uri,
        &mut headers,
        b"",
        ACCESS_KEY_ID,
        SECRET,
        "eu-west-1",
        SERVICE,
        at,
    );
    assert_eq!(
        headers.get("host"),
        Some(&HeaderValue::from_static("localhost:9000"))
    );
    let received = Received {
        method: "GET".to_owned(),
        path: "/restapis".to_owned(),
        query: Some("limit=5".to_owned()),
        headers,
        body: vec![],
    };
    for offset in [-300, 0, 300] {
        assert!(received.verify_at(at + offset).is_ok(), "{offset}");
    }
}
