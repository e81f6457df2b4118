//! Admin access keys, with their secrets sealed before they enter the replicated state.
//!
//! Why sealed: SigV4 is a shared-secret scheme, so the origin must be able to recover each secret
//! (a hash would not do). The secrets travel through the Raft log, snapshots and every learner's
//! disk; sealing them with a cluster key kept outside that state (a file written by
//! `portico cluster init`) means a copied log or snapshot alone does not reveal them.
//!
//! Sealing is AES-256-GCM (`ring::aead`) with a fresh random 96-bit nonce per secret and the
//! access key id as associated data, so a sealed secret cannot be moved onto another key id.
//! `Debug` output never shows key material or plaintext.

use std::fmt;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// Length of a sealing key in bytes.
pub const SEALING_KEY_LEN: usize = 32;

/// The cluster's key for sealing admin secrets: 32 random bytes.
pub struct SealingKey([u8; SEALING_KEY_LEN]);

/// A secret sealed with a `SealingKey`: the nonce and the ciphertext with its 16-byte tag.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    pub nonce: [u8; NONCE_LEN],
    pub ciphertext: Vec<u8>,
}

// === impl SealingKey ===

impl SealingKey {
    /// A new random key from the operating system's generator.
    pub fn generate() -> SealingKey {
        let mut bytes = [0u8; SEALING_KEY_LEN];
        fill_random(&mut bytes);
        SealingKey(bytes)
    }

    /// A key from its 32 bytes (for tests and callers that hold the key elsewhere).
    pub fn from_bytes(bytes: [u8; SEALING_KEY_LEN]) -> SealingKey {
        SealingKey(bytes)
    }

    /// Writes the key as 64 hex digits and a newline to a new file with mode 0600.
    ///
    /// Refuses to overwrite an existing file: replacing the key would make every sealed secret
    /// in the cluster unreadable.
    pub fn to_file(&self, path: &Path) -> anyhow::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(path)
            .with_context(|| format!("creating sealing key file {}", path.display()))?;
        let mut text = hex::encode(self.0);
        text.push('\n');
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing sealing key file {}", path.display()))?;
        Ok(())
    }

    /// Reads a key file holding either 64 hex digits (surrounding whitespace allowed) or the 32
    /// raw bytes.
    pub fn from_file(path: &Path) -> anyhow::Result<SealingKey> {
        let contents = std::fs::read(path)
            .with_context(|| format!("reading sealing key file {}", path.display()))?;
        if let Ok(text) = std::str::from_utf8(&contents) {
            let text = text.trim();
            if text.len() == 2 * SEALING_KEY_LEN {
                let mut bytes = [0u8; SEALING_KEY_LEN];
                if hex::decode_to_slice(text, &mut bytes).is_ok() {
                    return Ok(SealingKey(bytes));
                }
            }
        }
        if let Ok(bytes) = <[u8; SEALING_KEY_LEN]>::try_from(contents.as_slice()) {
            return Ok(SealingKey(bytes));
        }
        bail!(
            "sealing key file {} must hold 64 hex digits or 32 raw bytes ({} bytes found)",
            path.display(),
            contents.len()
        )
    }

    /// Seals `secret` for `access_key_id`.
    pub fn seal(&self, access_key_id: &str, secret: &str) -> SealedSecret {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce);
        let mut ciphertext = secret.as_bytes().to_vec();
        // Sealing fails only when the input exceeds AES-GCM's limit of about 64 GiB.
        self.aead_key()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(access_key_id.as_bytes()),
                &mut ciphertext,
            )
            .expect("an admin secret is far below the AES-GCM input limit");
        SealedSecret { nonce, ciphertext }
    }

    /// The secret of an admin key from the replicated state, if the key is enabled and its
    /// sealed form opens with this key.
    pub fn open_admin_key(&self, key: portico_proto::AdminKey) -> Option<String> {
        if !key.enabled {
            return None;
        }
        let sealed = SealedSecret {
            nonce: key.nonce.as_slice().try_into().ok()?,
            ciphertext: key.sealed_secret,
        };
        self.open(&key.access_key_id, &sealed)
    }

    /// The secret, if `sealed` was sealed by this key for this access key id and is intact.
    pub fn open(&self, access_key_id: &str, sealed: &SealedSecret) -> Option<String> {
        let mut buffer = sealed.ciphertext.clone();
        let plaintext = self
            .aead_key()
            .open_in_place(
                Nonce::assume_unique_for_key(sealed.nonce),
                Aad::from(access_key_id.as_bytes()),
                &mut buffer,
            )
            .ok()?;
        String::from_utf8(plaintext.to_vec()).ok()
    }

    fn aead_key(&self) -> LessSafeKey {
        // 32 bytes is always a valid AES-256 key.
        let unbound = UnboundKey::new(&AES_256_GCM, &self.0).expect("32-byte AES-256 key");
        LessSafeKey::new(unbound)
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey(<redacted>)")
    }
}

impl Drop for SealingKey {
    fn drop(&mut self) {
        // Best effort: not guaranteed against the optimiser, but costs nothing.
        self.0 = [0u8; SEALING_KEY_LEN];
    }
}

// === impl SealedSecret ===

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSecret")
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

// === access keys ===

const KEY_ID_ALPHABET: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SECRET_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A new access key id and secret shaped like AWS's: `AKIA` and 16 uppercase letters or digits,
/// and 40 characters of base64's alphabet (about 240 bits).
pub fn generate_access_key() -> (String, String) {
    let mut access_key_id = String::from("AKIA");
    access_key_id.push_str(&random_string(KEY_ID_ALPHABET, 16));
    (access_key_id, random_string(SECRET_ALPHABET, 40))
}

/// A new IAM user id shaped like AWS's: `AIDA` and 17 uppercase letters or digits.
pub fn generate_user_id() -> String {
    let mut id = String::from("AIDA");
    id.push_str(&random_string(KEY_ID_ALPHABET, 17));
    id
}

const API_KEY_ALPHABET: &[u8; 62] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A new API key value shaped like AWS's generated ones: 40 characters of `[A-Za-z0-9]`
/// (about 238 bits).
pub fn generate_api_key_value() -> String {
    random_string(API_KEY_ALPHABET, 40)
}

/// `length` characters drawn uniformly from `alphabet` (rejection sampling avoids modulo bias).
fn random_string(alphabet: &[u8], length: usize) -> String {
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(length);
    let mut pool = [0u8; 64];
    while out.len() < length {
        fill_random(&mut pool);
        for &byte in &pool {
            if out.len() == length {
                break;
            }
            if usize::from(byte) < limit {
                out.push(char::from(alphabet[usize::from(byte) % alphabet.len()]));
            }
        }
    }
    out
}

fn fill_random(buffer: &mut [u8]) {
    // ring's generator reads getrandom(2); it fails only if the kernel cannot supply randomness,
    // and then no key may be made at all.
    SystemRandom::new()
        .fill(buffer)
        .expect("the operating system's random number generator failed");
}

/// Writes an access key as an AWS shared-credentials file (profile `portico`), so the AWS CLI
/// and SDKs can use it as it is (`AWS_SHARED_CREDENTIALS_FILE`, `--profile portico`).
pub fn write_credentials_file(
    path: &std::path::Path,
    access_key_id: &str,
    secret: &str,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
    writeln!(
        file,
        "[portico]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret}"
    )
    .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
}

/// Reads the first access key of an AWS shared-credentials file.
pub fn read_credentials_file(path: &std::path::Path) -> anyhow::Result<(String, String)> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
    let value = |name: &str| {
        text.lines().find_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == name).then(|| value.trim().to_string())
        })
    };
    match (value("aws_access_key_id"), value("aws_secret_access_key")) {
        (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => Ok((id, secret)),
        _ => Err(anyhow::anyhow!(
            "{}: no aws_access_key_id / aws_secret_access_key pair",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_round_trips() {
        let key = SealingKey::generate();
        let sealed = key.seal("AKIAEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        assert_eq!(
            key.open("AKIAEXAMPLE", &sealed).as_deref(),
            Some("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
        );
        assert_ne!(
            sealed.ciphertext,
            b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_vec()
        );
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let key = SealingKey::generate();
        let first = key.seal("AKIAEXAMPLE", "secret");
        let second = key.seal("AKIAEXAMPLE", "secret");
        assert_ne!(first.nonce, second.nonce);
        assert_ne!(first.ciphertext, second.ciphertext);
    }

    #[test]
    fn open_fails_for_another_key_id() {
        let key = SealingKey::generate();
        let sealed = key.seal("AKIAEXAMPLE", "secret");
        assert_eq!(key.open("AKIAOTHER", &sealed), None);
    }

    #[test]
    fn open_fails_for_tampered_ciphertext_tag_or_nonce() {
        let key = SealingKey::generate();
        let sealed = key.seal("AKIAEXAMPLE", "secret");
        for index in 0..sealed.ciphertext.len() {
            let mut tampered = sealed.clone();
            tampered.ciphertext[index] ^= 0x01;
            assert_eq!(key.open("AKIAEXAMPLE", &tampered), None, "byte {index}");
        }
        let mut tampered = sealed.clone();
        tampered.nonce[0] ^= 0x01;
        assert_eq!(key.open("AKIAEXAMPLE", &tampered), None);
        let mut truncated = sealed;
        truncated.ciphertext.pop();
        assert_eq!(key.open("AKIAEXAMPLE", &truncated), None);
    }

    #[test]
    fn open_fails_with_another_sealing_key() {
        let sealed = SealingKey::generate().seal("AKIAEXAMPLE", "secret");
        assert_eq!(SealingKey::generate().open("AKIAEXAMPLE", &sealed), None);
    }

    #[test]
    fn sealed_secret_survives_serde() {
        let key = SealingKey::generate();
        let sealed = key.seal("AKIAEXAMPLE", "secret");
        let json = serde_json::to_string(&sealed).expect("serialise");
        let back: SealedSecret = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, sealed);
        assert_eq!(key.open("AKIAEXAMPLE", &back).as_deref(), Some("secret"));
    }

    #[test]
    fn key_file_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sealing.key");
        let key = SealingKey::generate();
        key.to_file(&path).expect("write key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let loaded = SealingKey::from_file(&path).expect("read key");
        let sealed = key.seal("AKIAEXAMPLE", "secret");
        assert_eq!(
            loaded.open("AKIAEXAMPLE", &sealed).as_deref(),
            Some("secret")
        );
        // Never clobber an existing key.
        let again = SealingKey::generate().to_file(&path);
        assert!(again.is_err());
        assert!(format!("{:#}", again.unwrap_err()).contains("sealing.key"));
    }

    #[test]
    fn key_file_accepts_raw_bytes_and_names_the_file_on_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let raw = dir.path().join("raw.key");
        std::fs::write(&raw, [7u8; 32]).expect("write raw");
        let key = SealingKey::from_file(&raw).expect("raw key");
        let sealed = SealingKey::from_bytes([7u8; 32]).seal("AKIAEXAMPLE", "secret");
        assert_eq!(key.open("AKIAEXAMPLE", &sealed).as_deref(), Some("secret"));

        let bad = dir.path().join("bad.key");
        std::fs::write(&bad, "not a key").expect("write bad");
        let error = format!("{:#}", SealingKey::from_file(&bad).unwrap_err());
        assert!(error.contains("bad.key"), "{error}");

        let missing = dir.path().join("missing.key");
        let error = format!("{:#}", SealingKey::from_file(&missing).unwrap_err());
        assert!(error.contains("missing.key"), "{error}");
    }

    #[test]
    fn debug_output_hides_key_material() {
        let key = SealingKey::from_bytes([0xAB; 32]);
        let shown = format!("{key:?}");
        assert!(!shown.to_lowercase().contains("ab"), "{shown}");
        let sealed = key.seal("AKIAEXAMPLE", "secret");
        let shown = format!("{sealed:?}");
        assert!(shown.contains("ciphertext_len"), "{shown}");
    }

    #[test]
    fn access_keys_look_like_aws_keys() {
        let (access_key_id, secret) = generate_access_key();
        assert_eq!(access_key_id.len(), 20);
        assert!(access_key_id.starts_with("AKIA"));
        assert!(
            access_key_id
                .bytes()
                .all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit())
        );
        assert_eq!(secret.len(), 40);
        assert!(
            secret
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'+' || byte == b'/')
        );
        assert_ne!(generate_access_key(), generate_access_key());
    }
}
