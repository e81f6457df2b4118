//! The IAM-compatible endpoint (botocore `iam` 2010-05-08, query protocol) on the management
//! listener: users, access keys and inline user policies, for AWS_IAM methods.
//!
//! A request is an IAM request when its SigV4 credential scope names the service `iam`; it is
//! signed by a management key like every management request. Parameters come form-encoded in
//! the body (or the query); answers are XML in IAM's shapes
//! (`<{Action}Response><{Action}Result>...`), errors IAM's
//! `<ErrorResponse><Error><Type>Sender</Type><Code>..</Code><Message>..</Message></Error>`.
//!
//! An access key's secret is generated and sealed here (this layer holds the sealing key);
//! CreateAccessKey's answer is the only place it ever appears in clear.

use std::fmt::Write as _;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use portico_proto::cluster::{Command, Refusal};
use portico_proto::iam::{
    AccessKeyStatus, DEFAULT_ACCOUNT_ID, IamAccessKey, IamError, IamOp, IamUser, is_valid_name,
    is_valid_path,
};

use super::AdminApi;
use crate::admin::control::ControlError;
use crate::admin::secrets::{generate_access_key, generate_user_id};
use crate::body::{self, Body};
use crate::integrate::params;

const VERSION: &str = "2010-05-08";
const XMLNS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
const MAX_ITEMS_DEFAULT: usize = 100;
const MAX_ITEMS_MAX: usize = 1000;

/// An IAM error: status, `<Type>`, `<Code>`, `<Message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamApiError {
    pub status: StatusCode,
    pub sender: bool,
    pub code: &'static str,
    pub message: String,
}

impl IamApiError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> IamApiError {
        IamApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            sender: status < 500,
            code,
            message: message.into(),
        }
    }

    fn validation(message: impl Into<String>) -> IamApiError {
        IamApiError::new(400, "ValidationError", message)
    }

    fn missing(member: &str) -> IamApiError {
        IamApiError::validation(format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ))
    }

    /// The SigV4 failures, in IAM's codes.
    pub fn from_auth(error: &crate::sigv4::AuthError) -> IamApiError {
        use crate::sigv4::AuthError;
        let code = match error {
            AuthError::MissingAuthentication => "MissingAuthenticationToken",
            AuthError::Malformed(_) => "IncompleteSignature",
            AuthError::UnknownAccessKey => "InvalidClientTokenId",
            AuthError::SignatureMismatch
            | AuthError::Stale { .. }
            | AuthError::WrongService { .. }
            | AuthError::WrongRegion(_) => "SignatureDoesNotMatch",
        };
        let message = match error {
            AuthError::MissingAuthentication => "Request is missing Authentication Token".into(),
            other => other.message(),
        };
        IamApiError::new(403, code, message)
    }

    pub fn into_response(self, request_id: &str) -> Response<Body> {
        let kind = if self.sender { "Sender" } else { "Receiver" };
        let text = format!(
            "<ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>{kind}</Type><Code>{}</Code>\
             <Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
            self.code,
            escape(&self.message)
        );
        xml_response(self.status, text)
    }
}

impl From<IamError> for IamApiError {
    fn from(error: IamError) -> Self {
        IamApiError::new(error.code.status(), error.code.code(), error.message)
    }
}

impl From<ControlError> for IamApiError {
    fn from(error: ControlError) -> Self {
        match error {
            ControlError::Refused(Refusal::Iam(error)) => error.into(),
            ControlError::Refused(other) => {
                IamApiError::new(400, "InvalidInput", other.to_string())
            }
            ControlError::Unavailable(message) => {
                IamApiError::new(503, "ServiceUnavailable", message)
            }
        }
    }
}

fn xml_response(status: StatusCode, text: String) -> Response<Body> {
    let mut response = Response::new(body::full(Bytes::from(text)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    response
}

/// XML character data and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// ISO 8601 (`2026-12-02T13:00:00Z`), as IAM's dates.
fn iso_date(epoch_s: i64) -> String {
    let basic = crate::sigv4::format_amz_date(epoch_s);
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        &basic[0..4],
        &basic[4..6],
        &basic[6..8],
        &basic[9..11],
        &basic[11..13],
        &basic[13..15]
    )
}

/// IAM's encoding of a policy document in answers: RFC 3986 percent-encoding.
fn url_encode(text: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, SET).to_string()
}

fn user_xml(user: &IamUser) -> String {
    format!(
        "<Path>{}</Path><UserName>{}</UserName><UserId>{}</UserId><Arn>{}</Arn>\
         <CreateDate>{}</CreateDate>",
        escape(&user.path),
        escape(&user.user_name),
        escape(&user.user_id),
        escape(&user.arn),
        iso_date(user.create_date)
    )
}

fn key_metadata_xml(key: &IamAccessKey) -> String {
    format!(
        "<UserName>{}</UserName><AccessKeyId>{}</AccessKeyId><Status>{}</Status>\
         <CreateDate>{}</CreateDate>",
        escape(&key.user_name),
        escape(&key.access_key_id),
        key.status.as_str(),
        iso_date(key.create_date)
    )
}

/// A request's parameters (body and query), by name.
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn required(&self, name: &str, member: &str) -> Result<&str, IamApiError> {
        self.get(name).ok_or_else(|| IamApiError::missing(member))
    }

    fn user_name(&self) -> Result<&str, IamApiError> {
        let name = self.get("UserName").ok_or_else(|| {
            IamApiError::validation("Must specify userName when calling with non-User credentials")
        })?;
        if !is_valid_name(name, 128) {
            return Err(IamApiError::validation(format!(
                "1 validation error detected: Value '{name}' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
            )));
        }
        Ok(name)
    }

    fn max_items(&self) -> Result<usize, IamApiError> {
        match self.get("MaxItems") {
            None => Ok(MAX_ITEMS_DEFAULT),
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_ITEMS_MAX).contains(n))
                .ok_or_else(|| {
                    IamApiError::validation(format!(
                        "1 validation error detected: Value '{text}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and {MAX_ITEMS_MAX}"
                    ))
                }),
        }
    }
}

/// One page of `items` (sorted by their names) after `Marker`: the items, and the marker of the
/// next page if any.
fn page<'a, T>(
    items: impl Iterator<Item = (&'a str, T)>,
    params: &Params,
) -> Result<(Vec<T>, Option<String>), IamApiError> {
    let max = params.max_items()?;
    let marker = params.get("Marker");
    let mut selected = Vec::new();
    let mut next = None;
    for (name, item) in items {
        if marker.is_some_and(|marker| name < marker) {
            continue;
        }
        if selected.len() == max {
            next = Some(name.to_string());
            break;
        }
        selected.push(item);
    }
    Ok((selected, next))
}

/// An IAM list answer: `<{tag}><member>…</member>…</{tag}>` and its truncation marker.
fn list_xml(tag: &str, members: impl Iterator<Item = String>, next: Option<String>) -> String {
    let mut out = format!("<{tag}>");
    for member in members {
        let _ = write!(out, "<member>{member}</member>");
    }
    let _ = write!(out, "</{tag}>");
    out.push_str(&truncation_xml(next));
    out
}

fn truncation_xml(next: Option<String>) -> String {
    match next {
        Some(marker) => format!(
            "<IsTruncated>true</IsTruncated><Marker>{}</Marker>",
            escape(&marker)
        ),
        None => "<IsTruncated>false</IsTruncated>".to_string(),
    }
}

impl AdminApi {
    /// Serves one IAM request whose signature has been verified.
    pub(super) async fn iam(&self, query: Option<&str>, body: &[u8]) -> Response<Body> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut pairs = params::parse_query(query);
        match std::str::from_utf8(body) {
            Ok(text) => pairs.extend(params::parse_query(Some(text))),
            Err(_) => {
                return IamApiError::new(400, "MalformedInput", "The request body is not UTF-8")
                    .into_response(&request_id);
            }
        }
        let params = Params(pairs);
        let action = params.get("Action").unwrap_or("").to_string();
        let outcome = match params.get("Version") {
            Some(VERSION) | None => self.iam_action(&action, &params).await,
            Some(other) => Err(IamApiError::new(
                400,
                "InvalidAction",
                format!("Could not find operation {action} for version {other}"),
            )),
        };
        match outcome {
            Ok(result) => {
                let result = match result {
                    Some(inner) => format!("<{action}Result>{inner}</{action}Result>"),
                    None => String::new(),
                };
                xml_response(
                    StatusCode::OK,
                    format!(
                        "<{action}Response xmlns=\"{XMLNS}\">{result}<ResponseMetadata>\
                         <RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"
                    ),
                )
            }
            Err(error) => error.into_response(&request_id),
        }
    }

    async fn iam_write(&self, op: IamOp) -> Result<(), IamApiError> {
        self.control.write(Command::Iam(op)).await?;
        Ok(())
    }

    async fn iam_read(&self) -> Result<std::sync::Arc<portico_proto::GatewayState>, IamApiError> {
        Ok(self.control.read().await?)
    }

    /// The action's `<...Result>` content (`None` for actions without a result).
    async fn iam_action(
        &self,
        action: &str,
        params: &Params,
    ) -> Result<Option<String>, IamApiError> {
        match action {
            "CreateUser" => {
                let user_name = params.required("UserName", "userName")?.to_string();
                if !is_valid_name(&user_name, 64) {
                    return Err(IamApiError::validation(format!(
                        "1 validation error detected: Value '{user_name}' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+ and have length between 1 and 64"
                    )));
                }
                let path = params.get("Path").unwrap_or("/").to_string();
                if !is_valid_path(&path) {
                    return Err(IamApiError::validation(format!(
                        "1 validation error detected: Value '{path}' at 'path' failed to satisfy constraint: Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)"
                    )));
                }
                self.iam_write(IamOp::CreateUser {
                    user_name: user_name.clone(),
                    path,
                    user_id: generate_user_id(),
                    account_id: DEFAULT_ACCOUNT_ID.to_string(),
                    create_date: crate::time::epoch_seconds(std::time::SystemTime::now()),
                })
                .await?;
                let state = self.iam_read().await?;
                let user = state
                    .iam
                    .user(&user_name)
                    .ok_or_else(|| IamApiError::new(500, "ServiceFailure", "The user vanished"))?;
                Ok(Some(format!("<User>{}</User>", user_xml(user))))
            }
            "GetUser" => {
                let user_name = params.user_name()?;
                let state = self.iam_read().await?;
                let user = state.iam.user(user_name).ok_or_else(|| {
                    IamApiError::new(
                        404,
                        "NoSuchEntity",
                        format!("The user with name {user_name} cannot be found."),
                    )
                })?;
                Ok(Some(format!("<User>{}</User>", user_xml(user))))
            }
            "ListUsers" => {
                let prefix = params.get("PathPrefix").unwrap_or("/");
                let state = self.iam_read().await?;
                let (users, next) = page(
                    state
                        .iam
                        .users
                        .iter()
                        .filter(|(_, user)| user.path.starts_with(prefix))
                        .map(|(name, user)| (name.as_str(), user)),
                    params,
                )?;
                Ok(Some(list_xml(
                    "Users",
                    users.into_iter().map(user_xml),
                    next,
                )))
            }
            "DeleteUser" => {
                let user_name = params.user_name()?.to_string();
                self.iam_write(IamOp::DeleteUser { user_name }).await?;
                Ok(None)
            }
            "CreateAccessKey" => {
                let user_name = params.user_name()?.to_string();
                let (access_key_id, secret) = generate_access_key();
                let sealed = self.sealing.seal(&access_key_id, &secret);
                let key = IamAccessKey {
                    access_key_id,
                    user_name,
                    status: AccessKeyStatus::Active,
                    create_date: crate::time::epoch_seconds(std::time::SystemTime::now()),
                    nonce: sealed.nonce.to_vec(),
                    sealed_secret: sealed.ciphertext,
                };
                let shown = format!(
                    "<AccessKey>{}<SecretAccessKey>{}</SecretAccessKey></AccessKey>",
                    key_metadata_xml(&key),
                    escape(&secret)
                );
                self.iam_write(IamOp::CreateAccessKey { key }).await?;
                Ok(Some(shown))
            }
            "DeleteAccessKey" => {
                let user_name = params.user_name()?.to_string();
                let access_key_id = params.required("AccessKeyId", "accessKeyId")?.to_string();
                self.iam_write(IamOp::DeleteAccessKey {
                    user_name,
                    access_key_id,
                })
                .await?;
                Ok(None)
            }
            "UpdateAccessKey" => {
                let user_name = params.user_name()?.to_string();
                let access_key_id = params.required("AccessKeyId", "accessKeyId")?.to_string();
                let status_text = params.required("Status", "status")?;
                let status = AccessKeyStatus::parse(status_text).ok_or_else(|| {
                    IamApiError::validation(format!(
                        "1 validation error detected: Value '{status_text}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]"
                    ))
                })?;
                self.iam_write(IamOp::UpdateAccessKey {
                    user_name,
                    access_key_id,
                    status,
                })
                .await?;
                Ok(None)
            }
            "ListAccessKeys" => {
                let user_name = params.user_name()?;
                let state = self.iam_read().await?;
                if state.iam.user(user_name).is_none() {
                    return Err(IamApiError::new(
                        404,
                        "NoSuchEntity",
                        format!("The user with name {user_name} cannot be found."),
                    ));
                }
                let (keys, next) = page(
                    state
                        .iam
                        .keys_of(user_name)
                        .map(|key| (key.access_key_id.as_str(), key)),
                    params,
                )?;
                Ok(Some(list_xml(
                    "AccessKeyMetadata",
                    keys.into_iter().map(key_metadata_xml),
                    next,
                )))
            }
            "PutUserPolicy" => {
                let user_name = params.user_name()?.to_string();
                let policy_name = params.required("PolicyName", "policyName")?.to_string();
                let document = params
                    .required("PolicyDocument", "policyDocument")?
                    .to_string();
                check_policy(&document)?;
                self.iam_write(IamOp::PutUserPolicy {
                    user_name,
                    policy_name,
                    policy_document: document,
                })
                .await?;
                Ok(None)
            }
            "GetUserPolicy" => {
                let user_name = params.user_name()?;
                let policy_name = params.required("PolicyName", "policyName")?;
                let state = self.iam_read().await?;
                let user = state.iam.user(user_name).ok_or_else(|| {
                    IamApiError::new(
                        404,
                        "NoSuchEntity",
                        format!("The user with name {user_name} cannot be found."),
                    )
                })?;
                let document = user.policies.get(policy_name).ok_or_else(|| {
                    IamApiError::new(
                        404,
                        "NoSuchEntity",
                        format!("The user policy with name {policy_name} cannot be found."),
                    )
                })?;
                Ok(Some(format!(
                    "<UserName>{}</UserName><PolicyName>{}</PolicyName>\
                     <PolicyDocument>{}</PolicyDocument>",
                    escape(user_name),
                    escape(policy_name),
                    url_encode(document)
                )))
            }
            "DeleteUserPolicy" => {
                let user_name = params.user_name()?.to_string();
                let policy_name = params.required("PolicyName", "policyName")?.to_string();
                self.iam_write(IamOp::DeleteUserPolicy {
                    user_name,
                    policy_name,
                })
                .await?;
                Ok(None)
            }
            "ListUserPolicies" => {
                let user_name = params.user_name()?;
                let state = self.iam_read().await?;
                let user = state.iam.user(user_name).ok_or_else(|| {
                    IamApiError::new(
                        404,
                        "NoSuchEntity",
                        format!("The user with name {user_name} cannot be found."),
                    )
                })?;
                let (names, next) = page(
                    user.policies.keys().map(|name| (name.as_str(), name)),
                    params,
                )?;
                Ok(Some(list_xml(
                    "PolicyNames",
                    names.into_iter().map(|name| escape(name)),
                    next,
                )))
            }
            "" => Err(IamApiError::new(
                400,
                "InvalidAction",
                "The request must contain the parameter Action",
            )),
            other => Err(IamApiError::new(
                400,
                "InvalidAction",
                format!("Could not find operation {other} for version {VERSION}"),
            )),
        }
    }
}

/// An identity-based policy as IAM checks it at PutUserPolicy: valid JSON with statements the
/// evaluator understands, and no `Principal` (IAM's own refusal for identity policies).
fn check_policy(document: &str) -> Result<(), IamApiError> {
    let malformed = |message: String| IamApiError::new(400, "MalformedPolicyDocument", message);
    portico_proto::iam::check_policy_document(document)
        .map_err(|error| malformed(error.message))?;
    let value: serde_json::Value =
        serde_json::from_str(document).map_err(|_| malformed("Syntax errors in policy.".into()))?;
    let statements: Vec<&serde_json::Value> = match value.get("Statement") {
        Some(serde_json::Value::Array(list)) => list.iter().collect(),
        Some(one) => vec![one],
        None => Vec::new(),
    };
    if statements.iter().any(|statement| {
        statement.get("Principal").is_some() || statement.get("NotPrincipal").is_some()
    }) {
        return Err(malformed(
            "Policy document should not specify a principal.".into(),
        ));
    }
    crate::authorize::policy::Policy::parse(document).map_err(|error| malformed(error.0))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_policies_and_text_are_encoded_as_iam_does() {
        assert_eq!(iso_date(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_date(1_764_680_400), "2025-12-02T13:00:00Z");
        assert_eq!(
            url_encode(r#"{"a": "b/c*"}"#),
            "%7B%22a%22%3A%20%22b%2Fc%2A%22%7D"
        );
        assert_eq!(escape("<a&'\">"), "&lt;a&amp;&apos;&quot;&gt;");
    }

    #[test]
    fn policies_with_principals_or_bad_statements_are_malformed() {
        let ok = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"*"}]}"#;
        assert!(check_policy(ok).is_ok());
        for bad in [
            "not json",
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}"#,
        ] {
            let error = check_policy(bad).expect_err(bad);
            assert_eq!(error.code, "MalformedPolicyDocument");
            assert_eq!(error.status, StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn pages_continue_at_the_marker() {
        let names = ["a", "b", "c"];
        let params = Params(vec![("MaxItems".into(), "2".into())]);
        let (items, next) = page(names.iter().map(|n| (*n, *n)), &params).unwrap();
        assert_eq!(items, ["a", "b"]);
        assert_eq!(next.as_deref(), Some("c"));
        let params = Params(vec![
            ("MaxItems".into(), "2".into()),
            ("Marker".into(), "c".into()),
        ]);
        let (items, next) = page(names.iter().map(|n| (*n, *n)), &params).unwrap();
        assert_eq!(items, ["c"]);
        assert_eq!(next, None);
        let params = Params(vec![("MaxItems".into(), "0".into())]);
        assert!(page(names.iter().map(|n| (*n, *n)), &params).is_err());
    }
}
