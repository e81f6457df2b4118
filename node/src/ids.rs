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
    let uuid = uuid::Uuid::new_v4();
    let bytes = uuid.as_bytes();
    let extended = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes[..12]);
    let trace = format!(
        "Root=1-{:08x}-{}",
        epoch_seconds as u32,
        hex_lower(&bytes[4..16])
    );
    (uuid.to_string(), extended, trace)
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
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
    }
}
