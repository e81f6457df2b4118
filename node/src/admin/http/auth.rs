//! The management side of authorization (botocore `apigateway` 2015-07-09): authorizers,
//! UpdateMethod, gateway responses, FlushStageAuthorizersCache and the checks on a REST API's
//! resource policy.
//!
//! State-dependent rules (does the authorizer exist, is it used by a method) live in
//! `portico_proto::admin::apply`; this layer parses bodies and renders AWS's shapes, matched
//! against the responses recorded from AWS in LocalStack's validated snapshots (AWS-FACTS §1):
//! an authorizer renders only the members that are set (an unset TTL stays absent), a gateway
//! response always carries `responseParameters` and `responseTemplates`, and DEFAULT_4XX /
//! DEFAULT_5XX carry no `statusCode` until one is set.

use http::StatusCode;
use portico_proto::admin::{self as ops, AdminOp, PatchOperation};
use portico_proto::{ApiDefinition, Authorizer, GatewayResponse};
use serde_json::{Map, Value, json};

use super::{AdminApi, ApiError, Call, Outcome, api, empty, json_response, page};
use crate::admin::render;

fn refusal(refusal: portico_proto::cluster::Refusal) -> ApiError {
    crate::admin::control::ControlError::Refused(refusal).into()
}

fn authorizer_not_found() -> ApiError {
    ApiError::not_found("Invalid Authorizer identifier specified")
}

// === rendering ===

fn put_opt(out: &mut Map<String, Value>, key: &str, value: Option<&String>) {
    if let Some(value) = value {
        out.insert(key.into(), json!(value));
    }
}

/// An authorizer: the members that are set (recorded, LS basic
/// `test_apigateway_with_custom_authorization_method` and LS import `get-authorizers`).
pub fn render_authorizer(authorizer: &Authorizer) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(authorizer.id));
    out.insert("name".into(), json!(authorizer.name));
    out.insert("type".into(), json!(authorizer.authorizer_type));
    if !authorizer.provider_arns.is_empty() {
        out.insert("providerARNs".into(), json!(authorizer.provider_arns));
    }
    put_opt(&mut out, "authType", authorizer.auth_type.as_ref());
    put_opt(
        &mut out,
        "authorizerUri",
        authorizer.authorizer_uri.as_ref(),
    );
    put_opt(
        &mut out,
        "authorizerCredentials",
        authorizer.authorizer_credentials.as_ref(),
    );
    put_opt(
        &mut out,
        "identitySource",
        authorizer.identity_source.as_ref(),
    );
    put_opt(
        &mut out,
        "identityValidationExpression",
        authorizer.identity_validation_expression.as_ref(),
    );
    if let Some(ttl) = authorizer.authorizer_result_ttl_in_seconds {
        out.insert("authorizerResultTtlInSeconds".into(), json!(ttl));
    }
    Value::Object(out)
}

/// A gateway response (recorded, LS api `test_gateway_response_crud`).
pub fn render_gateway_response(response: &GatewayResponse) -> Value {
    let mut out = Map::new();
    out.insert("responseType".into(), json!(response.response_type));
    if let Some(status) = &response.status_code {
        out.insert("statusCode".into(), json!(status));
    }
    out.insert(
        "responseParameters".into(),
        json!(response.response_parameters),
    );
    out.insert(
        "responseTemplates".into(),
        json!(response.response_templates),
    );
    out.insert("defaultResponse".into(), json!(response.default_response));
    Value::Object(out)
}

// === parsing ===

type Object = Map<String, Value>;

fn object(body: &Value) -> Result<&Object, ApiError> {
    static EMPTY: std::sync::OnceLock<Object> = std::sync::OnceLock::new();
    match body {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(EMPTY.get_or_init(Object::new)),
        _ => Err(ApiError::bad_request(
            "Invalid request body: expected a JSON object",
        )),
    }
}

fn opt_string(map: &Object, key: &str) -> Result<Option<String>, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(ApiError::bad_request(format!("'{key}' must be a string"))),
    }
}

fn string_list(map: &Object, key: &str) -> Result<Vec<String>, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str().map(str::to_string).ok_or_else(|| {
                    ApiError::bad_request(format!("'{key}' must be a list of strings"))
                })
            })
            .collect(),
        Some(_) => Err(ApiError::bad_request(format!(
            "'{key}' must be a list of strings"
        ))),
    }
}

fn not_null(at: &str) -> ApiError {
    ApiError::bad_request(format!(
        "1 validation error detected: Value null at '{at}' failed to satisfy constraint: Member must not be null"
    ))
}

/// CreateAuthorizer's body (`name` and `type` are required, as in botocore's model). The
/// authorizer's own rules are checked by the op.
pub fn parse_create_authorizer(body: &Value, id: String) -> Result<Authorizer, ApiError> {
    let map = object(body)?;
    let name = opt_string(map, "name")?.ok_or_else(|| not_null("createAuthorizerInput.name"))?;
    let authorizer_type =
        opt_string(map, "type")?.ok_or_else(|| not_null("createAuthorizerInput.type"))?;
    let ttl = match map.get("authorizerResultTtlInSeconds") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_i64()
                .and_then(|ttl| i32::try_from(ttl).ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Invalid authorizer result TTL specified: {value}. It must be between 0 and {} seconds",
                        ops::AUTHORIZER_TTL_MAX_SECONDS
                    ))
                })?,
        ),
    };
    Ok(Authorizer {
        id,
        name,
        authorizer_type,
        provider_arns: string_list(map, "providerARNs")?,
        auth_type: opt_string(map, "authType")?,
        authorizer_uri: opt_string(map, "authorizerUri")?,
        authorizer_credentials: opt_string(map, "authorizerCredentials")?,
        identity_source: opt_string(map, "identitySource")?,
        identity_validation_expression: opt_string(map, "identityValidationExpression")?,
        authorizer_result_ttl_in_seconds: ttl,
    })
}

/// PutGatewayResponse's body; the type comes from the path.
pub fn parse_put_gateway_response(
    response_type: &str,
    body: &Value,
) -> Result<GatewayResponse, ApiError> {
    let map = object(body)?;
    Ok(GatewayResponse {
        response_type: response_type.to_string(),
        status_code: opt_string(map, "statusCode")?,
        response_parameters: super::string_map_of(map, "responseParameters")?,
        response_templates: super::string_map_of(map, "responseTemplates")?,
        default_response: false,
    })
}

/// The text refused for a resource policy that is not a JSON object (ours: AWS's text for
/// this case was not recorded).
const INVALID_POLICY: &str =
    "Invalid policy document. Please check the policy syntax and try again.";

/// A REST API's resource policy must be a JSON object (AWS keeps it as text).
pub fn check_policy(policy: &str) -> Result<(), ApiError> {
    match serde_json::from_str::<Value>(policy) {
        Ok(Value::Object(_)) => Ok(()),
        _ => Err(ApiError::bad_request(INVALID_POLICY)),
    }
}

/// The `/policy` values of an UpdateRestApi patch, checked before the write.
pub fn check_policy_patch(patch: &[PatchOperation]) -> Result<(), ApiError> {
    for operation in patch {
        if operation.path == "/policy"
            && matches!(operation.op.as_str(), "add" | "replace")
            && let Some(policy) = operation.value.as_deref().filter(|text| !text.is_empty())
        {
            check_policy(policy)?;
        }
    }
    Ok(())
}

fn authorizer<'d>(definition: &'d ApiDefinition, id: &str) -> Result<&'d Authorizer, ApiError> {
    definition
        .authorizers
        .iter()
        .find(|authorizer| authorizer.id == id)
        .ok_or_else(authorizer_not_found)
}

impl AdminApi {
    /// `/restapis/{id}/authorizers…` and `/restapis/{id}/gatewayresponses…`.
    pub(super) async fn route_auth(&self, call: &Call<'_>) -> Outcome {
        let segments: Vec<&str> = call.segments.iter().map(String::as_str).collect();
        match (call.method.as_str(), segments.as_slice()) {
            ("POST", ["restapis", api_id, "authorizers"]) => {
                self.create_authorizer(call, api_id).await
            }
            ("GET", ["restapis", api_id, "authorizers"]) => {
                let state = self.read().await?;
                let items = api(&state, api_id)?
                    .definition
                    .authorizers
                    .iter()
                    .map(render_authorizer)
                    .collect();
                Ok(json_response(StatusCode::OK, &page(items, call)?))
            }
            ("GET", ["restapis", api_id, "authorizers", authorizer_id]) => {
                let state = self.read().await?;
                let found = authorizer(&api(&state, api_id)?.definition, authorizer_id)?;
                Ok(json_response(StatusCode::OK, &render_authorizer(found)))
            }
            ("PATCH", ["restapis", api_id, "authorizers", authorizer_id]) => {
                let patch = render::parse_patch_for("updateAuthorizerInput", &call.json()?)
                    .map_err(ApiError::bad_request)?;
                let state = self
                    .write(AdminOp::UpdateAuthorizer {
                        api_id: api_id.to_string(),
                        authorizer_id: authorizer_id.to_string(),
                        patch,
                    })
                    .await?;
                let found = authorizer(&api(&state, api_id)?.definition, authorizer_id)?;
                Ok(json_response(StatusCode::OK, &render_authorizer(found)))
            }
            ("POST", ["restapis", api_id, "authorizers", authorizer_id]) => {
                self.test_invoke_authorizer(call, api_id, authorizer_id)
                    .await
            }
            ("DELETE", ["restapis", api_id, "authorizers", authorizer_id]) => {
                self.write(AdminOp::DeleteAuthorizer {
                    api_id: api_id.to_string(),
                    authorizer_id: authorizer_id.to_string(),
                })
                .await?;
                Ok(empty(StatusCode::ACCEPTED))
            }
            // GetGatewayResponses: the whole collection (AWS does not page it).
            ("GET", ["restapis", api_id, "gatewayresponses"]) => {
                let state = self.read().await?;
                let definition = &api(&state, api_id)?.definition;
                let items = ops::effective_gateway_responses(definition)
                    .iter()
                    .map(render_gateway_response)
                    .collect();
                Ok(json_response(
                    StatusCode::OK,
                    &render::render_list(items, None),
                ))
            }
            ("GET", ["restapis", api_id, "gatewayresponses", response_type]) => {
                let state = self.read().await?;
                let definition = &api(&state, api_id)?.definition;
                ops::check_response_type(response_type).map_err(refusal)?;
                Ok(json_response(
                    StatusCode::OK,
                    &render_gateway_response(&ops::effective_gateway_response(
                        definition,
                        response_type,
                    )),
                ))
            }
            ("PUT", ["restapis", api_id, "gatewayresponses", response_type]) => {
                let response = parse_put_gateway_response(response_type, &call.json()?)?;
                let state = self
                    .write(AdminOp::PutGatewayResponse {
                        api_id: api_id.to_string(),
                        response,
                    })
                    .await?;
                let definition = &api(&state, api_id)?.definition;
                Ok(json_response(
                    StatusCode::CREATED,
                    &render_gateway_response(&ops::effective_gateway_response(
                        definition,
                        response_type,
                    )),
                ))
            }
            ("PATCH", ["restapis", api_id, "gatewayresponses", response_type]) => {
                let patch = render::parse_patch_for("updateGatewayResponseInput", &call.json()?)
                    .map_err(ApiError::bad_request)?;
                let state = self
                    .write(AdminOp::UpdateGatewayResponse {
                        api_id: api_id.to_string(),
                        response_type: response_type.to_string(),
                        patch,
                    })
                    .await?;
                let definition = &api(&state, api_id)?.definition;
                Ok(json_response(
                    StatusCode::OK,
                    &render_gateway_response(&ops::effective_gateway_response(
                        definition,
                        response_type,
                    )),
                ))
            }
            ("DELETE", ["restapis", api_id, "gatewayresponses", response_type]) => {
                self.write(AdminOp::DeleteGatewayResponse {
                    api_id: api_id.to_string(),
                    response_type: response_type.to_string(),
                })
                .await?;
                Ok(empty(StatusCode::ACCEPTED))
            }
            _ => Err(super::unknown_operation(call)),
        }
    }

    async fn create_authorizer(&self, call: &Call<'_>, api_id: &str) -> Outcome {
        let body = call.json()?;
        let parsed = parse_create_authorizer(&body, crate::ids::new_id())?;
        ops::check_authorizer(&parsed).map_err(ApiError::bad_request)?;
        // AWS answers CreateAuthorizer on an unknown API with a 409 (recorded, LS api
        // `test_authorizer_crud_no_api`), after checking the body.
        if !self.read().await?.apis.contains_key(api_id) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "ConflictException",
                "Unable to complete operation due to concurrent modification. Please try again later.",
            ));
        }
        let id = parsed.id.clone();
        let state = self
            .write(AdminOp::CreateAuthorizer {
                api_id: api_id.to_string(),
                authorizer: parsed,
            })
            .await?;
        let created = authorizer(&api(&state, api_id)?.definition, &id)?;
        Ok(json_response(
            StatusCode::CREATED,
            &render_authorizer(created),
        ))
    }

    /// TestInvokeAuthorizer (`POST …/authorizers/{id}`): the authorizer of the working
    /// definition run for real on a simulated request (see `admin::invoke`).
    async fn test_invoke_authorizer(
        &self,
        call: &Call<'_>,
        api_id: &str,
        authorizer_id: &str,
    ) -> Outcome {
        let body = call.json()?;
        let state = self.read().await?;
        let definition = &api(&state, api_id)?.definition;
        let found = authorizer(definition, authorizer_id)?;
        let mut stage =
            portico_proto::Stage::new(super::TEST_INVOKE_STAGE, "test-invoke", call.now);
        stage.variables = super::string_map(&body, "stageVariables")?;
        let report = crate::admin::invoke::test_invoke_authorizer(
            &self.integrations,
            definition,
            found,
            &stage,
            &body,
            self.cognito.as_deref(),
        )
        .await?;
        Ok(json_response(StatusCode::OK, &report))
    }

    /// UpdateMethod (`PATCH …/methods/{verb}`): 200 with the method.
    pub(super) async fn update_method(
        &self,
        call: &Call<'_>,
        api_id: &str,
        resource_id: &str,
        verb: &str,
    ) -> Outcome {
        let patch = render::parse_patch_for("updateMethodInput", &call.json()?)
            .map_err(ApiError::bad_request)?;
        let state = self
            .write(AdminOp::UpdateMethod {
                api_id: api_id.to_string(),
                resource_id: resource_id.to_string(),
                http_method: verb.to_ascii_uppercase(),
                patch,
            })
            .await?;
        let method = super::method(api(&state, api_id)?, resource_id, verb)?;
        Ok(json_response(
            StatusCode::OK,
            &render::render_method(method),
        ))
    }

    /// FlushStageAuthorizersCache (`DELETE …/stages/{stage}/cache/authorizers`): a generation
    /// bump replicated to every edge, 202 as AWS.
    pub(super) async fn flush_stage_authorizers_cache(
        &self,
        api_id: &str,
        stage_name: &str,
    ) -> Outcome {
        self.write(AdminOp::FlushStageAuthorizersCache {
            api_id: api_id.to_string(),
            stage_name: stage_name.to_string(),
        })
        .await?;
        Ok(empty(StatusCode::ACCEPTED))
    }
}

#[cfg(test)]
mod tests;
