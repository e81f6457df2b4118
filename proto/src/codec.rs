//! The one place where bytes become values and back, for the wire and for disk.
//!
//! Every frame and stored record starts with a format version byte, so that a node of the next
//! release can tell an old record from a new one and convert it, and so that bincode (pinned,
//! and marked unmaintained upstream) can be swapped for another serde format in this module
//! alone.

use serde::{Serialize, de::DeserializeOwned};

/// The format of everything this release writes.
pub const FORMAT_VERSION: u8 = 1;

/// No record a node reads may claim to be larger than this; a corrupt length prefix inside a
/// frame must not make the decoder reserve gigabytes.
pub const MAX_RECORD_BYTES: usize = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("empty record")]
    Empty,
    #[error(
        "record format version {found} is not supported (this node reads version {FORMAT_VERSION})"
    )]
    UnsupportedVersion { found: u8 },
    #[error("record of {len} bytes exceeds the limit of {MAX_RECORD_BYTES} bytes")]
    TooLarge { len: usize },
    #[error("cannot encode: {0}")]
    Encode(String),
    #[error("cannot decode: {0}")]
    Decode(String),
    #[error("{trailing} trailing bytes after the record")]
    Trailing { trailing: usize },
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_RECORD_BYTES>()
}

/// Encodes `value` behind the format version byte.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![FORMAT_VERSION];
    bincode::serde::encode_into_std_write(value, &mut out, config())
        .map_err(|error| CodecError::Encode(error.to_string()))?;
    Ok(out)
}

/// Decodes a record written by [`encode`]; refuses unknown versions and trailing garbage.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(CodecError::UnsupportedVersion { found: version });
    }
    if body.len() > MAX_RECORD_BYTES {
        return Err(CodecError::TooLarge { len: body.len() });
    }
    let (value, read) = bincode::serde::decode_from_slice(body, config())
        .map_err(|error| CodecError::Decode(error.to_string()))?;
    if read != body.len() {
        return Err(CodecError::Trailing {
            trailing: body.len() - read,
        });
    }
    Ok(value)
}
