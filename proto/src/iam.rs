//! IAM identities for AWS_IAM authorization: users, their access keys and inline policies,
//! replicated like the rest of the state and changed only by [`IamOp`]s through
//! [`crate::cluster::Command::Iam`].
//!
//! An access key's secret is sealed (AEAD, the cluster's sealing key) by the node that proposes
//! the key, exactly as management keys are: the log, snapshots and every replica hold only the
//! ciphertext, and `cluster::redact_for_edge` empties even that before the state reaches an
//! edge. Edges verify signatures with per-day SigV4 signing keys ([`DerivedSigningKey`]) that
//! origins derive from the opened secrets.
//!
//! `apply` is pure and deterministic: ids, timestamps and sealed secrets travel inside the op.
//! Its refusals are IAM's errors ([`IamError`]), so the IAM endpoint answers what IAM answers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The account every identity belongs to (the one AWS_PROXY events report).
pub const DEFAULT_ACCOUNT_ID: &str = "000000000000";
/// IAM's quota: access keys per user.
pub const MAX_ACCESS_KEYS_PER_USER: usize = 2;
/// IAM's quota: the aggregate size of a user's inline policies, whitespace not counted.
pub const MAX_USER_POLICY_BYTES: usize = 2048;

/// The IAM part of the replicated state.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IamState {
    /// Bumped by every IAM op that applied, so a node can tell cheaply that identities, keys or
    /// policies changed (edges fetch new signing keys when it moves).
    pub revision: u64,
    /// Users by name.
    pub users: BTreeMap<String, IamUser>,
    /// Access keys by access key id.
    pub access_keys: BTreeMap<String, IamAccessKey>,
}

/// An IAM user (botocore `User`) and its inline policies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IamUser {
    pub user_name: String,
    /// `AIDA` and 17 uppercase letters or digits.
    pub user_id: String,
    /// `/` or `/a/b/`.
    pub path: String,
    /// `arn:aws:iam::{account}:user{path}{name}`.
    pub arn: String,
    pub account_id: String,
    /// Epoch seconds.
    pub create_date: i64,
    /// Inline policies: name → JSON document as put.
    pub policies: BTreeMap<String, String>,
}

/// `Active` keys sign requests; `Inactive` ones are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessKeyStatus {
    Active,
    Inactive,
}

impl AccessKeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessKeyStatus::Active => "Active",
            AccessKeyStatus::Inactive => "Inactive",
        }
    }

    pub fn parse(text: &str) -> Option<AccessKeyStatus> {
        match text {
            "Active" => Some(AccessKeyStatus::Active),
            "Inactive" => Some(AccessKeyStatus::Inactive),
            _ => None,
        }
    }
}

/// An access key of a user. The secret is sealed with the cluster's sealing key and the access
/// key id as associated data; edges receive it emptied.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IamAccessKey {
    pub access_key_id: String,
    pub user_name: String,
    pub status: AccessKeyStatus,
    pub create_date: i64,
    pub nonce: Vec<u8>,
    pub sealed_secret: Vec<u8>,
}

impl std::fmt::Debug for IamAccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IamAccessKey")
            .field("access_key_id", &self.access_key_id)
            .field("user_name", &self.user_name)
            .field("status", &self.status)
            .field("create_date", &self.create_date)
            .field("sealed_secret_len", &self.sealed_secret.len())
            .finish_non_exhaustive()
    }
}

/// An IAM write. Appended variants only (encoded by position, like every wire enum).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IamOp {
    CreateUser {
        user_name: String,
        path: String,
        user_id: String,
        account_id: String,
        create_date: i64,
    },
    DeleteUser {
        user_name: String,
    },
    CreateAccessKey {
        key: IamAccessKey,
    },
    DeleteAccessKey {
        user_name: String,
        access_key_id: String,
    },
    UpdateAccessKey {
        user_name: String,
        access_key_id: String,
        status: AccessKeyStatus,
    },
    PutUserPolicy {
        user_name: String,
        policy_name: String,
        policy_document: String,
    },
    DeleteUserPolicy {
        user_name: String,
        policy_name: String,
    },
}

/// IAM's error codes (botocore `iam` model: the `error.code` of each exception shape).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IamErrorCode {
    NoSuchEntity,
    EntityAlreadyExists,
    LimitExceeded,
    DeleteConflict,
    MalformedPolicyDocument,
    InvalidInput,
}

impl IamErrorCode {
    /// The code on the wire (`<Code>`).
    pub fn code(self) -> &'static str {
        match self {
            IamErrorCode::NoSuchEntity => "NoSuchEntity",
            IamErrorCode::EntityAlreadyExists => "EntityAlreadyExists",
            IamErrorCode::LimitExceeded => "LimitExceeded",
            IamErrorCode::DeleteConflict => "DeleteConflict",
            IamErrorCode::MalformedPolicyDocument => "MalformedPolicyDocument",
            IamErrorCode::InvalidInput => "InvalidInput",
        }
    }

    /// The HTTP status botocore's model gives the code.
    pub fn status(self) -> u16 {
        match self {
            IamErrorCode::NoSuchEntity => 404,
            IamErrorCode::EntityAlreadyExists
            | IamErrorCode::LimitExceeded
            | IamErrorCode::DeleteConflict => 409,
            IamErrorCode::MalformedPolicyDocument | IamErrorCode::InvalidInput => 400,
        }
    }
}

/// A refused IAM op: IAM's code and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IamError {
    pub code: IamErrorCode,
    pub message: String,
}

impl IamError {
    fn new(code: IamErrorCode, message: impl Into<String>) -> IamError {
        IamError {
            code,
            message: message.into(),
        }
    }

    fn no_such_user(user_name: &str) -> IamError {
        IamError::new(
            IamErrorCode::NoSuchEntity,
            format!("The user with name {user_name} cannot be found."),
        )
    }

    fn no_such_key(access_key_id: &str) -> IamError {
        IamError::new(
            IamErrorCode::NoSuchEntity,
            format!("The Access Key with id {access_key_id} cannot be found."),
        )
    }
}

impl std::fmt::Display for IamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.code(), self.message)
    }
}

/// The ARN of a user: `arn:aws:iam::{account}:user{path}{name}`.
pub fn user_arn(account_id: &str, path: &str, user_name: &str) -> String {
    format!("arn:aws:iam::{account_id}:user{path}{user_name}")
}

/// Whether `name` is a valid IAM user or policy name (`[\w+=,.@-]+`, at most `max` bytes).
pub fn is_valid_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"_+=,.@-".contains(&byte))
}

/// Whether `path` is a valid IAM path: `/`, or `/` + printable ASCII + `/`, at most 512 bytes.
pub fn is_valid_path(path: &str) -> bool {
    path == "/"
        || (path.len() >= 3
            && path.len() <= 512
            && path.starts_with('/')
            && path.ends_with('/')
            && path.bytes().all(|byte| (0x21..=0x7e).contains(&byte)))
}

impl IamState {
    /// The user named `user_name` (IAM names are unique regardless of case; lookups are exact).
    pub fn user(&self, user_name: &str) -> Option<&IamUser> {
        self.users.get(user_name)
    }

    /// The access keys of a user, by id.
    pub fn keys_of<'s>(&'s self, user_name: &'s str) -> impl Iterator<Item = &'s IamAccessKey> {
        self.access_keys
            .values()
            .filter(move |key| key.user_name == user_name)
    }

    /// Applies `op`; on a refusal the state is unchanged. `admin_key_ids` are the management
    /// keys' ids, which an IAM key id may not reuse (one id names one secret).
    pub fn apply(
        &mut self,
        op: &IamOp,
        is_admin_key: &dyn Fn(&str) -> bool,
    ) -> Result<(), IamError> {
        self.apply_inner(op, is_admin_key)?;
        self.revision += 1;
        Ok(())
    }

    fn apply_inner(
        &mut self,
        op: &IamOp,
        is_admin_key: &dyn Fn(&str) -> bool,
    ) -> Result<(), IamError> {
        match op {
            IamOp::CreateUser {
                user_name,
                path,
                user_id,
                account_id,
                create_date,
            } => {
                if !is_valid_name(user_name, 64) {
                    return Err(IamError::new(
                        IamErrorCode::InvalidInput,
                        format!("Invalid user name {user_name}."),
                    ));
                }
                if !is_valid_path(path) {
                    return Err(IamError::new(
                        IamErrorCode::InvalidInput,
                        format!("Invalid path {path}."),
                    ));
                }
                if self
                    .users
                    .keys()
                    .any(|existing| existing.eq_ignore_ascii_case(user_name))
                {
                    return Err(IamError::new(
                        IamErrorCode::EntityAlreadyExists,
                        format!("User with name {user_name} already exists."),
                    ));
                }
                if self.users.values().any(|user| &user.user_id == user_id) {
                    return Err(IamError::new(
                        IamErrorCode::EntityAlreadyExists,
                        format!("A user with id {user_id} already exists."),
                    ));
                }
                self.users.insert(
                    user_name.clone(),
                    IamUser {
                        user_name: user_name.clone(),
                        user_id: user_id.clone(),
                        path: path.clone(),
                        arn: user_arn(account_id, path, user_name),
                        account_id: account_id.clone(),
                        create_date: *create_date,
                        policies: BTreeMap::new(),
                    },
                );
                Ok(())
            }
            IamOp::DeleteUser { user_name } => {
                let user = self
                    .users
                    .get(user_name)
                    .ok_or_else(|| IamError::no_such_user(user_name))?;
                if self.keys_of(user_name).next().is_some() {
                    return Err(IamError::new(
                        IamErrorCode::DeleteConflict,
                        "Cannot delete entity, must delete access keys first.",
                    ));
                }
                if !user.policies.is_empty() {
                    return Err(IamError::new(
                        IamErrorCode::DeleteConflict,
                        "Cannot delete entity, must delete policies first.",
                    ));
                }
                self.users.remove(user_name);
                Ok(())
            }
            IamOp::CreateAccessKey { key } => {
                if !self.users.contains_key(&key.user_name) {
                    return Err(IamError::no_such_user(&key.user_name));
                }
                if self.keys_of(&key.user_name).count() >= MAX_ACCESS_KEYS_PER_USER {
                    return Err(IamError::new(
                        IamErrorCode::LimitExceeded,
                        format!(
                            "Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS_PER_USER}"
                        ),
                    ));
                }
                if self.access_keys.contains_key(&key.access_key_id)
                    || is_admin_key(&key.access_key_id)
                {
                    return Err(IamError::new(
                        IamErrorCode::EntityAlreadyExists,
                        format!("Access key {} already exists.", key.access_key_id),
                    ));
                }
                self.access_keys
                    .insert(key.access_key_id.clone(), key.clone());
                Ok(())
            }
            IamOp::DeleteAccessKey {
                user_name,
                access_key_id,
            } => {
                self.key_of_user(user_name, access_key_id)?;
                self.access_keys.remove(access_key_id);
                Ok(())
            }
            IamOp::UpdateAccessKey {
                user_name,
                access_key_id,
                status,
            } => {
                self.key_of_user(user_name, access_key_id)?;
                if let Some(key) = self.access_keys.get_mut(access_key_id) {
                    key.status = *status;
                }
                Ok(())
            }
            IamOp::PutUserPolicy {
                user_name,
                policy_name,
                policy_document,
            } => {
                if !is_valid_name(policy_name, 128) {
                    return Err(IamError::new(
                        IamErrorCode::InvalidInput,
                        format!("Invalid policy name {policy_name}."),
                    ));
                }
                let user = self
                    .users
                    .get(user_name)
                    .ok_or_else(|| IamError::no_such_user(user_name))?;
                check_policy_document(policy_document)?;
                let size: usize = user
                    .policies
                    .iter()
                    .filter(|(name, _)| *name != policy_name)
                    .map(|(_, document)| counted_size(document))
                    .sum::<usize>()
                    + counted_size(policy_document);
                if size > MAX_USER_POLICY_BYTES {
                    return Err(IamError::new(
                        IamErrorCode::LimitExceeded,
                        format!(
                            "Maximum policy size of {MAX_USER_POLICY_BYTES} bytes exceeded for user {user_name}"
                        ),
                    ));
                }
                if let Some(user) = self.users.get_mut(user_name) {
                    user.policies
                        .insert(policy_name.clone(), policy_document.clone());
                }
                Ok(())
            }
            IamOp::DeleteUserPolicy {
                user_name,
                policy_name,
            } => {
                let user = self
                    .users
                    .get_mut(user_name)
                    .ok_or_else(|| IamError::no_such_user(user_name))?;
                user.policies
                    .remove(policy_name)
                    .map(|_| ())
                    .ok_or_else(|| {
                        IamError::new(
                            IamErrorCode::NoSuchEntity,
                            format!("The user policy with name {policy_name} cannot be found."),
                        )
                    })
            }
        }
    }

    /// The key `access_key_id`, which must belong to `user_name`.
    fn key_of_user(&self, user_name: &str, access_key_id: &str) -> Result<(), IamError> {
        if !self.users.contains_key(user_name) {
            return Err(IamError::no_such_user(user_name));
        }
        match self.access_keys.get(access_key_id) {
            Some(key) if key.user_name == user_name => Ok(()),
            _ => Err(IamError::no_such_key(access_key_id)),
        }
    }
}

/// IAM counts a policy's size without whitespace.
fn counted_size(document: &str) -> usize {
    document
        .bytes()
        .filter(|byte| !byte.is_ascii_whitespace())
        .count()
}

/// The structural check every replica can make: the document is a JSON object with a
/// `Statement`. (The proposing node checks the statements themselves with the policy parser
/// before proposing; this keeps a malformed document out of the state whoever proposes it.)
pub fn check_policy_document(document: &str) -> Result<(), IamError> {
    let malformed = || {
        IamError::new(
            IamErrorCode::MalformedPolicyDocument,
            "Syntax errors in policy.",
        )
    };
    if document.is_empty() || document.len() > 131_072 {
        return Err(malformed());
    }
    let value: serde_json::Value = serde_json::from_str(document).map_err(|_| malformed())?;
    let object = value.as_object().ok_or_else(malformed)?;
    match object.get("Statement") {
        Some(serde_json::Value::Object(_)) => Ok(()),
        Some(serde_json::Value::Array(statements))
            if !statements.is_empty() && statements.iter().all(|s| s.is_object()) =>
        {
            Ok(())
        }
        _ => Err(malformed()),
    }
}

/// A SigV4 signing key derived for one access key, one UTC day, one region and the
/// `execute-api` service: `HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service),
/// "aws4_request")`. It verifies signatures of that day and region only, so an edge holding it
/// holds neither the secret nor anything valid beyond the day.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DerivedSigningKey {
    pub access_key_id: String,
    /// `YYYYMMDD`, as in the credential scope.
    pub date: String,
    pub region: String,
    /// 32 bytes.
    pub key: Vec<u8>,
}

impl std::fmt::Debug for DerivedSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DerivedSigningKey")
            .field("access_key_id", &self.access_key_id)
            .field("date", &self.date)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// What an origin hands an edge: the signing keys of every active access key, derived from
/// the IAM state at `revision`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SigningKeySet {
    /// The `IamState::revision` the keys were derived from.
    pub revision: u64,
    /// The UTC days (`YYYYMMDD`) covered.
    pub dates: Vec<String>,
    pub regions: Vec<String>,
    pub keys: Vec<DerivedSigningKey>,
}

#[cfg(test)]
mod tests;
