//! Identifiers: API Gateway's 10-character ids and per-request ids.

use base64::Engine as _;

/// A fresh id in API Gateway's shape: 10 characters of `[a-z0-9]`.
pub fn new_id() -> String {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let random = uuid::Uuid::new_v4().as_u128();
    (0..10)
        .map(|index| ALPHABET[((random >> (index * 6)) % 36) as usize] as char)
        .collect()
}

/// A request id (a UUID, as `x-amzn-RequestId`), the `x-amz-apigw-id`-style extended id, and
/// an X-Ray-shaped trace id, all from one random draw.
pub fn request_ids(epoch_seconds: i64) -> (String, String, String) {
    // This runs once per request: written without `format!` (which cost ~9k instructions per
    // request here, measured with callgrind; see bench/README.md).
    let uuid = uuid::Uuid::new_v4();
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
    }
}
