//! Frozen encodings of the IAM additions: `Command::Iam` and each `IamOp`, `Refusal::Iam`,
//! `NodeRequest::SigningKeys`, `NodeResponse::SigningKeys`. See `wire_golden.rs`.

use portico_proto::cluster::*;
use portico_proto::codec;
use portico_proto::iam::*;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn check<T>(value: T, expected: &str)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let expected: String = expected.split_whitespace().collect();
    let bytes = codec::encode(&value).unwrap();
    assert_eq!(hex(&bytes), expected, "{value:?}");
    let back: T = codec::decode(&bytes).unwrap();
    assert_eq!(back, value);
}

#[test]
fn iam_commands_keep_their_encoding() {
    // Format version, then `Command::Iam` (index 11), then the op's index and fields.
    check(
        Command::Iam(IamOp::CreateUser {
            user_name: "u".into(),
            path: "/".into(),
            user_id: "i".into(),
            account_id: "a".into(),
            create_date: 2,
        }),
        "01 0b 00 0175 012f 0169 0161 04",
    );
    check(
        Command::Iam(IamOp::DeleteUser {
            user_name: "u".into(),
        }),
        "01 0b 01 0175",
    );
    check(
        Command::Iam(IamOp::CreateAccessKey {
            key: IamAccessKey {
                access_key_id: "k".into(),
                user_name: "u".into(),
                status: AccessKeyStatus::Inactive,
                create_date: 1,
                nonce: vec![7],
                sealed_secret: vec![8],
            },
        }),
        "01 0b 02 016b 0175 01 02 0107 0108",
    );
    check(
        Command::Iam(IamOp::DeleteAccessKey {
            user_name: "u".into(),
            access_key_id: "k".into(),
        }),
        "01 0b 03 0175 016b",
    );
    check(
        Command::Iam(IamOp::UpdateAccessKey {
            user_name: "u".into(),
            access_key_id: "k".into(),
            status: AccessKeyStatus::Active,
        }),
        "01 0b 04 0175 016b 00",
    );
    check(
        Command::Iam(IamOp::PutUserPolicy {
            user_name: "u".into(),
            policy_name: "p".into(),
            policy_document: "{}".into(),
        }),
        "01 0b 05 0175 0170 027b7d",
    );
    check(
        Command::Iam(IamOp::DeleteUserPolicy {
            user_name: "u".into(),
            policy_name: "p".into(),
        }),
        "01 0b 06 0175 0170",
    );
}

#[test]
fn iam_refusals_and_signing_keys_keep_their_encoding() {
    // `Refusal::Iam` is index 3; the codes in declaration order.
    check(
        CommandOutcome::Refused(Refusal::Iam(IamError {
            code: IamErrorCode::DeleteConflict,
            message: "m".into(),
        })),
        "01 01 03 03 016d",
    );
    check(
        NodeRequest::SigningKeys {
            edge_id: 3,
            regions: vec!["r".into()],
        },
        "01 10 03 01 0172",
    );
    check(
        NodeResponse::SigningKeys(SigningKeySet {
            revision: 5,
            dates: vec!["d".into()],
            regions: vec!["r".into()],
            keys: vec![DerivedSigningKey {
                access_key_id: "k".into(),
                date: "d".into(),
                region: "r".into(),
                key: vec![9],
            }],
        }),
        "01 0c 05 01 0164 01 0172 01 016b 0164 0172 0109",
    );
}
