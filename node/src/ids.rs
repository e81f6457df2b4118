//! Identifiers: API Gateway's 10-character ids and per-request ids.

use base64::Engine as _;
use http::HeaderValue;

/// A fresh id in API Gateway's shape: 10 characters of `[a-z0-9]`.
pub fn new_id() -> String {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let random = uuid::Uuid::new_v4().as_u128();
    (0..10)
        .map(|index| ALPHABET[((random >> (index * 6)) % 36) as usize] as char)
        .collect()
}

/// 128 random bits from this thread's generator: xoshiro256** seeded once per thread from the
/// operating system. `Uuid::new_v4` asks the kernel (`getrandom`) on every call, one syscall
/// per request; request ids need uniqueness, not secrecy, and 256 bits of seed per thread make
/// two threads' sequences overlap with negligible probability.
fn random_u128() -> u128 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<Option<[u64; 4]>> = const { Cell::new(None) };
    }
    STATE.with(|cell| {
        let mut state = cell.get().unwrap_or_else(seed);
        let high = next(&mut state);
        let low = next(&mut state);
        cell.set(Some(state));
        (u128::from(high) << 64) | u128::from(low)
    })
}

fn seed() -> [u64; 4] {
    let mut bytes = [0u8; 32];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err() {
        // No OS randomness: fall back on the clock and the thread, still distinct per thread.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or(0);
        let thread = format!("{:?}", std::thread::current().id());
        bytes[..16].copy_from_slice(&nanos.to_le_bytes());
        for (index, byte) in thread.bytes().enumerate() {
            bytes[16 + index % 16] ^= byte;
        }
    }
    let mut state = [0u64; 4];
    for (word, chunk) in state.iter_mut().zip(bytes.chunks_exact(8)) {
        *word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
    }
    // xoshiro's state must not be all zero.
    if state == [0; 4] {
        state[0] = 0x9e37_79b9_7f4a_7c15;
    }
    state
}

/// xoshiro256** (Blackman and Vigna), one step.
fn next(s: &mut [u64; 4]) -> u64 {
    let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
    let t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s[3].rotate_left(45);
    result
}

/// A request id (a UUID, as `x-amzn-RequestId`), the `x-amz-apigw-id`-style extended id, and
/// an X-Ray-shaped trace id, all from one random draw.
pub fn request_ids(epoch_seconds: i64) -> (String, String, String) {
    // This runs once per request: written without `format!` (which cost ~9k instructions per
    // request here, measured with callgrind; see bench/README.md), and without a syscall.
    let uuid = uuid::Builder::from_random_bytes(random_u128().to_le_bytes()).into_uuid();
    let bytes = uuid.as_bytes();
    let extended = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes[..12]);
    let mut trace = String::with_capacity(TRACE_ID_LEN);
    trace.push_str("Root=1-");
    push_hex_lower(&mut trace, &(epoch_seconds as u32).to_be_bytes());
    trace.push('-');
    push_hex_lower(&mut trace, &bytes[4..16]);
    let request_id = uuid
        .hyphenated()
        .encode_lower(&mut uuid::Uuid::encode_buffer())
        .to_string();
    (request_id, extended, trace)
}

/// A request's three ids as header values, built once: the response headers, the
/// integration's `X-Amzn-Trace-Id` and every `&str` reader (events, logs, templates) share
/// these bytes instead of copying a `String` into a fresh `HeaderValue` each time.
pub struct RequestIds {
    pub request_id: HeaderValue,
    pub extended: HeaderValue,
    pub trace: HeaderValue,
}

impl RequestIds {
    pub fn new(epoch_seconds: i64) -> Self {
        let (request_id, extended, trace) = request_ids(epoch_seconds);
        RequestIds {
            request_id: header_value(request_id),
            extended: header_value(extended),
            trace: header_value(trace),
        }
    }

    pub fn request_id(&self) -> &str {
        self.request_id.to_str().unwrap_or_default()
    }

    pub fn extended(&self) -> &str {
        self.extended.to_str().unwrap_or_default()
    }

    pub fn trace(&self) -> &str {
        self.trace.to_str().unwrap_or_default()
    }
}

/// The ids are hex, base64url and `Root=1-…`: always valid header values. `Bytes::from` takes
/// the `String`'s buffer without copying it.
fn header_value(text: String) -> HeaderValue {
    HeaderValue::from_maybe_shared(bytes::Bytes::from(text))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Root=1-` + 8 hex digits + `-` + 24 hex digits.
const TRACE_ID_LEN: usize = 7 + 8 + 1 + 24;

fn push_hex_lower(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_api_gateway_shape() {
        for _ in 0..100 {
            assert!(portico_proto::is_valid_id(&new_id()));
        }
        let (request_id, extended, trace) = request_ids(1_700_000_000);
        assert_eq!(request_id.len(), 36);
        assert_eq!(extended.len(), 16);
        assert!(trace.starts_with("Root=1-6553f100-"));
        assert_eq!(trace.len(), "Root=1-6553f100-".len() + 24);
        assert_eq!(trace.len(), TRACE_ID_LEN);
        // The same shapes the `format!`-based encoding produced.
        let uuid = uuid::Uuid::parse_str(&request_id).unwrap();
        assert_eq!(request_id, uuid.to_string());
        let tail: String = uuid.as_bytes()[4..16]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(trace, format!("Root=1-{:08x}-{tail}", 1_700_000_000u32));
        // Version 4, RFC 4122 variant, as `Uuid::new_v4` made them.
        assert_eq!(uuid.get_version_num(), 4);
        assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122);
    }

    #[test]
    fn header_values_carry_the_same_ids() {
        let ids = RequestIds::new(1_700_000_000);
        assert_eq!(ids.request_id().len(), 36);
        assert_eq!(ids.request_id.as_bytes(), ids.request_id().as_bytes());
        assert_eq!(ids.extended().len(), 16);
        assert!(
            ids.trace().starts_with("Root=1-6553f100-"),
            "{}",
            ids.trace()
        );
        assert_eq!(ids.trace().len(), TRACE_ID_LEN);
    }

    #[test]
    fn request_ids_are_unique_across_threads() {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    (0..10_000)
                        .map(|_| request_ids(0).0)
                        .collect::<Vec<String>>()
                })
            })
            .collect();
        let mut all = std::collections::HashSet::new();
        for thread in threads {
            for id in thread.join().unwrap() {
                assert!(all.insert(id), "a request id repeated");
            }
        }
        assert_eq!(all.len(), 40_000);
    }

    #[test]
    fn xoshiro_matches_its_reference_sequence() {
        // The first outputs of xoshiro256** from state [1, 2, 3, 4] (reference C implementation).
        let mut state = [1, 2, 3, 4];
        let outputs: Vec<u64> = (0..3).map(|_| next(&mut state)).collect();
        assert_eq!(outputs, [11520, 0, 1509978240]);
    }
}
