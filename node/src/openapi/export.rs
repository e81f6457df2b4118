//! The exporter: [`ApiDefinition`] → OpenAPI 3.0.1 (or Swagger 2.0) with AWS's extensions.
//!
//! It writes everything the model holds, and nothing the importer would not read back, so that
//! import → export → import is the identity (up to generated ids). Members equal to the
//! importer's defaults (a 29 s timeout, a cache namespace equal to the resource id) are left out
//! so exports stay readable and ids from one API do not leak into another on re-import.

use std::collections::BTreeMap;

use portico_proto::{
    ApiDefinition, ApiKeySource, Authorizer, EndpointConfiguration, INTEGRATION_TIMEOUT_MS_DEFAULT,
    Integration, Method, Resource,
};
use serde_json::{Map, Value, json};

/// The security scheme name used for `apiKeyRequired`, as AWS's own exports name it.
const API_KEY_SCHEME: &str = "api_key";

#[derive(Clone, Copy, PartialEq)]
enum Dialect {
    Oas30,
    Swagger2,
}

/// Exports `definition` as an OpenAPI 3.0.1 document with `x-amazon-apigateway-*` extensions.
/// `server_url` becomes the single `servers` entry when given.
pub fn export_oas30(definition: &ApiDefinition, server_url: Option<&str>) -> Value {
    export(definition, server_url, Dialect::Oas30)
}

/// Exports `definition` as a Swagger 2.0 document with `x-amazon-apigateway-*` extensions.
/// `server_url` is split into `host`, `basePath` and `schemes` when given.
pub fn export_swagger2(definition: &ApiDefinition, server_url: Option<&str>) -> Value {
    export(definition, server_url, Dialect::Swagger2)
}

fn schema_ref(dialect: Dialect, model: &str) -> Value {
    let prefix = match dialect {
        Dialect::Oas30 => "#/components/schemas/",
        Dialect::Swagger2 => "#/definitions/",
    };
    let escaped = model.replace('~', "~0").replace('/', "~1");
    json!({ "$ref": format!("{prefix}{escaped}") })
}

/// Rewrites canonical `#/components/schemas/X` references for Swagger's `#/definitions/X`.
fn dialect_schema(dialect: Dialect, value: Value) -> Value {
    if dialect == Dialect::Oas30 {
        return value;
    }
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, item)| {
                    let item = match (key.as_str(), item) {
                        ("$ref", Value::String(reference)) => {
                            Value::String(match reference.strip_prefix("#/components/schemas/") {
                                Some(name) => format!("#/definitions/{name}"),
                                None => reference,
                            })
                        }
                        (_, item) => dialect_schema(dialect, item),
                    };
                    (key, item)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| dialect_schema(dialect, item))
                .collect(),
        ),
        other => other,
    }
}

fn string_map(map: &BTreeMap<String, String>) -> Value {
    Value::Object(
        map.iter()
            .map(|(key, value)| (key.clone(), Value::String(value.clone())))
            .collect(),
    )
}

fn insert_nonempty_map(target: &mut Map<String, Value>, key: &str, map: &BTreeMap<String, String>) {
    if !map.is_empty() {
        target.insert(key.to_string(), string_map(map));
    }
}

fn insert_opt(target: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(value) = value {
        target.insert(key.to_string(), Value::String(value.to_string()));
    }
}

fn export(definition: &ApiDefinition, server_url: Option<&str>, dialect: Dialect) -> Value {
    let api = &definition.api;
    let mut doc = Map::new();
    match dialect {
        Dialect::Oas30 => doc.insert("openapi".into(), json!("3.0.1")),
        Dialect::Swagger2 => doc.insert("swagger".into(), json!("2.0")),
    };
    let mut info = Map::new();
    info.insert("title".into(), json!(api.name));
    insert_opt(&mut info, "description", api.description.as_deref());
    insert_opt(&mut info, "version", api.version.as_deref());
    doc.insert("info".into(), Value::Object(info));
    if let Some(url) = server_url {
        match dialect {
            Dialect::Oas30 => {
                doc.insert("servers".into(), json!([{ "url": url }]));
            }
            Dialect::Swagger2 => {
                let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
                let (host, base_path) = match rest.find('/') {
                    Some(at) => (&rest[..at], &rest[at..]),
                    None => (rest, "/"),
                };
                doc.insert("host".into(), json!(host));
                doc.insert("basePath".into(), json!(base_path));
                doc.insert("schemes".into(), json!([scheme]));
            }
        }
    }

    let api_key_scheme = api_key_scheme_name(definition);
    let mut paths = Map::new();
    for resource in &definition.resources {
        let has_children = definition
            .resources
            .iter()
            .any(|other| other.parent_id.as_deref() == Some(resource.id.as_str()));
        if resource.resource_methods.is_empty() && (has_children || resource.parent_id.is_none()) {
            continue;
        }
        paths.insert(
            resource.path.clone(),
            path_item(definition, resource, dialect, &api_key_scheme),
        );
    }
    doc.insert("paths".into(), Value::Object(paths));

    // Schemas and security schemes.
    let mut schemas = Map::new();
    for model in &definition.models {
        let schema = model
            .schema
            .as_deref()
            .map(|text| {
                serde_json::from_str(text).unwrap_or_else(|_| json!({ "description": text }))
            })
            .unwrap_or_else(|| json!({}));
        schemas.insert(model.name.clone(), dialect_schema(dialect, schema));
    }
    let mut schemes = Map::new();
    for authorizer in &definition.authorizers {
        schemes.insert(authorizer.name.clone(), authorizer_scheme(authorizer));
    }
    let api_key_used = definition
        .resources
        .iter()
        .flat_map(|resource| resource.resource_methods.values())
        .any(|method| method.api_key_required);
    if api_key_used {
        schemes.insert(
            api_key_scheme.clone(),
            json!({ "type": "apiKey", "name": "x-api-key", "in": "header" }),
        );
    }
    match dialect {
        Dialect::Oas30 => {
            let mut components = Map::new();
            if !schemas.is_empty() {
                components.insert("schemas".into(), Value::Object(schemas));
            }
            if !schemes.is_empty() {
                components.insert("securitySchemes".into(), Value::Object(schemes));
            }
            if !components.is_empty() {
                doc.insert("components".into(), Value::Object(components));
            }
        }
        Dialect::Swagger2 => {
            if !schemas.is_empty() {
                doc.insert("definitions".into(), Value::Object(schemas));
            }
            if !schemes.is_empty() {
                doc.insert("securityDefinitions".into(), Value::Object(schemes));
            }
        }
    }

    // Root extensions.
    if api.api_key_source == ApiKeySource::Authorizer {
        doc.insert(
            "x-amazon-apigateway-api-key-source".into(),
            json!("AUTHORIZER"),
        );
    }
    if !api.binary_media_types.is_empty() {
        doc.insert(
            "x-amazon-apigateway-binary-media-types".into(),
            json!(api.binary_media_types),
        );
    }
    if let Some(size) = api.minimum_compression_size {
        doc.insert(
            "x-amazon-apigateway-minimum-compression-size".into(),
            json!(size),
        );
    }
    if let Some(policy) = &api.policy {
        let value = serde_json::from_str::<Value>(policy)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!(policy));
        doc.insert("x-amazon-apigateway-policy".into(), value);
    }
    if api.endpoint_configuration != EndpointConfiguration::default()
        || api.disable_execute_api_endpoint
    {
        let endpoint = &api.endpoint_configuration;
        let mut config = Map::new();
        config.insert("types".into(), json!(endpoint.types));
        if !endpoint.vpc_endpoint_ids.is_empty() {
            config.insert("vpcEndpointIds".into(), json!(endpoint.vpc_endpoint_ids));
        }
        insert_opt(
            &mut config,
            "ipAddressType",
            endpoint.ip_address_type.as_deref(),
        );
        if api.disable_execute_api_endpoint {
            config.insert("disableExecuteApiEndpoint".into(), json!(true));
        }
        doc.insert(
            "x-amazon-apigateway-endpoint-configuration".into(),
            Value::Object(config),
        );
    }
    if !definition.gateway_responses.is_empty() {
        let mut responses = Map::new();
        for response in &definition.gateway_responses {
            let mut item = Map::new();
            insert_opt(&mut item, "statusCode", response.status_code.as_deref());
            insert_nonempty_map(
                &mut item,
                "responseParameters",
                &response.response_parameters,
            );
            insert_nonempty_map(&mut item, "responseTemplates", &response.response_templates);
            responses.insert(response.response_type.clone(), Value::Object(item));
        }
        doc.insert(
            "x-amazon-apigateway-gateway-responses".into(),
            Value::Object(responses),
        );
    }
    if !definition.request_validators.is_empty() {
        let validators: Map<String, Value> = definition
            .request_validators
            .iter()
            .map(|validator| {
                (
                    validator.name.clone(),
                    json!({
                        "validateRequestBody": validator.validate_request_body,
                        "validateRequestParameters": validator.validate_request_parameters,
                    }),
                )
            })
            .collect();
        doc.insert(
            "x-amazon-apigateway-request-validators".into(),
            Value::Object(validators),
        );
    }
    Value::Object(doc)
}

/// `api_key`, unless an authorizer already has that name.
fn api_key_scheme_name(definition: &ApiDefinition) -> String {
    let mut name = API_KEY_SCHEME.to_string();
    while definition
        .authorizers
        .iter()
        .any(|authorizer| authorizer.name == name)
    {
        name.push('_');
    }
    name
}

fn authorizer_scheme(authorizer: &Authorizer) -> Value {
    let header = authorizer
        .identity_source
        .as_deref()
        .and_then(|source| source.strip_prefix("method.request.header."))
        .filter(|header| !header.contains(','))
        .unwrap_or("Unused");
    let mut extension = Map::new();
    extension.insert(
        "type".into(),
        json!(authorizer.authorizer_type.to_ascii_lowercase()),
    );
    insert_opt(
        &mut extension,
        "authorizerUri",
        authorizer.authorizer_uri.as_deref(),
    );
    insert_opt(
        &mut extension,
        "authorizerCredentials",
        authorizer.authorizer_credentials.as_deref(),
    );
    insert_opt(
        &mut extension,
        "identitySource",
        authorizer.identity_source.as_deref(),
    );
    insert_opt(
        &mut extension,
        "identityValidationExpression",
        authorizer.identity_validation_expression.as_deref(),
    );
    if let Some(ttl) = authorizer.authorizer_result_ttl_in_seconds {
        extension.insert("authorizerResultTtlInSeconds".into(), json!(ttl));
    }
    if !authorizer.provider_arns.is_empty() {
        extension.insert("providerARNs".into(), json!(authorizer.provider_arns));
    }
    let mut scheme = Map::new();
    scheme.insert("type".into(), json!("apiKey"));
    scheme.insert("name".into(), json!(header));
    scheme.insert("in".into(), json!("header"));
    insert_opt(
        &mut scheme,
        "x-amazon-apigateway-authtype",
        authorizer.auth_type.as_deref(),
    );
    scheme.insert(
        "x-amazon-apigateway-authorizer".into(),
        Value::Object(extension),
    );
    Value::Object(scheme)
}

fn path_item(
    definition: &ApiDefinition,
    resource: &Resource,
    dialect: Dialect,
    api_key_scheme: &str,
) -> Value {
    let mut item = Map::new();
    for (verb, method) in &resource.resource_methods {
        let key = if verb == "ANY" {
            "x-amazon-apigateway-any-method".to_string()
        } else {
            verb.to_ascii_lowercase()
        };
        item.insert(
            key,
            operation(definition, resource, method, dialect, api_key_scheme),
        );
    }
    Value::Object(item)
}

fn operation(
    definition: &ApiDefinition,
    resource: &Resource,
    method: &Method,
    dialect: Dialect,
    api_key_scheme: &str,
) -> Value {
    let mut op = Map::new();
    insert_opt(&mut op, "operationId", method.operation_name.as_deref());

    let mut parameters = Vec::new();
    for (key, required) in &method.request_parameters {
        let Some(rest) = key.strip_prefix("method.request.") else {
            continue;
        };
        let Some((location, name)) = rest.split_once('.') else {
            continue;
        };
        let location = match location {
            "path" => "path",
            "querystring" => "query",
            "header" => "header",
            _ => continue,
        };
        let mut parameter = Map::new();
        parameter.insert("name".into(), json!(name));
        parameter.insert("in".into(), json!(location));
        if *required || location == "path" {
            parameter.insert("required".into(), json!(true));
        }
        match dialect {
            Dialect::Oas30 => parameter.insert("schema".into(), json!({ "type": "string" })),
            Dialect::Swagger2 => parameter.insert("type".into(), json!("string")),
        };
        parameters.push(Value::Object(parameter));
    }
    if !method.request_models.is_empty() {
        match dialect {
            Dialect::Oas30 => {
                let content: Map<String, Value> = method
                    .request_models
                    .iter()
                    .map(|(content_type, model)| {
                        (
                            content_type.clone(),
                            json!({ "schema": schema_ref(dialect, model) }),
                        )
                    })
                    .collect();
                op.insert("requestBody".into(), json!({ "content": content }));
            }
            Dialect::Swagger2 => {
                // Swagger has one body schema per operation; the content types go to
                // `consumes`. Differing models per content type cannot be expressed.
                let consumes: Vec<&String> = method.request_models.keys().collect();
                if let Some(model) = method.request_models.values().next() {
                    parameters.push(json!({
                        "in": "body",
                        "name": model,
                        "required": true,
                        "schema": schema_ref(dialect, model),
                    }));
                }
                op.insert("consumes".into(), json!(consumes));
            }
        }
    }
    if !parameters.is_empty() {
        op.insert("parameters".into(), Value::Array(parameters));
    }

    let mut responses = Map::new();
    let mut produces: Vec<String> = Vec::new();
    for (code, response) in &method.method_responses {
        let mut item = Map::new();
        item.insert("description".into(), json!(format!("{code} response")));
        if !response.response_parameters.is_empty() {
            let headers: Map<String, Value> = response
                .response_parameters
                .iter()
                .filter_map(|(key, required)| {
                    let name = key.strip_prefix("method.response.header.")?;
                    let mut header = Map::new();
                    match dialect {
                        Dialect::Oas30 => {
                            header.insert("schema".into(), json!({ "type": "string" }))
                        }
                        Dialect::Swagger2 => header.insert("type".into(), json!("string")),
                    };
                    if *required {
                        header.insert("required".into(), json!(true));
                    }
                    Some((name.to_string(), Value::Object(header)))
                })
                .collect();
            item.insert("headers".into(), Value::Object(headers));
        }
        if !response.response_models.is_empty() {
            match dialect {
                Dialect::Oas30 => {
                    let content: Map<String, Value> = response
                        .response_models
                        .iter()
                        .map(|(content_type, model)| {
                            (
                                content_type.clone(),
                                json!({ "schema": schema_ref(dialect, model) }),
                            )
                        })
                        .collect();
                    item.insert("content".into(), Value::Object(content));
                }
                Dialect::Swagger2 => {
                    if let Some(model) = response.response_models.values().next() {
                        item.insert("schema".into(), schema_ref(dialect, model));
                    }
                    for content_type in response.response_models.keys() {
                        if !produces.contains(content_type) {
                            produces.push(content_type.clone());
                        }
                    }
                }
            }
        }
        responses.insert(code.clone(), Value::Object(item));
    }
    if !produces.is_empty() {
        op.insert("produces".into(), json!(produces));
    }
    op.insert("responses".into(), Value::Object(responses));

    // Security.
    let mut requirement = Map::new();
    if matches!(
        method.authorization_type.as_str(),
        "CUSTOM" | "COGNITO_USER_POOLS"
    ) && let Some(authorizer) = method.authorizer_id.as_deref().and_then(|id| {
        definition
            .authorizers
            .iter()
            .find(|authorizer| authorizer.id == id)
    }) {
        requirement.insert(authorizer.name.clone(), json!(method.authorization_scopes));
    }
    if method.api_key_required {
        requirement.insert(api_key_scheme.to_string(), json!([]));
    }
    if !requirement.is_empty() {
        op.insert("security".into(), json!([requirement]));
    }
    if method.authorization_type == "AWS_IAM" {
        op.insert(
            "x-amazon-apigateway-auth".into(),
            json!({ "type": "AWS_IAM" }),
        );
    }
    if let Some(validator) = method.request_validator_id.as_deref().and_then(|id| {
        definition
            .request_validators
            .iter()
            .find(|validator| validator.id == id)
    }) {
        op.insert(
            "x-amazon-apigateway-request-validator".into(),
            json!(validator.name),
        );
    }
    if let Some(integration) = &method.method_integration {
        op.insert(
            "x-amazon-apigateway-integration".into(),
            integration_value(integration, resource),
        );
    }
    Value::Object(op)
}

fn integration_value(integration: &Integration, resource: &Resource) -> Value {
    let mut out = Map::new();
    out.insert(
        "type".into(),
        json!(integration.integration_type.as_str().to_ascii_lowercase()),
    );
    insert_opt(&mut out, "httpMethod", integration.http_method.as_deref());
    insert_opt(&mut out, "uri", integration.uri.as_deref());
    insert_opt(
        &mut out,
        "connectionType",
        integration.connection_type.as_deref(),
    );
    insert_opt(
        &mut out,
        "connectionId",
        integration.connection_id.as_deref(),
    );
    insert_opt(&mut out, "credentials", integration.credentials.as_deref());
    insert_nonempty_map(
        &mut out,
        "requestParameters",
        &integration.request_parameters,
    );
    insert_nonempty_map(&mut out, "requestTemplates", &integration.request_templates);
    out.insert(
        "passthroughBehavior".into(),
        json!(
            integration
                .passthrough_behavior
                .as_str()
                .to_ascii_lowercase()
        ),
    );
    if let Some(handling) = integration.content_handling {
        out.insert("contentHandling".into(), json!(handling.as_str()));
    }
    if integration.timeout_in_millis != INTEGRATION_TIMEOUT_MS_DEFAULT {
        out.insert(
            "timeoutInMillis".into(),
            json!(integration.timeout_in_millis),
        );
    }
    // The default namespace is the resource's own id, which a re-import assigns afresh.
    if let Some(namespace) = integration
        .cache_namespace
        .as_deref()
        .filter(|namespace| *namespace != resource.id)
    {
        out.insert("cacheNamespace".into(), json!(namespace));
    }
    if !integration.cache_key_parameters.is_empty() {
        out.insert(
            "cacheKeyParameters".into(),
            json!(integration.cache_key_parameters),
        );
    }
    if let Some(tls) = &integration.tls_config {
        out.insert(
            "tlsConfig".into(),
            json!({ "insecureSkipVerification": tls.insecure_skip_verification }),
        );
    }
    if !integration.integration_responses.is_empty() {
        let mut responses = Map::new();
        for response in integration.integration_responses.values() {
            let mut item = Map::new();
            item.insert("statusCode".into(), json!(response.status_code));
            insert_nonempty_map(
                &mut item,
                "responseParameters",
                &response.response_parameters,
            );
            insert_nonempty_map(&mut item, "responseTemplates", &response.response_templates);
            if let Some(handling) = response.content_handling {
                item.insert("contentHandling".into(), json!(handling.as_str()));
            }
            let key = response
                .selection_pattern
                .clone()
                .unwrap_or_else(|| "default".to_string());
            responses.insert(key, Value::Object(item));
        }
        out.insert("responses".into(), Value::Object(responses));
    }
    Value::Object(out)
}
