//! The management side of authorization (issue 12): authorizers, UpdateMethod, gateway
//! responses and the authorizer cache generation. Pure, like the rest of [`super`].
//!
//! Texts recorded from AWS (LocalStack's validated snapshots, AWS-FACTS §1) are used where they
//! exist; the others are ours and listed in ARCHITECTURE.md's deviations.

use crate::cluster::Refusal;
use crate::model::{ApiDefinition, Authorizer, GatewayResponse, GatewayState, StringMap};

use super::{
    AUTHORIZATION_TYPES, BUILTIN_MODELS, PatchOperation, bad, check_op, check_status_code,
    method_mut, required_value, stage_not_found, unescape_pointer, unsupported_op,
};

/// The authorizer types a REST API accepts (botocore's enum also lists `JWT`, which only HTTP
/// APIs support).
pub const AUTHORIZER_TYPES: [&str; 3] = ["TOKEN", "REQUEST", "COGNITO_USER_POOLS"];
/// What a TOKEN or REQUEST authorizer's result is cached for when
/// `authorizerResultTtlInSeconds` is not set (AWS's documented default).
pub const AUTHORIZER_TTL_DEFAULT_SECONDS: i32 = 300;
pub const AUTHORIZER_TTL_MAX_SECONDS: i32 = 3600;

/// The template every default gateway response has (recorded, LS api
/// `test_gateway_response_crud`).
pub const DEFAULT_GATEWAY_RESPONSE_TEMPLATE: &str = "{\"message\":$context.error.messageString}";

/// Every gateway response type with its default status code, in alphabetical order (the order
/// GetGatewayResponses lists them in). DEFAULT_4XX and DEFAULT_5XX have none: AWS renders them
/// without `statusCode` (recorded, LS api `test_gateway_response_crud`).
pub const GATEWAY_RESPONSE_TYPES: [(&str, Option<&str>); 21] = [
    ("ACCESS_DENIED", Some("403")),
    ("API_CONFIGURATION_ERROR", Some("500")),
    ("AUTHORIZER_CONFIGURATION_ERROR", Some("500")),
    ("AUTHORIZER_FAILURE", Some("500")),
    ("BAD_REQUEST_BODY", Some("400")),
    ("BAD_REQUEST_PARAMETERS", Some("400")),
    ("DEFAULT_4XX", None),
    ("DEFAULT_5XX", None),
    ("EXPIRED_TOKEN", Some("403")),
    ("INTEGRATION_FAILURE", Some("504")),
    ("INTEGRATION_TIMEOUT", Some("504")),
    ("INVALID_API_KEY", Some("403")),
    ("INVALID_SIGNATURE", Some("403")),
    ("MISSING_AUTHENTICATION_TOKEN", Some("403")),
    ("QUOTA_EXCEEDED", Some("429")),
    ("REQUEST_TOO_LARGE", Some("413")),
    ("RESOURCE_NOT_FOUND", Some("404")),
    ("THROTTLED", Some("429")),
    ("UNAUTHORIZED", Some("401")),
    ("UNSUPPORTED_MEDIA_TYPE", Some("415")),
    ("WAF_FILTERED", Some("403")),
];

/// AWS's text for an unknown response type, verbatim (recorded, LS api
/// `test_gateway_response_validation`), including its order.
const RESPONSE_TYPE_ENUM: &str = "[REQUEST_TOO_LARGE, RESOURCE_NOT_FOUND, AUTHORIZER_CONFIGURATION_ERROR, MISSING_AUTHENTICATION_TOKEN, BAD_REQUEST_BODY, INVALID_SIGNATURE, INVALID_API_KEY, BAD_REQUEST_PARAMETERS, AUTHORIZER_FAILURE, UNAUTHORIZED, INTEGRATION_TIMEOUT, ACCESS_DENIED, DEFAULT_4XX, DEFAULT_5XX, WAF_FILTERED, QUOTA_EXCEEDED, THROTTLED, API_CONFIGURATION_ERROR, UNSUPPORTED_MEDIA_TYPE, INTEGRATION_FAILURE, EXPIRED_TOKEN]";

/// Checks a gateway response type against AWS's enum, with AWS's text.
pub fn check_response_type(response_type: &str) -> Result<(), Refusal> {
    if GATEWAY_RESPONSE_TYPES
        .iter()
        .any(|(known, _)| *known == response_type)
    {
        Ok(())
    } else {
        Err(bad(format!(
            "1 validation error detected: Value '{response_type}' at 'responseType' failed to satisfy constraint: Member must satisfy enum value set: {RESPONSE_TYPE_ENUM}"
        )))
    }
}

/// The default status code of a response type (`None` for DEFAULT_4XX/5XX and unknown types).
pub fn default_status_code(response_type: &str) -> Option<&'static str> {
    GATEWAY_RESPONSE_TYPES
        .iter()
        .find(|(known, _)| *known == response_type)
        .and_then(|(_, status)| *status)
}

/// A response type as AWS has it before any customisation: its status, no parameters, the
/// default template, `defaultResponse: true`.
pub fn default_gateway_response(response_type: &str) -> GatewayResponse {
    GatewayResponse {
        response_type: response_type.to_string(),
        status_code: default_status_code(response_type).map(str::to_string),
        response_parameters: StringMap::new(),
        response_templates: StringMap::from([(
            "application/json".to_string(),
            DEFAULT_GATEWAY_RESPONSE_TEMPLATE.to_string(),
        )]),
        default_response: true,
    }
}

/// The gateway response an API answers `response_type` with: its own customisation if it has
/// one; otherwise the type's default, taking the status code (when set), parameters and
/// templates of a customised DEFAULT_4XX or DEFAULT_5XX (by the type's default status class)
/// while still `defaultResponse: true` (recorded, LS api `test_gateway_response_put`: a
/// customised DEFAULT_5XX with status 599 makes INTEGRATION_FAILURE answer 599).
/// This is what GetGatewayResponse(s) render and what the data plane should answer with.
pub fn effective_gateway_response(
    definition: &ApiDefinition,
    response_type: &str,
) -> GatewayResponse {
    let customised = |kind: &str| {
        definition
            .gateway_responses
            .iter()
            .find(|response| response.response_type == kind)
    };
    if let Some(own) = customised(response_type) {
        let mut own = own.clone();
        own.default_response = false;
        return own;
    }
    let mut response = default_gateway_response(response_type);
    let family = match default_status_code(response_type).and_then(|code| code.chars().next()) {
        Some('4') => Some("DEFAULT_4XX"),
        Some('5') => Some("DEFAULT_5XX"),
        _ => None,
    };
    if let Some(parent) = family.and_then(customised) {
        if parent.status_code.is_some() {
            response.status_code = parent.status_code.clone();
        }
        response.response_parameters = parent.response_parameters.clone();
        response.response_templates = parent.response_templates.clone();
    }
    response
}

/// Every gateway response of an API, customised or not, in [`GATEWAY_RESPONSE_TYPES`] order.
pub fn effective_gateway_responses(definition: &ApiDefinition) -> Vec<GatewayResponse> {
    GATEWAY_RESPONSE_TYPES
        .iter()
        .map(|(kind, _)| effective_gateway_response(definition, kind))
        .collect()
}

/// PutGatewayResponse: the type's own default (not an inherited DEFAULT_4XX/5XX one) with the
/// given members over it; a member left out keeps the default (recorded, LS api
/// `test_gateway_response_put`).
pub(super) fn put_gateway_response(
    definition: &mut ApiDefinition,
    response: &GatewayResponse,
) -> Result<(), Refusal> {
    check_response_type(&response.response_type)?;
    if let Some(status) = &response.status_code {
        check_status_code(status)?;
    }
    let mut stored = default_gateway_response(&response.response_type);
    if response.status_code.is_some() {
        stored.status_code = response.status_code.clone();
    }
    stored.response_parameters = response.response_parameters.clone();
    if !response.response_templates.is_empty() {
        stored.response_templates = response.response_templates.clone();
    }
    stored.default_response = false;
    match definition
        .gateway_responses
        .iter_mut()
        .find(|known| known.response_type == stored.response_type)
    {
        Some(known) => *known = stored,
        None => definition.gateway_responses.push(stored),
    }
    Ok(())
}

/// UpdateGatewayResponse: on a type not customised yet it starts from the type's default and
/// customises it (recorded, LS api `test_update_gateway_response`).
pub(super) fn update_gateway_response(
    definition: &mut ApiDefinition,
    response_type: &str,
    patch: &[PatchOperation],
) -> Result<(), Refusal> {
    check_response_type(response_type)?;
    let position = definition
        .gateway_responses
        .iter()
        .position(|known| known.response_type == response_type);
    let mut response = match position {
        Some(index) => definition.gateway_responses[index].clone(),
        None => default_gateway_response(response_type),
    };
    for operation in patch {
        check_op(operation)?;
        patch_gateway_response(&mut response, operation)?;
    }
    response.default_response = false;
    match position {
        Some(index) => definition.gateway_responses[index] = response,
        None => definition.gateway_responses.push(response),
    }
    Ok(())
}

pub(super) fn invalid_patch_path(path: &str) -> Refusal {
    let shown = if path.is_empty() { "null" } else { path };
    bad(format!("Invalid patch path {shown}"))
}

/// One map member of a gateway response (`/responseParameters/{name}` or
/// `/responseTemplates/{content type}`): `add` sets it, `replace` needs it to exist, `remove`
/// drops it.
fn patch_map_member(
    map: &mut StringMap,
    key: String,
    operation: &PatchOperation,
    member: &str,
    missing: &str,
) -> Result<(), Refusal> {
    let value = || {
        operation
            .value
            .as_deref()
            .filter(|value| !value.is_empty())
            .map(str::to_string)
            .ok_or_else(|| bad(format!("Invalid null or empty value in {member}")))
    };
    match operation.op.as_str() {
        "add" => {
            map.insert(key, value()?);
        }
        "replace" => {
            if !map.contains_key(&key) {
                return Err(Refusal::NotFound(missing.to_string()));
            }
            map.insert(key, value()?);
        }
        "remove" => {
            if map.remove(&key).is_none() {
                return Err(Refusal::NotFound(missing.to_string()));
            }
        }
        _ => return Err(unsupported_op()),
    }
    Ok(())
}

fn patch_gateway_response(
    response: &mut GatewayResponse,
    operation: &PatchOperation,
) -> Result<(), Refusal> {
    let path = operation.path.as_str();
    if path == "/statusCode" {
        // AWS refuses add and remove here with the path's text (recorded).
        if operation.op != "replace" {
            return Err(invalid_patch_path(path));
        }
        let status = required_value(operation)?;
        check_status_code(status)?;
        response.status_code = Some(status.to_string());
        return Ok(());
    }
    if let Some(name) = path.strip_prefix("/responseParameters/")
        && !name.is_empty()
    {
        return patch_map_member(
            &mut response.response_parameters,
            unescape_pointer(name),
            operation,
            "responseParameters",
            "Invalid parameter name specified",
        );
    }
    if let Some(content_type) = path.strip_prefix("/responseTemplates/")
        && !content_type.is_empty()
    {
        return patch_map_member(
            &mut response.response_templates,
            unescape_pointer(content_type),
            operation,
            "responseTemplates",
            "Content-Type specified was not found",
        );
    }
    Err(invalid_patch_path(path))
}

pub(super) fn delete_gateway_response(
    definition: &mut ApiDefinition,
    response_type: &str,
) -> Result<(), Refusal> {
    check_response_type(response_type)?;
    let before = definition.gateway_responses.len();
    definition
        .gateway_responses
        .retain(|known| known.response_type != response_type);
    if definition.gateway_responses.len() == before {
        // Recorded: LS api `test_gateway_response_validation` `delete-gateway-response-not-set`.
        return Err(Refusal::NotFound(
            "Gateway response type not defined on api".to_string(),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Authorizers

pub(super) fn authorizer_not_found() -> Refusal {
    Refusal::NotFound("Invalid Authorizer identifier specified".to_string())
}

/// A header mapping expression `method.request.header.NAME` (the only identity source a TOKEN
/// or COGNITO_USER_POOLS authorizer may have).
fn is_header_expression(source: &str) -> bool {
    source
        .strip_prefix("method.request.header.")
        .is_some_and(is_parameter_name)
}

fn is_parameter_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// One REQUEST identity source: a header, query string, stage variable or context variable.
fn is_request_source(source: &str) -> bool {
    [
        "method.request.header.",
        "method.request.querystring.",
        "stageVariables.",
        "context.",
    ]
    .iter()
    .any(|prefix| source.strip_prefix(prefix).is_some_and(is_parameter_name))
}

/// Checks an authorizer the way CreateAuthorizer and UpdateAuthorizer do; the error is the
/// BadRequestException's message.
pub fn check_authorizer(authorizer: &Authorizer) -> Result<(), String> {
    if authorizer.name.is_empty() {
        return Err(String::from("Authorizer name must not be empty"));
    }
    let kind = authorizer.authorizer_type.as_str();
    if !AUTHORIZER_TYPES.contains(&kind) {
        if kind == "JWT" {
            return Err(String::from(
                "Authorizer type JWT is only supported by HTTP APIs; REST APIs accept TOKEN, REQUEST and COGNITO_USER_POOLS",
            ));
        }
        return Err(format!(
            "1 validation error detected: Value '{kind}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [TOKEN, COGNITO_USER_POOLS, REQUEST, JWT]"
        ));
    }
    if let Some(ttl) = authorizer.authorizer_result_ttl_in_seconds
        && !(0..=AUTHORIZER_TTL_MAX_SECONDS).contains(&ttl)
    {
        return Err(format!(
            "Invalid authorizer result TTL specified: {ttl}. It must be between 0 and {AUTHORIZER_TTL_MAX_SECONDS} seconds"
        ));
    }
    let source = authorizer.identity_source.as_deref().unwrap_or("");
    match kind {
        "TOKEN" | "COGNITO_USER_POOLS" => {
            if !is_header_expression(source) {
                // AWS's text for a TOKEN authorizer (reported from AWS by users of the
                // Serverless framework and the CDK, not recorded here).
                return Err(format!(
                    "Invalid token source expression: {}. The source must be a method request header, matching 'method.request.header.[a-zA-Z0-9._-]+'",
                    if source.is_empty() { "null" } else { source }
                ));
            }
        }
        _ => {
            let ttl = authorizer
                .authorizer_result_ttl_in_seconds
                .unwrap_or(AUTHORIZER_TTL_DEFAULT_SECONDS);
            if source.trim().is_empty() {
                if ttl > 0 {
                    return Err(String::from(
                        "An identity source is required for a REQUEST authorizer while authorization caching is enabled (authorizerResultTtlInSeconds > 0)",
                    ));
                }
            } else {
                for part in source.split(',').map(str::trim) {
                    if !is_request_source(part) {
                        return Err(format!(
                            "Invalid identity source expression: {part}. Each source must be method.request.header.NAME, method.request.querystring.NAME, stageVariables.NAME or context.NAME"
                        ));
                    }
                }
            }
        }
    }
    if let Some(expression) = &authorizer.identity_validation_expression
        && kind == "TOKEN"
        && expression.is_empty()
    {
        return Err(String::from(
            "Invalid identity validation expression: it must not be empty",
        ));
    }
    match kind {
        "TOKEN" | "REQUEST" => {
            let uri = authorizer.authorizer_uri.as_deref().unwrap_or("");
            if uri.is_empty() {
                return Err(format!(
                    "Authorizer URI is required for authorizer type {kind}"
                ));
            }
            if !(uri.starts_with("arn:")
                && uri.contains(":lambda:path/")
                && uri.ends_with("/invocations"))
            {
                return Err(format!(
                    "Invalid Authorizer URI: {uri}. Authorizer URI should be a valid API Gateway ARN that represents a Lambda function invocation."
                ));
            }
        }
        _ => {
            if authorizer.provider_arns.is_empty() {
                return Err(String::from(
                    "ProviderARNs are required for authorizer type COGNITO_USER_POOLS",
                ));
            }
            for arn in &authorizer.provider_arns {
                if !(arn.starts_with("arn:")
                    && arn.contains(":cognito-idp:")
                    && arn.contains(":userpool/"))
                {
                    return Err(format!(
                        "Invalid provider ARN specified: {arn}. It must have the form arn:aws:cognito-idp:{{region}}:{{account_id}}:userpool/{{user_pool_id}}"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// AWS's text for a second authorizer of the same name, as users of the CDK report it (not
/// recorded here).
fn duplicate_name(name: &str) -> Refusal {
    bad(format!(
        "Authorizer name must be unique. Authorizer {name} already exists in this RestApi."
    ))
}

pub(super) fn create_authorizer(
    definition: &mut ApiDefinition,
    authorizer: &Authorizer,
) -> Result<(), Refusal> {
    check_authorizer(authorizer).map_err(Refusal::BadRequest)?;
    if authorizer.id.is_empty()
        || definition
            .authorizers
            .iter()
            .any(|known| known.id == authorizer.id)
    {
        return Err(Refusal::Conflict(format!(
            "Authorizer identifier {} already exists",
            authorizer.id
        )));
    }
    if definition
        .authorizers
        .iter()
        .any(|known| known.name == authorizer.name)
    {
        return Err(duplicate_name(&authorizer.name));
    }
    definition.authorizers.push(authorizer.clone());
    Ok(())
}

fn optional_value(operation: &PatchOperation) -> Option<String> {
    if operation.op == "remove" {
        return None;
    }
    operation.value.clone().filter(|value| !value.is_empty())
}

/// For a list member patched as `{list}` (the item is the value) or `{list}/{item}` (the item
/// is in the path, JSON-pointer escaped): `Some(item named in the path)`, or `None` when the
/// path is not this list's.
fn list_member(path: &str, list: &str) -> Option<Option<String>> {
    if path == list {
        return Some(None);
    }
    let item = path.strip_prefix(list)?.strip_prefix('/')?;
    Some(Some(unescape_pointer(item)).filter(|item| !item.is_empty()))
}

/// Patches a list of strings: add one (once), remove one (or all without a value), replace the
/// named one by the value (`missing` refuses when it is absent; else the value is added), or
/// replace the whole list by the value.
fn patch_list(
    list: &mut Vec<String>,
    named: Option<String>,
    operation: &PatchOperation,
    missing: Option<impl Fn(&str) -> Refusal>,
) -> Result<(), Refusal> {
    match operation.op.as_str() {
        "add" => {
            let item = match named {
                Some(item) => item,
                None => required_value(operation)?.to_string(),
            };
            if !list.contains(&item) {
                list.push(item);
            }
        }
        "remove" => match named.or_else(|| operation.value.clone()) {
            Some(item) => list.retain(|known| *known != item),
            None => list.clear(),
        },
        _ => {
            let value = required_value(operation)?.to_string();
            match named {
                Some(old) => match (list.iter().position(|known| *known == old), missing) {
                    (Some(index), _) => {
                        list[index] = value;
                        // A replacement already in the list is not kept twice.
                        let mut seen = std::collections::BTreeSet::new();
                        list.retain(|item| seen.insert(item.clone()));
                    }
                    (None, Some(missing)) => return Err(missing(&old)),
                    (None, None) => {
                        if !list.contains(&value) {
                            list.push(value);
                        }
                    }
                },
                None => *list = vec![value],
            }
        }
    }
    Ok(())
}

fn patch_authorizer(
    authorizer: &mut Authorizer,
    operation: &PatchOperation,
) -> Result<(), Refusal> {
    check_op(operation)?;
    let op = operation.op.as_str();
    let path = operation.path.as_str();
    if !matches!(op, "add" | "remove" | "replace") {
        return Err(unsupported_op());
    }
    // `/providerARNs` takes one ARN per op (add / remove); replace swaps the whole list for one
    // ARN. `/providerARNs/{arn}` names the ARN in the path instead (JSON-pointer escaped).
    if let Some(named) = list_member(path, "/providerARNs") {
        return patch_list(
            &mut authorizer.provider_arns,
            named,
            operation,
            Some(|old: &str| {
                Refusal::NotFound(format!(
                    "Invalid provider ARN specified: {old} is not a provider of this authorizer"
                ))
            }),
        );
    }
    match path {
        "/name" => {
            if op != "replace" {
                return Err(bad(
                    "Invalid patch operation specified. Must be one of: [replace]",
                ));
            }
            authorizer.name = required_value(operation)?.to_string();
        }
        "/type" => {
            if op != "replace" {
                return Err(bad(
                    "Invalid patch operation specified. Must be one of: [replace]",
                ));
            }
            authorizer.authorizer_type = required_value(operation)?.to_string();
        }
        "/identitySource" => authorizer.identity_source = optional_value(operation),
        "/identityValidationExpression" => {
            authorizer.identity_validation_expression = optional_value(operation);
        }
        "/authorizerUri" => authorizer.authorizer_uri = optional_value(operation),
        "/authorizerCredentials" => {
            authorizer.authorizer_credentials = optional_value(operation);
        }
        "/authType" => authorizer.auth_type = optional_value(operation),
        "/authorizerResultTtlInSeconds" => {
            authorizer.authorizer_result_ttl_in_seconds = match optional_value(operation) {
                None => None,
                Some(text) => Some(text.parse::<i32>().map_err(|_| {
                    bad(format!(
                        "Invalid authorizer result TTL specified: {text}. It must be between 0 and {AUTHORIZER_TTL_MAX_SECONDS} seconds"
                    ))
                })?),
            };
        }
        _ => return Err(invalid_patch_path(path)),
    }
    Ok(())
}

/// UpdateAuthorizer: every op applies to a copy, then the result is checked as a whole (so a
/// patch may change the type and the members it needs together).
pub(super) fn update_authorizer(
    definition: &mut ApiDefinition,
    authorizer_id: &str,
    patch: &[PatchOperation],
) -> Result<(), Refusal> {
    let position = definition
        .authorizers
        .iter()
        .position(|known| known.id == authorizer_id)
        .ok_or_else(authorizer_not_found)?;
    let mut authorizer = definition.authorizers[position].clone();
    for operation in patch {
        patch_authorizer(&mut authorizer, operation)?;
    }
    check_authorizer(&authorizer).map_err(Refusal::BadRequest)?;
    if definition
        .authorizers
        .iter()
        .any(|known| known.id != authorizer.id && known.name == authorizer.name)
    {
        return Err(duplicate_name(&authorizer.name));
    }
    // A method of a type the authorizer no longer serves would be left unusable.
    let serves = |authorization_type: &str| match authorization_type {
        "CUSTOM" => matches!(authorizer.authorizer_type.as_str(), "TOKEN" | "REQUEST"),
        "COGNITO_USER_POOLS" => authorizer.authorizer_type == "COGNITO_USER_POOLS",
        _ => true,
    };
    if let Some((verb, path)) = methods_using(definition, authorizer_id)
        .into_iter()
        .find(|(_, _, authorization_type)| !serves(authorization_type))
        .map(|(verb, path, _)| (verb, path))
    {
        return Err(Refusal::Conflict(format!(
            "Cannot change authorizer {authorizer_id} to type {}: it is used by method {verb} {path} with a different authorization type",
            authorizer.authorizer_type
        )));
    }
    definition.authorizers[position] = authorizer;
    Ok(())
}

/// `(verb, resource path, authorizationType)` of every method naming `authorizer_id`.
fn methods_using(definition: &ApiDefinition, authorizer_id: &str) -> Vec<(String, String, String)> {
    definition
        .resources
        .iter()
        .flat_map(|resource| {
            resource
                .resource_methods
                .iter()
                .filter(|(_, method)| method.authorizer_id.as_deref() == Some(authorizer_id))
                .map(|(verb, method)| {
                    (
                        verb.clone(),
                        resource.path.clone(),
                        method.authorization_type.clone(),
                    )
                })
        })
        .collect()
}

pub(super) fn delete_authorizer(
    definition: &mut ApiDefinition,
    authorizer_id: &str,
) -> Result<(), Refusal> {
    let position = definition
        .authorizers
        .iter()
        .position(|known| known.id == authorizer_id)
        .ok_or_else(authorizer_not_found)?;
    if let Some((verb, path, _)) = methods_using(definition, authorizer_id).into_iter().next() {
        return Err(Refusal::Conflict(format!(
            "Cannot delete authorizer '{}', is referenced in method: {verb} {path}",
            definition.authorizers[position].name
        )));
    }
    definition.authorizers.remove(position);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// UpdateMethod

/// The authorizer rules shared by PutMethod and UpdateMethod, on the method's final state: a
/// CUSTOM method needs a TOKEN or REQUEST authorizer of the API, a COGNITO_USER_POOLS method a
/// COGNITO_USER_POOLS one (recorded text, AWS-FACTS §1); any other type drops `authorizerId`
/// and the scopes' authorizer (recorded, LS api `test_update_method_validation`
/// `skip-auth-id-with-wrong-type`: AWS ignores an authorizer id on a NONE method).
pub(super) fn settle_method_authorization(
    definition: &ApiDefinition,
    method: &mut crate::model::Method,
) -> Result<(), Refusal> {
    if !AUTHORIZATION_TYPES.contains(&method.authorization_type.as_str()) {
        return Err(bad(format!(
            "1 validation error detected: Value '{}' at 'authorizationType' failed to satisfy constraint: Member must satisfy enum value set: [NONE, AWS_IAM, CUSTOM, COGNITO_USER_POOLS]",
            method.authorization_type
        )));
    }
    let wanted: &[&str] = match method.authorization_type.as_str() {
        "CUSTOM" => &["TOKEN", "REQUEST"],
        "COGNITO_USER_POOLS" => &["COGNITO_USER_POOLS"],
        _ => {
            method.authorizer_id = None;
            return Ok(());
        }
    };
    let valid = method.authorizer_id.as_ref().is_some_and(|id| {
        definition.authorizers.iter().any(|authorizer| {
            &authorizer.id == id && wanted.contains(&authorizer.authorizer_type.as_str())
        })
    });
    if !valid {
        return Err(bad(
            "Invalid authorizer ID specified. Setting the authorization type to CUSTOM or COGNITO_USER_POOLS requires a valid authorizer.",
        ));
    }
    Ok(())
}

/// Java's `Boolean.parseBoolean`: AWS turns `/apiKeyRequired = "whatever"` into false
/// (recorded, LS api `test_update_method_validation` `wrong-value-type`).
pub(super) fn java_bool(operation: &PatchOperation) -> bool {
    operation
        .value
        .as_deref()
        .is_some_and(|value| value.eq_ignore_ascii_case("true"))
}

fn replace_only(operation: &PatchOperation) -> Result<(), Refusal> {
    if operation.op == "replace" {
        Ok(())
    } else {
        Err(bad(
            "Invalid patch operation specified. Must be one of: [replace]",
        ))
    }
}

fn patch_method(
    method: &mut crate::model::Method,
    operation: &PatchOperation,
    definition: &ApiDefinition,
) -> Result<(), Refusal> {
    check_op(operation)?;
    let op = operation.op.as_str();
    let path = operation.path.as_str();
    if !matches!(op, "add" | "remove" | "replace") {
        return Err(unsupported_op());
    }
    if let Some(name) = path.strip_prefix("/requestParameters/") {
        let name = unescape_pointer(name);
        if name.is_empty() || name.contains('/') {
            return Err(invalid_patch_path(path));
        }
        match op {
            "remove" => {
                method.request_parameters.remove(&name);
            }
            _ => {
                method.request_parameters.insert(name, java_bool(operation));
            }
        }
        return Ok(());
    }
    if let Some(content_type) = path.strip_prefix("/requestModels/") {
        // One pointer segment: `application~1json` (recorded: `/requestModels/application/json`
        // is refused as an invalid path).
        if content_type.is_empty() || content_type.contains('/') {
            return Err(invalid_patch_path(path));
        }
        let content_type = unescape_pointer(content_type);
        match op {
            "remove" => {
                method.request_models.remove(&content_type);
            }
            _ => {
                let model = required_value(operation)?.to_string();
                let known = BUILTIN_MODELS.contains(&model.as_str())
                    || definition.models.iter().any(|known| known.name == model);
                if !known {
                    return Err(bad(format!("Invalid model identifier specified: {model}")));
                }
                method.request_models.insert(content_type, model);
            }
        }
        return Ok(());
    }
    // Scopes: `/authorizationScopes` with the scope as the value (add / remove one, replace
    // the whole list with one), or `/authorizationScopes/{scope}`.
    if let Some(named) = list_member(path, "/authorizationScopes") {
        return patch_list(
            &mut method.authorization_scopes,
            named,
            operation,
            None::<fn(&str) -> Refusal>,
        );
    }
    match path {
        "/authorizationType" => {
            replace_only(operation)?;
            method.authorization_type = required_value(operation)?.to_string();
        }
        "/authorizerId" => {
            replace_only(operation)?;
            method.authorizer_id = operation.value.clone().filter(|value| !value.is_empty());
        }
        "/apiKeyRequired" => {
            replace_only(operation)?;
            method.api_key_required = java_bool(operation);
        }
        "/operationName" => {
            replace_only(operation)?;
            method.operation_name = operation.value.clone().filter(|value| !value.is_empty());
        }
        "/requestValidatorId" => {
            replace_only(operation)?;
            method.request_validator_id = operation.value.clone().filter(|value| !value.is_empty());
            if let Some(validator_id) = &method.request_validator_id
                && !definition
                    .request_validators
                    .iter()
                    .any(|validator| &validator.id == validator_id)
            {
                return Err(bad("Invalid Request Validator identifier specified"));
            }
        }
        _ => return Err(invalid_patch_path(path)),
    }
    Ok(())
}

/// UpdateMethod: the ops apply in order to a copy of the method; the authorization rules are
/// checked on the result (recorded: `/authorizerId` then `/authorizationType CUSTOM` in one
/// patch is accepted).
pub(super) fn update_method(
    definition: &mut ApiDefinition,
    resource_id: &str,
    http_method: &str,
    patch: &[PatchOperation],
) -> Result<(), Refusal> {
    // The method is edited as a copy while the definition is only read (no copy of the
    // definition: a 10,000-route one is tens of MB), then put back.
    let mut updated = method_mut(definition, resource_id, http_method)?.clone();
    for operation in patch {
        patch_method(&mut updated, operation, definition)?;
    }
    settle_method_authorization(definition, &mut updated)?;
    *method_mut(definition, resource_id, http_method)? = updated;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// FlushStageAuthorizersCache

/// The key of a stage in [`GatewayState::authorizer_generations`] (the same as
/// [`super::cache_generation_key`]).
pub fn authorizer_generation_key(api_id: &str, stage_name: &str) -> String {
    super::cache_generation_key(api_id, stage_name)
}

pub(super) fn flush_stage_authorizers_cache(
    state: &mut GatewayState,
    api_id: &str,
    stage_name: &str,
) -> Result<(), Refusal> {
    let api = state
        .apis
        .get(api_id)
        .ok_or_else(|| super::api_not_found(api_id))?;
    if !api
        .stages
        .iter()
        .any(|stage| stage.stage_name == stage_name)
    {
        return Err(stage_not_found(stage_name));
    }
    let generation = state
        .authorizer_generations
        .entry(authorizer_generation_key(api_id, stage_name))
        .or_insert(0);
    *generation = generation.wrapping_add(1);
    Ok(())
}

#[cfg(test)]
mod tests;
