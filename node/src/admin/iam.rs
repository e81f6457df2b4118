//! Signing keys for AWS_IAM: what origins (and `dev`) derive from the sealed IAM secrets so that
//! the data plane verifies SigV4 without ever holding a secret.
//!
//! For every `Active` access key, every UTC day of yesterday, today and tomorrow (a request may
//! be signed up to 5 minutes across midnight from the verifier's clock, and a set stays good
//! for a day after it was derived), and every accepted signing region:
//! `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), "execute-api"), "aws4_request")`.
//! A stolen set verifies (and forges) `execute-api` requests of those days and regions only.

use portico_proto::GatewayState;
use portico_proto::iam::{AccessKeyStatus, DerivedSigningKey, SigningKeySet};

use super::secrets::{SealedSecret, SealingKey};
use crate::authorize::iam::SERVICE;

const DAY_SECONDS: i64 = 86_400;

/// The UTC days (`YYYYMMDD`) a set derived at `now_epoch_s` covers: yesterday, today, tomorrow.
pub fn signing_dates(now_epoch_s: i64) -> Vec<String> {
    [-DAY_SECONDS, 0, DAY_SECONDS]
        .iter()
        .map(|offset| crate::sigv4::format_amz_date(now_epoch_s + offset)[..8].to_string())
        .collect()
}

/// The signing keys of every active IAM access key of `state` whose secret opens with
/// `sealing`, for `regions` and the days around `now_epoch_s`.
pub fn derive_signing_keys(
    state: &GatewayState,
    sealing: &SealingKey,
    regions: &[String],
    now_epoch_s: i64,
) -> SigningKeySet {
    let dates = signing_dates(now_epoch_s);
    let mut keys = Vec::new();
    for key in state.iam.access_keys.values() {
        if key.status != AccessKeyStatus::Active {
            continue;
        }
        let Ok(nonce) = key.nonce.as_slice().try_into() else {
            continue;
        };
        let sealed = SealedSecret {
            nonce,
            ciphertext: key.sealed_secret.clone(),
        };
        let Some(secret) = sealing.open(&key.access_key_id, &sealed) else {
            tracing::warn!(access_key_id = %key.access_key_id, "an IAM secret does not open with this node's sealing key");
            continue;
        };
        for date in &dates {
            for region in regions {
                keys.push(DerivedSigningKey {
                    access_key_id: key.access_key_id.clone(),
                    date: date.clone(),
                    region: region.clone(),
                    key: crate::sigv4::derive_signing_key(&secret, date, region, SERVICE).to_vec(),
                });
            }
        }
    }
    SigningKeySet {
        revision: state.iam.revision,
        dates,
        regions: regions.to_vec(),
        keys,
    }
}

/// The signing regions of a node that has none configured: its own region, else the AWS SDKs'
/// `AWS_REGION` / `AWS_DEFAULT_REGION`, else `us-east-1`.
pub fn default_signing_regions(node_region: Option<&str>) -> Vec<String> {
    let from_env = || {
        ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
    };
    vec![
        node_region
            .map(str::to_string)
            .or_else(from_env)
            .unwrap_or_else(|| "us-east-1".to_string()),
    ]
}

/// Seconds from `now_epoch_s` until the next UTC midnight.
pub fn seconds_to_midnight(now_epoch_s: i64) -> i64 {
    DAY_SECONDS - now_epoch_s.rem_euclid(DAY_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use portico_proto::iam::{IamAccessKey, IamOp};

    #[test]
    fn keys_cover_three_days_every_region_and_active_keys_only() {
        let sealing = SealingKey::from_bytes([7; 32]);
        let mut state = GatewayState::default();
        let user = IamOp::CreateUser {
            user_name: "alice".into(),
            path: "/".into(),
            user_id: "AIDA1".into(),
            account_id: "000000000000".into(),
            create_date: 0,
        };
        state.iam.apply(&user, &|_| false).unwrap();
        for (id, status) in [
            ("AKIAACTIVE0000000000", AccessKeyStatus::Active),
            ("AKIAINACTIVE00000000", AccessKeyStatus::Inactive),
        ] {
            let sealed = sealing.seal(id, "secret");
            let op = IamOp::CreateAccessKey {
                key: IamAccessKey {
                    access_key_id: id.into(),
                    user_name: "alice".into(),
                    status,
                    create_date: 0,
                    nonce: sealed.nonce.to_vec(),
                    sealed_secret: sealed.ciphertext,
                },
            };
            state.iam.apply(&op, &|_| false).unwrap();
        }
        // 2026-12-02T23:59:00Z
        let now = 1_796_255_940;
        let regions = vec!["us-east-1".to_string(), "eu-west-1".to_string()];
        let set = derive_signing_keys(&state, &sealing, &regions, now);
        assert_eq!(set.dates, ["20261201", "20261202", "20261203"]);
        assert_eq!(set.revision, state.iam.revision);
        assert_eq!(set.keys.len(), 6);
        assert!(
            set.keys
                .iter()
                .all(|k| k.access_key_id == "AKIAACTIVE0000000000")
        );
        let today = set
            .keys
            .iter()
            .find(|k| k.date == "20261202" && k.region == "eu-west-1")
            .unwrap();
        assert_eq!(
            today.key,
            crate::sigv4::derive_signing_key("secret", "20261202", "eu-west-1", "execute-api")
        );
        // Another sealing key opens nothing: no keys, no panic.
        let other = derive_signing_keys(&state, &SealingKey::from_bytes([8; 32]), &regions, now);
        assert!(other.keys.is_empty());
        assert_eq!(seconds_to_midnight(now), 60);
    }
}
