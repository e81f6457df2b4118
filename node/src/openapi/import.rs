//! The importer: text → JSON value → validated [`ApiDefinition`].
//!
//! It walks the document once, collecting every error and warning instead of stopping at the
//! first, because users fix documents in batches. Every `x-amazon-apigateway-*` key it
//! understands is marked as consumed; at the end the rest are reported as ignored, so no AWS
//! extension ever disappears without a word.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::LazyLock;

use percent_encoding::percent_decode_str;
use portico_proto::{
    ApiDefinition, ApiKeySource, Authorizer, ContentHandling, EndpointConfiguration,
    GatewayResponse, INTEGRATION_TIMEOUT_MS_MAX, INTEGRATION_TIMEOUT_MS_MIN, Integration,
    IntegrationResponse, IntegrationType, Method, MethodResponse, Model, PassthroughBehavior,
    RequestValidator, Resource, RestApi, StringMap, TlsConfig,
};
use regex::Regex;
use serde_json::{Map, Value};

use super::Problem;
use super::pointer::{child, index, local_ref_pointer, unescape};

const EXT: &str = "x-amazon-apigateway-";

/// HTTP verbs a REST API method may have, by their OpenAPI path-item key.
const OPERATION_KEYS: [(&str, &str); 8] = [
    ("get", "GET"),
    ("put", "PUT"),
    ("post", "POST"),
    ("delete", "DELETE"),
    ("options", "OPTIONS"),
    ("head", "HEAD"),
    ("patch", "PATCH"),
    ("x-amazon-apigateway-any-method", "ANY"),
];

const INTEGRATION_VERBS: [&str; 8] = [
    "GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "HEAD", "ANY",
];

fn regex(pattern: &str) -> Regex {
    // The patterns are literals of this file; a typo is a bug caught by the unit tests.
    Regex::new(pattern).unwrap_or_else(|error| panic!("bad built-in regex {pattern}: {error}"))
}

static STAGE_VARIABLE: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\$\{stageVariables\.[A-Za-z0-9_]+\}"));
static HTTP_URI: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^(?i:https?)://[A-Za-z0-9._~%!$&'()*+,;=:@\[\]-]+(?:[/?#]\S*)?$"));
static LAMBDA_URI: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"^arn:aws[a-z-]*:apigateway:[a-z0-9-]+:lambda:path/2015-03-31/functions/\S+/invocations$",
    )
});
static FIREHOSE_URI: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^arn:aws[a-z-]*:apigateway:[a-z0-9-]+:firehose:\S+$"));
static AWS_URI: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"^arn:aws[a-z-]*:apigateway:[a-z0-9-]+:[A-Za-z0-9.-]+:(path|action)/\S+$")
});
static INTEGRATION_PARAM_KEY: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"^integration\.request\.(path|querystring|header|multivaluequerystring|multivalueheader)\.[^\s]+$",
    )
});
static INTEGRATION_PARAM_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"^(?s:method\.request\.(path|querystring|multivaluequerystring|header|multivalueheader)\.\S+|method\.request\.body|method\.request\.body\.\S+|stageVariables\.[A-Za-z0-9_]+|context\.\S+|'.*')$",
    )
});
static VTL: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"\$[A-Za-z{!]|#(set|if|elseif|else|end|foreach|macro|define|parse|include|evaluate|break|stop)\b",
    )
});
static VARIABLE_SEGMENT: LazyLock<Regex> = LazyLock::new(|| regex(r"^\{([A-Za-z0-9._-]+)(\+?)\}$"));
static STATUS_CODE: LazyLock<Regex> = LazyLock::new(|| regex(r"^[1-5][0-9][0-9]$"));

/// How a security scheme acts on the methods that name it.
#[derive(Debug, Clone)]
enum Scheme {
    /// A Lambda or Cognito authorizer: `authorizationType` and the authorizer's id.
    Authorizer {
        authorization_type: &'static str,
        id: String,
    },
    ApiKey,
    AwsIam,
    /// A scheme REST APIs cannot enforce (warned about where it is defined).
    Unsupported,
}

/// Parses `text` and imports it. Errors come back as the full list of problems.
pub(crate) fn import(
    text: &str,
    api_id: &str,
    now_epoch_s: i64,
    next_id: &mut dyn FnMut() -> String,
) -> Result<super::Imported, Vec<Problem>> {
    let started = std::time::Instant::now();
    let document = parse(text).map_err(|problem| vec![problem])?;
    check_deadline(started)?;
    let mut importer = Importer {
        doc: &document,
        oas3: true,
        errors: Vec::new(),
        warnings: Vec::new(),
        next_id,
        consumed: HashSet::new(),
        schemes: BTreeMap::new(),
        authorizers: Vec::new(),
        models: Vec::new(),
        validators: Vec::new(),
        gateway_responses: Vec::new(),
        resources: Vec::new(),
        by_path: HashMap::new(),
        api_key_used: false,
    };
    let api = importer.run(api_id, now_epoch_s);
    check_deadline(started)?;
    if !importer.errors.is_empty() {
        return Err(importer.errors);
    }
    let Some(mut api) = api else {
        return Err(vec![Problem::at("", "Invalid OpenAPI input.")]);
    };
    api.warnings = importer.warnings.iter().map(ToString::to_string).collect();
    let mut models = importer.models;
    models.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(super::Imported {
        definition: ApiDefinition {
            api,
            resources: importer.resources,
            authorizers: importer.authorizers,
            models,
            request_validators: importer.validators,
            gateway_responses: importer.gateway_responses,
        },
        warnings: importer.warnings,
    })
}

/// Refuses an import that ran past `limits::IMPORT_DEADLINE` (checked after each stage; the
/// limits on the text keep every stage short, so this is the backstop).
fn check_deadline(started: std::time::Instant) -> Result<(), Vec<Problem>> {
    if started.elapsed() > super::limits::IMPORT_DEADLINE {
        return Err(vec![Problem::at(
            "",
            format!(
                "the document took longer than {} s to import",
                super::limits::IMPORT_DEADLINE.as_secs()
            ),
        )]);
    }
    Ok(())
}

/// JSON if the first non-blank character is `{`, YAML otherwise. YAML is converted to JSON with
/// scalar mapping keys stringified (`200:` is an integer key in YAML). The text is checked
/// against `limits` first, so neither parser sees a document whose cost is out of bounds.
pub(crate) fn parse(text: &str) -> Result<Value, Problem> {
    let json = text.trim_start().starts_with('{');
    super::limits::check(text, json)?;
    if json {
        return serde_json::from_str(text).map_err(|error| Problem {
            pointer: "/".to_string(),
            message: format!("invalid JSON: {error}"),
            line: Some((error.line(), error.column())),
        });
    }
    let invalid = |error: yaml_serde::Error| Problem {
        pointer: "/".to_string(),
        message: format!("invalid YAML: {error}"),
        line: error
            .location()
            .map(|location| (location.line(), location.column())),
    };
    // Aliases expanded, the tree must stay within the node bound: counted before it is built.
    super::limits::count_yaml_nodes(text, super::limits::MAX_YAML_NODES).map_err(invalid)?;
    let mut yaml: yaml_serde::Value = yaml_serde::from_str(text).map_err(invalid)?;
    yaml.apply_merge().map_err(|error| Problem {
        pointer: "/".to_string(),
        message: format!("invalid YAML merge key: {error}"),
        line: None,
    })?;
    yaml_to_json(yaml, "")
}

fn yaml_to_json(value: yaml_serde::Value, pointer: &str) -> Result<Value, Problem> {
    use yaml_serde::Value as Y;
    Ok(match value {
        Y::Null => Value::Null,
        Y::Bool(flag) => Value::Bool(flag),
        Y::Number(number) => {
            if let Some(int) = number.as_i64() {
                Value::from(int)
            } else if let Some(uint) = number.as_u64() {
                Value::from(uint)
            } else {
                number
                    .as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .ok_or_else(|| Problem::at(pointer, "numbers must be finite"))?
            }
        }
        Y::String(text) => Value::String(text),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| yaml_to_json(item, &index(pointer, i)))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(mapping) => {
            let mut out = Map::new();
            for (key, item) in mapping {
                let key = match key {
                    Y::String(text) => text,
                    Y::Number(number) => number.to_string(),
                    Y::Bool(flag) => flag.to_string(),
                    Y::Null => "null".to_string(),
                    _ => {
                        return Err(Problem::at(
                            pointer,
                            "mapping keys must be scalars (strings, numbers or booleans)",
                        ));
                    }
                };
                let item = yaml_to_json(item, &child(pointer, &key))?;
                out.insert(key, item);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => yaml_to_json(tagged.value, pointer)?,
    })
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Renders a scalar as AWS does in messages (`'true'`), JSON text for the rest.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// FNV-1a, 32 bits: a stable name for inline schemas across runs and nodes.
pub(crate) fn fnv1a(text: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in text.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// Rewrites Swagger's `#/definitions/X` references to OpenAPI 3's `#/components/schemas/X`, so a
/// model's schema text is the same whichever dialect it came from.
fn canonical_schema(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| {
                    let item = match (key.as_str(), item) {
                        ("$ref", Value::String(reference)) => {
                            Value::String(match reference.strip_prefix("#/definitions/") {
                                Some(name) => format!("#/components/schemas/{name}"),
                                None => reference.clone(),
                            })
                        }
                        _ => canonical_schema(item),
                    };
                    (key.clone(), item)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(canonical_schema).collect()),
        other => other.clone(),
    }
}

struct Importer<'a> {
    doc: &'a Value,
    /// OpenAPI 3 (`true`) or Swagger 2.
    oas3: bool,
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
    next_id: &'a mut dyn FnMut() -> String,
    /// Pointers of `x-amazon-apigateway-*` keys that were interpreted.
    consumed: HashSet<String>,
    schemes: BTreeMap<String, Scheme>,
    authorizers: Vec<Authorizer>,
    models: Vec<Model>,
    validators: Vec<RequestValidator>,
    gateway_responses: Vec<GatewayResponse>,
    resources: Vec<Resource>,
    by_path: HashMap<String, usize>,
    api_key_used: bool,
}

impl<'a> Importer<'a> {
    fn error(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Problem::at(pointer, message));
    }

    fn warn(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Problem::at(pointer, message));
    }

    fn new_id(&mut self) -> String {
        (self.next_id)()
    }

    /// Marks `key` of the object at `pointer` as interpreted and returns its value.
    fn ext(
        &mut self,
        object: &'a Map<String, Value>,
        pointer: &str,
        key: &str,
    ) -> Option<&'a Value> {
        let value = object.get(key)?;
        self.consumed.insert(child(pointer, key));
        Some(value)
    }

    fn run(&mut self, api_id: &str, now_epoch_s: i64) -> Option<RestApi> {
        let doc = self.doc;
        let Some(root) = doc.as_object() else {
            self.error(
                "",
                format!("the document must be an object, not {}", type_name(doc)),
            );
            return None;
        };
        if !self.version(root) {
            return None;
        }
        self.check_refs(doc, "", &mut Vec::new());

        // info
        let mut name = None;
        let mut description = None;
        let mut version = None;
        match root.get("info") {
            Some(Value::Object(info)) => {
                match info.get("title") {
                    Some(Value::String(title)) if !title.trim().is_empty() => {
                        name = Some(title.clone())
                    }
                    Some(Value::String(_)) => {
                        self.error("/info/title", "info.title must not be empty")
                    }
                    Some(other) => self.error(
                        "/info/title",
                        format!("info.title must be a string, not {}", type_name(other)),
                    ),
                    None => self.error(
                        "/info/title",
                        "missing required info.title (the API's name)",
                    ),
                }
                description = self.opt_string(info.get("description"), "/info/description");
                version = match info.get("version") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(text)) => Some(text.clone()),
                    Some(Value::Number(number)) => Some(number.to_string()),
                    Some(other) => {
                        self.error(
                            "/info/version",
                            format!("info.version must be a string, not {}", type_name(other)),
                        );
                        None
                    }
                };
            }
            Some(other) => self.error(
                "/info",
                format!("info must be an object, not {}", type_name(other)),
            ),
            None => self.error(
                "/info/title",
                "missing required info.title (the API's name)",
            ),
        }

        self.import_models(root);
        self.import_security_schemes(root);
        self.import_validators(root);
        let mut api = self.import_root_extensions(root, api_id, now_epoch_s);

        let root_id = self.new_id();
        api.root_resource_id = root_id.clone();
        self.resources.push(Resource {
            id: root_id,
            parent_id: None,
            path_part: None,
            path: "/".to_string(),
            resource_methods: BTreeMap::new(),
        });
        self.by_path.insert("/".to_string(), 0);
        self.import_paths(root);

        if self.api_key_used {
            self.warn(
                "/",
                "methods with apiKeyRequired answer 403 until a request sends, in x-api-key, an enabled key of a usage plan of the stage (create keys and plans through the management API: `portico dev --admin`, or an origin's)",
            );
        }
        self.report_unconsumed_extensions(doc, "");

        api.name = name.unwrap_or_default();
        api.description = description;
        api.version = version;
        Some(api)
    }

    /// Checks the version field; `false` when the document cannot be interpreted at all.
    fn version(&mut self, root: &Map<String, Value>) -> bool {
        if let Some(value) = root.get("openapi") {
            let text = value.as_str().unwrap_or_default();
            if text == "3.0" || text.starts_with("3.0.") {
                self.oas3 = true;
                return true;
            }
            if text == "3.1" || text.starts_with("3.1.") {
                self.oas3 = true;
                self.warn(
                    "/openapi",
                    format!("OpenAPI {text} is read as 3.0: features only 3.1 has (webhooks, type arrays, JSON Schema 2020-12 keywords) are not interpreted"),
                );
                return true;
            }
            self.error(
                "/openapi",
                format!(
                    "unsupported OpenAPI version {}: expected 3.0.x (or Swagger 2.0)",
                    scalar_text(value)
                ),
            );
            return false;
        }
        if let Some(value) = root.get("swagger") {
            if value.as_str() == Some("2.0") {
                self.oas3 = false;
                return true;
            }
            self.error(
                "/swagger",
                format!(
                    "unsupported Swagger version {}: expected \"2.0\"",
                    scalar_text(value)
                ),
            );
            return false;
        }
        self.error(
            "",
            "not an OpenAPI document: no `openapi: 3.0.x` or `swagger: \"2.0\"` field",
        );
        false
    }

    /// Reports every `$ref` that is not local or does not resolve.
    fn check_refs(&mut self, value: &Value, pointer: &str, depth: &mut Vec<()>) {
        if depth.len() > 256 {
            self.error(pointer, "document nested too deeply");
            return;
        }
        match value {
            Value::Object(map) => {
                if let Some(reference) = map.get("$ref") {
                    let at = child(pointer, "$ref");
                    match reference {
                        Value::String(text) => match local_ref_pointer(text) {
                            None => self.error(
                                at,
                                format!("external $ref {text} is not supported: only local references (#/...) are"),
                            ),
                            Some(target) => {
                                if self.doc.pointer(&target).is_none() {
                                    self.error(at, format!("$ref {text} does not resolve"));
                                }
                            }
                        },
                        other => self.error(at, format!("$ref must be a string, not {}", type_name(other))),
                    }
                }
                depth.push(());
                for (key, item) in map {
                    if key != "$ref" {
                        self.check_refs(item, &child(pointer, key), depth);
                    }
                }
                depth.pop();
            }
            Value::Array(items) => {
                depth.push(());
                for (i, item) in items.iter().enumerate() {
                    self.check_refs(item, &index(pointer, i), depth);
                }
                depth.pop();
            }
            _ => {}
        }
    }

    /// Follows `$ref`s (already checked to resolve) to the node they denote, with its pointer.
    fn deref(&mut self, value: &'a Value, pointer: &str) -> Option<(&'a Value, String)> {
        let mut current = value;
        let mut current_pointer = pointer.to_string();
        let mut seen = Vec::new();
        while let Some(reference) = current.get("$ref").and_then(Value::as_str) {
            let target = local_ref_pointer(reference)?;
            if seen.contains(&target) {
                self.error(
                    child(pointer, "$ref"),
                    format!("$ref cycle through {reference}"),
                );
                return None;
            }
            seen.push(target.clone());
            current = self.doc.pointer(&target)?;
            current_pointer = target;
        }
        Some((current, current_pointer))
    }

    fn opt_string(&mut self, value: Option<&Value>, pointer: &str) -> Option<String> {
        match value {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(other) => {
                self.error(
                    pointer,
                    format!("expected a string, not {}", type_name(other)),
                );
                None
            }
        }
    }

    fn opt_bool(&mut self, value: Option<&Value>, pointer: &str) -> Option<bool> {
        match value {
            None | Some(Value::Null) => None,
            Some(Value::Bool(flag)) => Some(*flag),
            Some(other) => {
                self.error(
                    pointer,
                    format!("expected a boolean, not {}", type_name(other)),
                );
                None
            }
        }
    }

    fn string_list(&mut self, value: Option<&Value>, pointer: &str) -> Vec<String> {
        match value {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(text) => out.push(text.clone()),
                        other => self.error(
                            index(pointer, i),
                            format!("expected a string, not {}", type_name(other)),
                        ),
                    }
                }
                out
            }
            Some(other) => {
                self.error(
                    pointer,
                    format!("expected an array of strings, not {}", type_name(other)),
                );
                Vec::new()
            }
        }
    }

    /// An object of string values; non-string values are errors.
    fn string_map(&mut self, value: Option<&Value>, pointer: &str) -> StringMap {
        let mut out = StringMap::new();
        match value {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (key, item) in map {
                    match item {
                        Value::String(text) => {
                            out.insert(key.clone(), text.clone());
                        }
                        other => self.error(
                            child(pointer, key),
                            format!("expected a string, not {}", type_name(other)),
                        ),
                    }
                }
            }
            Some(other) => self.error(
                pointer,
                format!("expected an object, not {}", type_name(other)),
            ),
        }
        out
    }

    fn object(
        &mut self,
        value: &'a Value,
        pointer: &str,
        what: &str,
    ) -> Option<&'a Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            other => {
                self.error(
                    pointer,
                    format!("{what} must be an object, not {}", type_name(other)),
                );
                None
            }
        }
    }

    // ---- models ---------------------------------------------------------------------------

    fn import_models(&mut self, root: &'a Map<String, Value>) {
        let (schemas, pointer) = if self.oas3 {
            (
                root.get("components")
                    .and_then(|components| components.get("schemas")),
                "/components/schemas",
            )
        } else {
            (root.get("definitions"), "/definitions")
        };
        let Some(schemas) = schemas else { return };
        let Some(schemas) = self.object(schemas, pointer, "schemas") else {
            return;
        };
        for (name, schema) in schemas {
            if !name.chars().all(|ch| ch.is_ascii_alphanumeric()) {
                self.warn(
                    child(pointer, name),
                    format!("model name {name} is not alphanumeric; AWS only accepts [A-Za-z0-9] model names"),
                );
            }
            let schema_text = canonical_schema(schema).to_string();
            let id = self.new_id();
            self.models.push(Model {
                id,
                name: name.clone(),
                description: None,
                schema: Some(schema_text),
                content_type: "application/json".to_string(),
            });
        }
    }

    /// The model a body schema denotes: a reference to a named schema, or an inline model named
    /// after the hash of its canonical text.
    fn model_for_schema(&mut self, schema: &Value) -> String {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            for prefix in ["#/components/schemas/", "#/definitions/"] {
                if let Some(name) = reference.strip_prefix(prefix)
                    && !name.contains('/')
                {
                    let name = unescape(&percent_decode_str(name).decode_utf8_lossy());
                    if self.models.iter().any(|model| model.name == name) {
                        return name;
                    }
                }
            }
        }
        let text = canonical_schema(schema).to_string();
        let name = format!("Inline{:08x}", fnv1a(&text));
        if !self.models.iter().any(|model| model.name == name) {
            let id = self.new_id();
            self.models.push(Model {
                id,
                name: name.clone(),
                description: None,
                schema: Some(text),
                content_type: "application/json".to_string(),
            });
        }
        name
    }

    // ---- security schemes -----------------------------------------------------------------

    fn import_security_schemes(&mut self, root: &'a Map<String, Value>) {
        let (schemes, pointer) = if self.oas3 {
            (
                root.get("components")
                    .and_then(|components| components.get("securitySchemes")),
                "/components/securitySchemes".to_string(),
            )
        } else {
            (
                root.get("securityDefinitions"),
                "/securityDefinitions".to_string(),
            )
        };
        let Some(schemes) = schemes else { return };
        let Some(schemes) = self.object(schemes, &pointer, "security schemes") else {
            return;
        };
        for (name, scheme) in schemes {
            let scheme_pointer = child(&pointer, name);
            let Some((scheme, scheme_pointer)) = self.deref(scheme, &scheme_pointer) else {
                continue;
            };
            let Some(map) = self.object(scheme, &scheme_pointer, "a security scheme") else {
                continue;
            };
            let kind = map
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let auth_type = self.ext(map, &scheme_pointer, "x-amazon-apigateway-authtype");
            let auth_type = self.opt_string(
                auth_type,
                &child(&scheme_pointer, "x-amazon-apigateway-authtype"),
            );
            let resolved = if let Some(authorizer) =
                self.ext(map, &scheme_pointer, "x-amazon-apigateway-authorizer")
            {
                self.import_authorizer(name, map, authorizer, auth_type, &scheme_pointer)
            } else if auth_type
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("awsSigv4"))
            {
                Scheme::AwsIam
            } else if kind == "apiKey"
                && auth_type.is_none()
                && map.get("in").and_then(Value::as_str) == Some("header")
                && map
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|header| header.eq_ignore_ascii_case("x-api-key"))
            {
                Scheme::ApiKey
            } else {
                self.warn(
                    scheme_pointer.clone(),
                    format!(
                        "security scheme {name} (type {}) is not supported by REST APIs without x-amazon-apigateway-authorizer; ignored",
                        if kind.is_empty() { "missing" } else { &kind }
                    ),
                );
                Scheme::Unsupported
            };
            self.schemes.insert(name.clone(), resolved);
        }
    }

    fn import_authorizer(
        &mut self,
        name: &str,
        scheme: &'a Map<String, Value>,
        authorizer: &'a Value,
        auth_type: Option<String>,
        scheme_pointer: &str,
    ) -> Scheme {
        let pointer = child(scheme_pointer, "x-amazon-apigateway-authorizer");
        let Some(map) = self.object(authorizer, &pointer, "x-amazon-apigateway-authorizer") else {
            return Scheme::Unsupported;
        };
        let (authorizer_type, authorization_type) = match map.get("type").and_then(Value::as_str) {
            Some(kind) => match kind.to_ascii_lowercase().as_str() {
                "token" => ("TOKEN", "CUSTOM"),
                "request" => ("REQUEST", "CUSTOM"),
                "cognito_user_pools" => ("COGNITO_USER_POOLS", "COGNITO_USER_POOLS"),
                "jwt" => ("JWT", "CUSTOM"),
                _ => {
                    self.error(
                        child(&pointer, "type"),
                        format!("unknown authorizer type {kind}: expected token, request, cognito_user_pools or jwt"),
                    );
                    return Scheme::Unsupported;
                }
            },
            None => {
                self.error(
                    child(&pointer, "type"),
                    "missing authorizer type (token, request or cognito_user_pools)",
                );
                return Scheme::Unsupported;
            }
        };
        let known = [
            "type",
            "authorizerUri",
            "authorizerCredentials",
            "identitySource",
            "identityValidationExpression",
            "authorizerResultTtlInSeconds",
            "providerARNs",
        ];
        for key in map.keys().filter(|key| !known.contains(&key.as_str())) {
            self.warn(
                child(&pointer, key),
                format!("authorizer field {key} is not supported by REST APIs; ignored"),
            );
        }
        let mut identity_source = self.opt_string(
            map.get("identitySource"),
            &child(&pointer, "identitySource"),
        );
        if identity_source.is_none()
            && matches!(authorizer_type, "TOKEN" | "COGNITO_USER_POOLS")
            && let Some(header) = scheme.get("name").and_then(Value::as_str)
        {
            identity_source = Some(format!("method.request.header.{header}"));
        }
        let ttl = match map.get("authorizerResultTtlInSeconds") {
            None | Some(Value::Null) => None,
            Some(value) => match value.as_i64() {
                Some(ttl @ 0..=3600) => Some(ttl as i32),
                _ => {
                    self.error(
                        child(&pointer, "authorizerResultTtlInSeconds"),
                        "authorizerResultTtlInSeconds must be an integer from 0 to 3600",
                    );
                    None
                }
            },
        };
        let authorizer_uri =
            self.opt_string(map.get("authorizerUri"), &child(&pointer, "authorizerUri"));
        if matches!(authorizer_type, "TOKEN" | "REQUEST") && authorizer_uri.is_none() {
            self.error(
                child(&pointer, "authorizerUri"),
                format!("a {authorizer_type} authorizer needs authorizerUri"),
            );
        }
        let provider_arns =
            self.string_list(map.get("providerARNs"), &child(&pointer, "providerARNs"));
        if authorizer_type == "COGNITO_USER_POOLS" && provider_arns.is_empty() {
            self.error(
                child(&pointer, "providerARNs"),
                "a cognito_user_pools authorizer needs providerARNs",
            );
        }
        let authorizer_credentials = self.opt_string(
            map.get("authorizerCredentials"),
            &child(&pointer, "authorizerCredentials"),
        );
        let identity_validation_expression = self.opt_string(
            map.get("identityValidationExpression"),
            &child(&pointer, "identityValidationExpression"),
        );
        let id = self.new_id();
        let authorizer = Authorizer {
            id: id.clone(),
            name: name.to_string(),
            authorizer_type: authorizer_type.to_string(),
            provider_arns,
            auth_type,
            authorizer_uri,
            authorizer_credentials,
            identity_source,
            identity_validation_expression,
            authorizer_result_ttl_in_seconds: ttl,
        };
        // The rules CreateAuthorizer applies (identity sources, URI, pools), so an imported
        // authorizer is one the management API would have accepted. Problems already reported
        // above (missing URI or pools, a bad TTL) are not reported twice.
        let reported = self
            .errors
            .iter()
            .any(|problem| problem.pointer.starts_with(&pointer));
        if !reported && let Err(message) = portico_proto::admin::check_authorizer(&authorizer) {
            self.error(pointer.clone(), message);
        }
        self.authorizers.push(authorizer);
        Scheme::Authorizer {
            authorization_type,
            id,
        }
    }

    // ---- request validators, root extensions ----------------------------------------------

    fn import_validators(&mut self, root: &'a Map<String, Value>) {
        let key = "x-amazon-apigateway-request-validators";
        let Some(validators) = self.ext(root, "", key) else {
            return;
        };
        let pointer = child("", key);
        let Some(validators) = self.object(validators, &pointer, key) else {
            return;
        };
        for (name, validator) in validators {
            let at = child(&pointer, name);
            let Some(map) = self.object(validator, &at, "a request validator") else {
                continue;
            };
            let body = self.opt_bool(
                map.get("validateRequestBody"),
                &child(&at, "validateRequestBody"),
            );
            let parameters = self.opt_bool(
                map.get("validateRequestParameters"),
                &child(&at, "validateRequestParameters"),
            );
            let id = self.new_id();
            self.validators.push(RequestValidator {
                id,
                name: name.clone(),
                validate_request_body: body.unwrap_or(false),
                validate_request_parameters: parameters.unwrap_or(false),
            });
        }
    }

    fn validator_id(&mut self, value: &Value, pointer: &str) -> Option<String> {
        let Some(name) = value.as_str() else {
            self.error(
                pointer,
                format!("expected a validator name, not {}", type_name(value)),
            );
            return None;
        };
        match self
            .validators
            .iter()
            .find(|validator| validator.name == name)
        {
            Some(validator) => Some(validator.id.clone()),
            None => {
                self.error(
                    pointer,
                    format!("request validator {name} is not defined in x-amazon-apigateway-request-validators"),
                );
                None
            }
        }
    }

    fn import_root_extensions(
        &mut self,
        root: &'a Map<String, Value>,
        api_id: &str,
        now: i64,
    ) -> RestApi {
        let mut api = RestApi {
            id: api_id.to_string(),
            name: String::new(),
            description: None,
            created_date: now,
            version: None,
            warnings: Vec::new(),
            binary_media_types: Vec::new(),
            minimum_compression_size: None,
            api_key_source: ApiKeySource::Header,
            endpoint_configuration: EndpointConfiguration::default(),
            policy: None,
            tags: BTreeMap::new(),
            disable_execute_api_endpoint: false,
            root_resource_id: String::new(),
        };
        let key = "x-amazon-apigateway-api-key-source";
        if let Some(value) = self.ext(root, "", key) {
            match value.as_str().map(str::to_ascii_uppercase).as_deref() {
                Some("HEADER") => api.api_key_source = ApiKeySource::Header,
                Some("AUTHORIZER") => api.api_key_source = ApiKeySource::Authorizer,
                _ => self.error(child("", key), "expected HEADER or AUTHORIZER"),
            }
        }
        let key = "x-amazon-apigateway-binary-media-types";
        if let Some(value) = self.ext(root, "", key) {
            api.binary_media_types = self.string_list(Some(value), &child("", key));
        }
        let key = "x-amazon-apigateway-minimum-compression-size";
        if let Some(value) = self.ext(root, "", key) {
            match value.as_i64() {
                Some(size @ 0..=10_485_760) => api.minimum_compression_size = Some(size as i32),
                _ => self.error(
                    child("", key),
                    "expected an integer from 0 to 10485760 (bytes)",
                ),
            }
        }
        let key = "x-amazon-apigateway-policy";
        if let Some(value) = self.ext(root, "", key) {
            api.policy = match value {
                Value::String(text) => {
                    if !matches!(serde_json::from_str::<Value>(text), Ok(Value::Object(_))) {
                        self.error(
                            child("", key),
                            "a policy given as text must be a JSON policy document (an object)",
                        );
                    }
                    Some(text.clone())
                }
                Value::Object(_) => Some(value.to_string()),
                other => {
                    self.error(
                        child("", key),
                        format!("expected a policy document, not {}", type_name(other)),
                    );
                    None
                }
            };
        }
        let key = "x-amazon-apigateway-endpoint-configuration";
        if let Some(value) = self.ext(root, "", key) {
            let pointer = child("", key);
            if let Some(map) = self.object(value, &pointer, key) {
                if map.contains_key("types") {
                    let types = self.string_list(map.get("types"), &child(&pointer, "types"));
                    for (i, kind) in types.iter().enumerate() {
                        if !matches!(kind.as_str(), "EDGE" | "REGIONAL" | "PRIVATE") {
                            self.error(
                                index(&child(&pointer, "types"), i),
                                format!("unknown endpoint type {kind}: expected EDGE, REGIONAL or PRIVATE"),
                            );
                        }
                    }
                    api.endpoint_configuration.types = types;
                }
                api.endpoint_configuration.vpc_endpoint_ids = self.string_list(
                    map.get("vpcEndpointIds"),
                    &child(&pointer, "vpcEndpointIds"),
                );
                if let Some(kind) =
                    self.opt_string(map.get("ipAddressType"), &child(&pointer, "ipAddressType"))
                {
                    api.endpoint_configuration.ip_address_type = Some(kind);
                }
                if let Some(flag) = self.opt_bool(
                    map.get("disableExecuteApiEndpoint"),
                    &child(&pointer, "disableExecuteApiEndpoint"),
                ) {
                    api.disable_execute_api_endpoint = flag;
                }
                for key in map.keys() {
                    if !matches!(
                        key.as_str(),
                        "types" | "vpcEndpointIds" | "ipAddressType" | "disableExecuteApiEndpoint"
                    ) {
                        self.warn(
                            child(&pointer, key),
                            format!("endpoint configuration field {key} is not supported; ignored"),
                        );
                    }
                }
            }
        }
        // Integrations referenced from operations live here; the container itself is read
        // through `$ref`s.
        if let Some(Value::Object(components)) = root.get("components") {
            self.ext(
                components,
                "/components",
                "x-amazon-apigateway-integrations",
            );
        }
        api
    }

    /// Reads `x-amazon-apigateway-gateway-responses`.
    fn import_gateway_responses(&mut self, root: &'a Map<String, Value>) {
        let key = "x-amazon-apigateway-gateway-responses";
        let Some(value) = self.ext(root, "", key) else {
            return;
        };
        let pointer = child("", key);
        let Some(map) = self.object(value, &pointer, key) else {
            return;
        };
        for (response_type, response) in map {
            let at = child(&pointer, response_type);
            if portico_proto::admin::check_response_type(response_type).is_err() {
                self.error(
                    at.clone(),
                    format!(
                        "unknown gateway response type {response_type}: expected one of {}",
                        portico_proto::admin::GATEWAY_RESPONSE_TYPES
                            .iter()
                            .map(|(kind, _)| *kind)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
            let Some(response) = self.object(response, &at, "a gateway response") else {
                continue;
            };
            let status_code = response.get("statusCode").map(scalar_text);
            if let Some(code) = &status_code
                && !STATUS_CODE.is_match(code)
            {
                self.error(
                    child(&at, "statusCode"),
                    "statusCode must be a 3-digit HTTP status",
                );
            }
            let response_parameters = self.string_map(
                response.get("responseParameters"),
                &child(&at, "responseParameters"),
            );
            let response_templates = self.string_map(
                response.get("responseTemplates"),
                &child(&at, "responseTemplates"),
            );
            // As PutGatewayResponse: members left out keep the type's default (status code,
            // `{"message":$context.error.messageString}` template).
            let mut stored = portico_proto::admin::default_gateway_response(response_type);
            if status_code.is_some() {
                stored.status_code = status_code;
            }
            stored.response_parameters = response_parameters;
            if !response_templates.is_empty() {
                stored.response_templates = response_templates;
            }
            stored.default_response = false;
            self.gateway_responses.push(stored);
        }
    }

    fn report_unconsumed_extensions(&mut self, value: &Value, pointer: &str) {
        match value {
            Value::Object(map) => {
                for (key, item) in map {
                    let at = child(pointer, key);
                    if key.starts_with(EXT) {
                        if !self.consumed.contains(&at) {
                            self.warn(at, format!("extension {key} is not supported; ignored"));
                        }
                    } else {
                        self.report_unconsumed_extensions(item, &at);
                    }
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.report_unconsumed_extensions(item, &index(pointer, i));
                }
            }
            _ => {}
        }
    }

    // ---- paths -----------------------------------------------------------------------------

    fn import_paths(&mut self, root: &'a Map<String, Value>) {
        self.import_gateway_responses(root);
        let global_security = root.get("security");
        let global_validator = match self.ext(root, "", "x-amazon-apigateway-request-validator") {
            Some(value) => self.validator_id(value, "/x-amazon-apigateway-request-validator"),
            None => None,
        };
        let Some(paths) = root.get("paths") else {
            return;
        };
        let Some(paths) = self.object(paths, "/paths", "paths") else {
            return;
        };
        for (template, item) in paths {
            let pointer = child("/paths", template);
            // An invalid template still has its operations checked, so that one import
            // reports every problem; their methods are then discarded.
            let resource_index = self.ensure_resource(template, &pointer);
            let Some((item, item_pointer)) = self.deref(item, &pointer) else {
                continue;
            };
            let Some(item) = self.object(item, &item_pointer, "a path item") else {
                continue;
            };
            let path_variables = template_variables(template);
            let shared_parameters = item.get("parameters");
            for (key, value) in item {
                let verb = OPERATION_KEYS
                    .iter()
                    .find(|(name, _)| name == key)
                    .map(|(_, verb)| *verb);
                let at = child(&item_pointer, key);
                match (verb, key.as_str()) {
                    (Some(verb), _) => {
                        if key.starts_with(EXT) {
                            self.consumed.insert(at.clone());
                        }
                        let context = OperationContext {
                            template,
                            verb,
                            path_variables: &path_variables,
                            shared_parameters: shared_parameters
                                .map(|p| (p, child(&item_pointer, "parameters"))),
                            global_security,
                            global_validator: global_validator.clone(),
                            resource_id: resource_index
                                .map(|i| self.resources[i].id.clone())
                                .unwrap_or_default(),
                        };
                        let method = self.import_operation(value, &at, &context);
                        if let (Some(method), Some(i)) = (method, resource_index) {
                            self.resources[i]
                                .resource_methods
                                .insert(verb.to_string(), method);
                        }
                    }
                    (None, "trace") => {
                        self.warn(at, "TRACE methods are not supported by REST APIs; ignored")
                    }
                    (None, "parameters" | "summary" | "description" | "servers" | "$ref") => {}
                    (None, other) if other.starts_with("x-") => {}
                    (None, other) => {
                        self.warn(at, format!("unknown path item field {other}; ignored"))
                    }
                }
            }
        }
    }

    /// Creates the resources of a path template (and its missing ancestors); the index of the
    /// resource for `template`, or `None` after reporting why it is invalid.
    fn ensure_resource(&mut self, template: &str, pointer: &str) -> Option<usize> {
        if template == "/" {
            return Some(0);
        }
        let Some(rest) = template.strip_prefix('/') else {
            self.error(pointer, format!("path {template} must start with /"));
            return None;
        };
        let segments: Vec<&str> = rest.split('/').collect();
        let mut names = BTreeSet::new();
        for (i, segment) in segments.iter().enumerate() {
            if segment.is_empty() {
                self.error(pointer, format!("path {template} has an empty segment"));
                return None;
            }
            if segment.contains('{') || segment.contains('}') {
                let Some(captures) = VARIABLE_SEGMENT.captures(segment) else {
                    self.error(
                        pointer,
                        format!("invalid path segment {segment}: a segment is a literal, {{name}} or a final {{name+}}"),
                    );
                    return None;
                };
                if !names.insert(captures[1].to_string()) {
                    self.error(
                        pointer,
                        format!("path variable {} appears twice in {template}", &captures[1]),
                    );
                    return None;
                }
                if !captures[2].is_empty() && i + 1 != segments.len() {
                    self.error(
                        pointer,
                        format!(
                            "greedy path variable {segment} must be the last segment of the path"
                        ),
                    );
                    return None;
                }
            } else if segment.chars().any(char::is_whitespace) {
                self.error(
                    pointer,
                    format!("invalid path segment {segment:?}: whitespace is not allowed"),
                );
                return None;
            }
        }
        let mut parent_index = 0;
        let mut path = String::new();
        for segment in segments {
            path.push('/');
            path.push_str(segment);
            if let Some(&existing) = self.by_path.get(&path) {
                parent_index = existing;
                continue;
            }
            let parent = &self.resources[parent_index];
            if let Some(part) = parent
                .path_part
                .as_deref()
                .filter(|part| part.ends_with("+}"))
            {
                let message = format!(
                    "Cannot create a child of a resource with a greedy path variable: {part}"
                );
                self.error(pointer, message);
                return None;
            }
            if segment.starts_with('{') {
                let parent_id = parent.id.clone();
                let sibling = self.resources.iter().find(|resource| {
                    resource.parent_id.as_deref() == Some(parent_id.as_str())
                        && resource
                            .path_part
                            .as_deref()
                            .is_some_and(|part| part.starts_with('{'))
                });
                if let Some(sibling) = sibling {
                    let message = format!(
                        "A sibling ({}) of this resource already has a variable path part -- only one is allowed",
                        sibling.path_part.as_deref().unwrap_or_default()
                    );
                    self.error(pointer, message);
                    return None;
                }
            }
            let parent_id = self.resources[parent_index].id.clone();
            let id = self.new_id();
            self.resources.push(Resource {
                id,
                parent_id: Some(parent_id),
                path_part: Some(segment.to_string()),
                path: path.clone(),
                resource_methods: BTreeMap::new(),
            });
            parent_index = self.resources.len() - 1;
            self.by_path.insert(path.clone(), parent_index);
        }
        Some(parent_index)
    }
}

/// What an operation inherits from its path item and the document.
struct OperationContext<'t, 'a> {
    template: &'t str,
    verb: &'static str,
    path_variables: &'t [String],
    shared_parameters: Option<(&'a Value, String)>,
    global_security: Option<&'a Value>,
    global_validator: Option<String>,
    resource_id: String,
}

/// The variable names of a path template, without braces or `+`.
fn template_variables(template: &str) -> Vec<String> {
    template
        .split('/')
        .filter_map(|segment| {
            VARIABLE_SEGMENT
                .captures(segment)
                .map(|captures| captures[1].to_string())
        })
        .collect()
}

impl<'a> Importer<'a> {
    fn import_operation(
        &mut self,
        value: &'a Value,
        pointer: &str,
        context: &OperationContext<'_, 'a>,
    ) -> Option<Method> {
        let (value, pointer) = self.deref(value, pointer)?;
        let operation = self.object(value, &pointer, "an operation")?;
        let mut method = Method::new(context.verb);
        method.operation_name = self.opt_string(
            operation.get("operationId"),
            &child(&pointer, "operationId"),
        );

        // Parameters: path-level first, operation-level override by (in, name).
        let mut parameters: Vec<(&'a Map<String, Value>, String)> = Vec::new();
        let mut lists = Vec::new();
        if let Some((shared, shared_pointer)) = &context.shared_parameters {
            lists.push((*shared, shared_pointer.clone()));
        }
        if let Some(own) = operation.get("parameters") {
            lists.push((own, child(&pointer, "parameters")));
        }
        for (list, list_pointer) in lists {
            let Value::Array(items) = list else {
                self.error(
                    list_pointer,
                    format!("parameters must be an array, not {}", type_name(list)),
                );
                continue;
            };
            for (i, item) in items.iter().enumerate() {
                let Some((item, item_pointer)) = self.deref(item, &index(&list_pointer, i)) else {
                    continue;
                };
                let Some(map) = self.object(item, &item_pointer, "a parameter") else {
                    continue;
                };
                let identity =
                    |map: &Map<String, Value>| (map.get("in").cloned(), map.get("name").cloned());
                parameters.retain(|(existing, _)| identity(existing) != identity(map));
                parameters.push((map, item_pointer));
            }
        }
        for (parameter, at) in parameters {
            let name = match parameter.get("name") {
                Some(Value::String(name)) if !name.is_empty() => name.clone(),
                _ => {
                    self.error(child(&at, "name"), "a parameter needs a non-empty name");
                    continue;
                }
            };
            let required = parameter
                .get("required")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            match parameter.get("in").and_then(Value::as_str) {
                Some("path") => {
                    if !context.path_variables.contains(&name) {
                        self.error(
                            child(&at, "name"),
                            format!(
                                "path parameter {name} is not a variable of the path {}",
                                context.template
                            ),
                        );
                    }
                    method
                        .request_parameters
                        .insert(format!("method.request.path.{name}"), true);
                }
                Some("query") => {
                    method
                        .request_parameters
                        .insert(format!("method.request.querystring.{name}"), required);
                }
                Some("header") => {
                    method
                        .request_parameters
                        .insert(format!("method.request.header.{name}"), required);
                }
                Some("body") if !self.oas3 => {
                    if let Some(schema) = parameter.get("schema") {
                        let model = self.model_for_schema(schema);
                        for content_type in self.media_types(operation, "consumes") {
                            method.request_models.insert(content_type, model.clone());
                        }
                    }
                }
                Some(location @ ("cookie" | "formData")) => self.warn(
                    child(&at, "in"),
                    format!("{location} parameter {name} is not supported by REST APIs; ignored"),
                ),
                Some(other) => self.error(
                    child(&at, "in"),
                    format!("unknown parameter location {other}"),
                ),
                None => self.error(child(&at, "in"), "a parameter needs `in`"),
            }
        }

        if let Some(body) = operation.get("requestBody") {
            let body_pointer = child(&pointer, "requestBody");
            if let Some((body, body_pointer)) = self.deref(body, &body_pointer) {
                if let Some(content) = body.get("content").and_then(Value::as_object) {
                    for (content_type, media) in content {
                        if let Some(schema) = media.get("schema") {
                            let model = self.model_for_schema(schema);
                            method.request_models.insert(content_type.clone(), model);
                        }
                    }
                } else if body.get("content").is_some() {
                    self.error(
                        child(&body_pointer, "content"),
                        "requestBody.content must be an object",
                    );
                }
            }
        }

        if let Some(responses) = operation.get("responses") {
            self.import_method_responses(
                operation,
                responses,
                &child(&pointer, "responses"),
                &mut method,
            );
        }

        let security = match operation.get("security") {
            Some(own) => Some((own, child(&pointer, "security"))),
            None => context
                .global_security
                .map(|global| (global, "/security".to_string())),
        };
        if let Some((security, security_pointer)) = security {
            self.apply_security(security, &security_pointer, &mut method);
        }
        if let Some(auth) = self.ext(operation, &pointer, "x-amazon-apigateway-auth") {
            let at = child(&pointer, "x-amazon-apigateway-auth");
            match auth
                .get("type")
                .and_then(Value::as_str)
                .map(str::to_ascii_uppercase)
                .as_deref()
            {
                Some("AWS_IAM") => method.authorization_type = "AWS_IAM".to_string(),
                Some("NONE") => method.authorization_type = "NONE".to_string(),
                _ => self.error(child(&at, "type"), "expected type AWS_IAM or NONE"),
            }
        }
        method.request_validator_id =
            match self.ext(operation, &pointer, "x-amazon-apigateway-request-validator") {
                Some(value) => self.validator_id(
                    value,
                    &child(&pointer, "x-amazon-apigateway-request-validator"),
                ),
                None => context.global_validator.clone(),
            };
        match self.ext(operation, &pointer, "x-amazon-apigateway-integration") {
            Some(integration) => {
                let at = child(&pointer, "x-amazon-apigateway-integration");
                method.method_integration = self.import_integration(integration, &at, context);
            }
            None => self.warn(
                pointer.clone(),
                "no x-amazon-apigateway-integration: the method has no integration and cannot be invoked",
            ),
        }
        Some(method)
    }

    /// `consumes`/`produces` of a Swagger operation, else of the document, else JSON.
    fn media_types(&self, operation: &Map<String, Value>, key: &str) -> Vec<String> {
        let from = |value: Option<&Value>| {
            value.and_then(Value::as_array).map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
        };
        from(operation.get(key))
            .or_else(|| from(self.doc.get(key)))
            .filter(|types| !types.is_empty())
            .unwrap_or_else(|| vec!["application/json".to_string()])
    }

    fn import_method_responses(
        &mut self,
        operation: &'a Map<String, Value>,
        responses: &'a Value,
        pointer: &str,
        method: &mut Method,
    ) {
        let Some(responses) = self.object(responses, pointer, "responses") else {
            return;
        };
        for (code, response) in responses {
            let at = child(pointer, code);
            if code == "default" {
                self.warn(
                    at,
                    "`default` responses have no equivalent in REST API method responses; skipped",
                );
                continue;
            }
            if code.starts_with("x-") {
                continue;
            }
            if !STATUS_CODE.is_match(code) {
                self.error(
                    at,
                    format!("response code {code} is not a 3-digit HTTP status"),
                );
                continue;
            }
            let Some((response, response_pointer)) = self.deref(response, &at) else {
                continue;
            };
            let Some(response) = self.object(response, &response_pointer, "a response") else {
                continue;
            };
            let mut method_response = MethodResponse {
                status_code: code.clone(),
                response_parameters: BTreeMap::new(),
                response_models: BTreeMap::new(),
            };
            if let Some(headers) = response.get("headers") {
                let headers_pointer = child(&response_pointer, "headers");
                if let Some(headers) = self.object(headers, &headers_pointer, "headers") {
                    for (name, header) in headers {
                        let required = self
                            .deref(header, &child(&headers_pointer, name))
                            .and_then(|(header, _)| header.get("required").and_then(Value::as_bool))
                            .unwrap_or(false);
                        method_response
                            .response_parameters
                            .insert(format!("method.response.header.{name}"), required);
                    }
                }
            }
            if self.oas3 {
                if let Some(content) = response.get("content").and_then(Value::as_object) {
                    for (content_type, media) in content {
                        if let Some(schema) = media.get("schema") {
                            let model = self.model_for_schema(schema);
                            method_response
                                .response_models
                                .insert(content_type.clone(), model);
                        }
                    }
                }
            } else if let Some(schema) = response.get("schema") {
                let model = self.model_for_schema(schema);
                for content_type in self.media_types(operation, "produces") {
                    method_response
                        .response_models
                        .insert(content_type, model.clone());
                }
            }
            method
                .method_responses
                .insert(code.clone(), method_response);
        }
    }

    fn apply_security(&mut self, security: &'a Value, pointer: &str, method: &mut Method) {
        let Value::Array(requirements) = security else {
            self.error(
                pointer,
                format!("security must be an array, not {}", type_name(security)),
            );
            return;
        };
        let mut authorizer_set = false;
        for (i, requirement) in requirements.iter().enumerate() {
            let at = index(pointer, i);
            let Some(requirement) = self.object(requirement, &at, "a security requirement") else {
                continue;
            };
            for (name, scopes) in requirement {
                let scheme_pointer = child(&at, name);
                let Some(scheme) = self.schemes.get(name).cloned() else {
                    self.error(
                        scheme_pointer,
                        format!("security scheme {name} is not defined"),
                    );
                    continue;
                };
                match scheme {
                    Scheme::ApiKey => {
                        method.api_key_required = true;
                        self.api_key_used = true;
                    }
                    Scheme::AwsIam => method.authorization_type = "AWS_IAM".to_string(),
                    Scheme::Authorizer {
                        authorization_type,
                        id,
                    } => {
                        if authorizer_set {
                            self.warn(
                                scheme_pointer,
                                format!("a method has at most one authorizer; {name} is ignored"),
                            );
                            continue;
                        }
                        authorizer_set = true;
                        method.authorization_type = authorization_type.to_string();
                        method.authorizer_id = Some(id);
                        method.authorization_scopes =
                            self.string_list(Some(scopes), &scheme_pointer);
                    }
                    Scheme::Unsupported => {}
                }
            }
        }
    }

    // ---- integrations ----------------------------------------------------------------------

    fn import_integration(
        &mut self,
        value: &'a Value,
        pointer: &str,
        context: &OperationContext<'_, 'a>,
    ) -> Option<Integration> {
        let (value, pointer) = self.deref(value, pointer)?;
        let map = self.object(value, &pointer, "x-amazon-apigateway-integration")?;
        let type_pointer = child(&pointer, "type");
        let integration_type = match map.get("type") {
            Some(Value::String(text)) => match IntegrationType::parse(text) {
                Some(kind) => kind,
                None => {
                    self.error(
                        type_pointer,
                        format!("unknown integration type {text}: expected http, http_proxy, aws, aws_proxy or mock"),
                    );
                    return None;
                }
            },
            Some(other) => {
                self.error(
                    type_pointer,
                    format!(
                        "integration type must be a string, not {}",
                        type_name(other)
                    ),
                );
                return None;
            }
            None => {
                self.error(
                    type_pointer,
                    "missing integration type (http, http_proxy, aws, aws_proxy or mock)",
                );
                return None;
            }
        };
        let mut integration = Integration::new(integration_type);
        let where_ = format!(
            "resource '{}' and method '{}'",
            context.template, context.verb
        );

        // httpMethod
        let method_pointer = child(&pointer, "httpMethod");
        integration.http_method = match map.get("httpMethod") {
            Some(Value::String(verb)) => {
                let upper = verb.to_ascii_uppercase();
                if INTEGRATION_VERBS.contains(&upper.as_str()) {
                    Some(upper)
                } else {
                    self.error(
                        method_pointer.clone(),
                        format!("Invalid HttpMethod specified ({verb}). Valid options are GET,PUT,POST,DELETE,PATCH,OPTIONS,HEAD,ANY"),
                    );
                    None
                }
            }
            None | Some(Value::Null) => {
                if integration_type != IntegrationType::Mock {
                    self.error(
                        method_pointer.clone(),
                        format!(
                            "an integration of type {} needs httpMethod",
                            integration_type.as_str()
                        ),
                    );
                }
                None
            }
            Some(other) => {
                self.error(
                    method_pointer.clone(),
                    format!("httpMethod must be a string, not {}", type_name(other)),
                );
                None
            }
        };
        if integration_type == IntegrationType::AwsProxy
            && integration
                .http_method
                .as_deref()
                .is_some_and(|verb| verb != "POST")
        {
            self.warn(
                method_pointer,
                "Lambda proxy integrations must call Lambda with POST; invocations will fail with 500",
            );
        }

        // uri
        let uri_pointer = child(&pointer, "uri");
        integration.uri = self.opt_string(map.get("uri"), &uri_pointer);
        match (&integration.uri, integration_type) {
            (None, IntegrationType::Mock) => {}
            (None, kind) => {
                if map.get("uri").is_none() {
                    self.error(
                        uri_pointer,
                        format!("an integration of type {} needs a uri", kind.as_str()),
                    );
                }
            }
            (Some(uri), kind) => {
                let concrete = STAGE_VARIABLE.replace_all(uri, "stagevariable");
                match kind {
                    IntegrationType::Http | IntegrationType::HttpProxy => {
                        if !HTTP_URI.is_match(&concrete) {
                            self.error(
                                uri_pointer,
                                format!("Invalid HTTP endpoint specified for URI: {uri} is not an absolute http:// or https:// URL"),
                            );
                        }
                    }
                    IntegrationType::AwsProxy => {
                        if !LAMBDA_URI.is_match(&concrete) && !FIREHOSE_URI.is_match(&concrete) {
                            self.error(
                                uri_pointer,
                                "Integrations of type 'AWS_PROXY' currently only supports Lambda function and Firehose stream invocations.",
                            );
                        }
                    }
                    IntegrationType::Aws => {
                        if !AWS_URI.is_match(&concrete) {
                            self.error(
                                uri_pointer,
                                format!("AWS ARN for integration must contain path or action: {uri} is not arn:aws:apigateway:{{region}}:{{service}}:{{path|action}}/..."),
                            );
                        }
                    }
                    IntegrationType::Mock => {}
                }
            }
        }
        if integration_type == IntegrationType::Aws {
            self.warn(
                child(&pointer, "type"),
                "AWS service integrations (type AWS) are stored but not supported yet: invocations will fail",
            );
        }

        integration.connection_type = self.opt_string(
            map.get("connectionType"),
            &child(&pointer, "connectionType"),
        );
        if let Some(kind) = &integration.connection_type {
            if !matches!(kind.as_str(), "INTERNET" | "VPC_LINK") {
                self.error(
                    child(&pointer, "connectionType"),
                    "connectionType must be INTERNET or VPC_LINK",
                );
            }
        } else if matches!(
            integration_type,
            IntegrationType::Http | IntegrationType::HttpProxy
        ) {
            // AWS materialises the default for HTTP integrations (recorded in the import
            // snapshots); doing the same keeps GetIntegration answers identical.
            integration.connection_type = Some("INTERNET".to_string());
        }
        integration.connection_id =
            self.opt_string(map.get("connectionId"), &child(&pointer, "connectionId"));
        integration.credentials =
            self.opt_string(map.get("credentials"), &child(&pointer, "credentials"));

        // requestParameters
        let parameters_pointer = child(&pointer, "requestParameters");
        match map.get("requestParameters") {
            None | Some(Value::Null) => {}
            Some(Value::Object(parameters)) => {
                for (key, source) in parameters {
                    let at = child(&parameters_pointer, key);
                    let Value::String(source) = source else {
                        // AWS's own text; it keeps the rest of the integration.
                        self.warn(
                            at,
                            format!(
                                "Invalid format for 'requestParameters'. Expected type string for property '{key}' of {where_} but got '{}'",
                                scalar_text(source)
                            ),
                        );
                        continue;
                    };
                    if !INTEGRATION_PARAM_KEY.is_match(key) {
                        self.error(
                            at,
                            format!("invalid mapping target {key}: expected integration.request.{{path|querystring|header|multivaluequerystring|multivalueheader}}.NAME"),
                        );
                        continue;
                    }
                    if !INTEGRATION_PARAM_VALUE.is_match(source) {
                        self.error(
                            at,
                            format!("invalid mapping expression {source}: expected method.request.*, stageVariables.*, context.* or a 'literal'"),
                        );
                        continue;
                    }
                    if let Some(name) = source.strip_prefix("method.request.path.")
                        && !context
                            .path_variables
                            .iter()
                            .any(|variable| variable == name)
                    {
                        self.error(
                                at,
                                format!(
                                    "{source} names a path parameter {name} that the path {} does not have",
                                    context.template
                                ),
                            );
                        continue;
                    }
                    integration
                        .request_parameters
                        .insert(key.clone(), source.clone());
                }
            }
            Some(other) => self.error(
                parameters_pointer,
                format!(
                    "requestParameters must be an object, not {}",
                    type_name(other)
                ),
            ),
        }

        let templates_pointer = child(&pointer, "requestTemplates");
        integration.request_templates =
            self.string_map(map.get("requestTemplates"), &templates_pointer);
        self.warn_vtl(&integration.request_templates, &templates_pointer);

        if let Some(value) = map.get("passthroughBehavior") {
            match value.as_str().and_then(PassthroughBehavior::parse) {
                Some(behavior) => integration.passthrough_behavior = behavior,
                None => self.error(
                    child(&pointer, "passthroughBehavior"),
                    "passthroughBehavior must be when_no_match, when_no_templates or never",
                ),
            }
        }
        integration.content_handling = self.content_handling(
            map.get("contentHandling"),
            &child(&pointer, "contentHandling"),
        );
        if let Some(value) = map.get("timeoutInMillis") {
            match value.as_u64() {
                Some(ms) if (u64::from(INTEGRATION_TIMEOUT_MS_MIN)..=u64::from(INTEGRATION_TIMEOUT_MS_MAX)).contains(&ms) => {
                    integration.timeout_in_millis = ms as u32;
                }
                _ => self.error(
                    child(&pointer, "timeoutInMillis"),
                    format!(
                        "timeoutInMillis must be an integer from {INTEGRATION_TIMEOUT_MS_MIN} to {INTEGRATION_TIMEOUT_MS_MAX}, not {}",
                        scalar_text(value)
                    ),
                ),
            }
        }
        integration.cache_namespace = self
            .opt_string(
                map.get("cacheNamespace"),
                &child(&pointer, "cacheNamespace"),
            )
            .or_else(|| Some(context.resource_id.clone()));
        integration.cache_key_parameters = self.string_list(
            map.get("cacheKeyParameters"),
            &child(&pointer, "cacheKeyParameters"),
        );
        if let Some(tls) = map.get("tlsConfig") {
            let at = child(&pointer, "tlsConfig");
            if let Some(tls) = self.object(tls, &at, "tlsConfig") {
                let skip = self.opt_bool(
                    tls.get("insecureSkipVerification"),
                    &child(&at, "insecureSkipVerification"),
                );
                integration.tls_config = Some(TlsConfig {
                    insecure_skip_verification: skip.unwrap_or(false),
                });
            }
        }
        if let Some(responses) = map.get("responses") {
            self.import_integration_responses(
                responses,
                &child(&pointer, "responses"),
                &mut integration,
            );
        }
        if map.contains_key("payloadFormatVersion") {
            self.warn(
                child(&pointer, "payloadFormatVersion"),
                "payloadFormatVersion applies to HTTP APIs only; REST APIs always use format 1.0, ignored",
            );
        }
        const KNOWN: [&str; 17] = [
            "type",
            "httpMethod",
            "uri",
            "connectionType",
            "connectionId",
            "credentials",
            "requestParameters",
            "requestTemplates",
            "passthroughBehavior",
            "contentHandling",
            "timeoutInMillis",
            "cacheNamespace",
            "cacheKeyParameters",
            "tlsConfig",
            "responses",
            "payloadFormatVersion",
            "$ref",
        ];
        for key in map.keys().filter(|key| !KNOWN.contains(&key.as_str())) {
            self.warn(
                child(&pointer, key),
                format!("integration field {key} is not supported by REST APIs; ignored"),
            );
        }
        Some(integration)
    }

    fn content_handling(
        &mut self,
        value: Option<&Value>,
        pointer: &str,
    ) -> Option<ContentHandling> {
        let value = value.filter(|value| !value.is_null())?;
        let parsed = value.as_str().and_then(ContentHandling::parse);
        if parsed.is_none() {
            self.error(
                pointer,
                "contentHandling must be CONVERT_TO_BINARY or CONVERT_TO_TEXT",
            );
        }
        parsed
    }

    fn warn_vtl(&mut self, templates: &StringMap, pointer: &str) {
        for (content_type, template) in templates {
            if VTL.is_match(template) {
                self.warn(
                    child(pointer, content_type),
                    "mapping template expressions ($variables, #directives) are not evaluated yet; the template is stored",
                );
            }
        }
    }

    fn import_integration_responses(
        &mut self,
        value: &'a Value,
        pointer: &str,
        integration: &mut Integration,
    ) {
        let Some(responses) = self.object(value, pointer, "integration responses") else {
            return;
        };
        for (pattern, response) in responses {
            let at = child(pointer, pattern);
            let Some((response, at)) = self.deref(response, &at) else {
                continue;
            };
            let Some(response) = self.object(response, &at, "an integration response") else {
                continue;
            };
            let status_code = match response.get("statusCode") {
                Some(code @ (Value::String(_) | Value::Number(_))) => scalar_text(code),
                _ => {
                    self.error(
                        child(&at, "statusCode"),
                        "an integration response needs a statusCode",
                    );
                    continue;
                }
            };
            if !STATUS_CODE.is_match(&status_code) {
                self.error(
                    child(&at, "statusCode"),
                    format!("statusCode {status_code} is not a 3-digit HTTP status"),
                );
                continue;
            }
            if pattern != "default"
                && let Err(error) = Regex::new(pattern)
            {
                self.error(
                    at.clone(),
                    format!("selection pattern is not a valid regular expression: {error}"),
                );
                continue;
            }
            if integration.integration_responses.contains_key(&status_code) {
                self.error(
                    child(&at, "statusCode"),
                    format!("another integration response already produces status {status_code}"),
                );
                continue;
            }
            let templates_pointer = child(&at, "responseTemplates");
            let templates = self.string_map(response.get("responseTemplates"), &templates_pointer);
            self.warn_vtl(&templates, &templates_pointer);
            let response_parameters = self.string_map(
                response.get("responseParameters"),
                &child(&at, "responseParameters"),
            );
            let content_handling = self.content_handling(
                response.get("contentHandling"),
                &child(&at, "contentHandling"),
            );
            for key in response.keys() {
                if !matches!(
                    key.as_str(),
                    "statusCode" | "responseParameters" | "responseTemplates" | "contentHandling"
                ) {
                    self.warn(
                        child(&at, key),
                        format!("integration response field {key} is not supported; ignored"),
                    );
                }
            }
            integration.integration_responses.insert(
                status_code.clone(),
                IntegrationResponse {
                    status_code,
                    selection_pattern: (pattern != "default").then(|| pattern.clone()),
                    response_parameters,
                    response_templates: templates,
                    content_handling,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_regexes_compile_and_match() {
        assert!(HTTP_URI.is_match("https://example.com/a?b=c"));
        assert!(HTTP_URI.is_match("http://host:8080"));
        assert!(!HTTP_URI.is_match("${uri}"));
        assert!(!HTTP_URI.is_match("ftp://host"));
        assert!(LAMBDA_URI.is_match(
            "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:1:function:f/invocations"
        ));
        assert!(AWS_URI.is_match("arn:aws:apigateway:us-east-1:s3:path/bucket/key"));
        assert!(FIREHOSE_URI.is_match("arn:aws:apigateway:us-east-1:firehose:action/PutRecord"));
        assert!(INTEGRATION_PARAM_KEY.is_match("integration.request.header.X-Amz-Invocation-Type"));
        assert!(INTEGRATION_PARAM_VALUE.is_match("'Event'"));
        assert!(INTEGRATION_PARAM_VALUE.is_match("method.request.path.petId"));
        assert!(!INTEGRATION_PARAM_VALUE.is_match("method.request.nothing"));
        assert!(VTL.is_match("#set($a = 1)"));
        assert!(VTL.is_match("$input.body"));
        assert!(!VTL.is_match("{\"statusCode\": 200}"));
        assert!(!VTL.is_match("color: #333;"));
        assert!(STATUS_CODE.is_match("200"));
        assert!(!STATUS_CODE.is_match("20"));
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv1a(""), 0x811c_9dc5);
        assert_eq!(fnv1a("a"), 0xe40c_292c);
    }

    #[test]
    fn yaml_integer_keys_become_strings() {
        let value = parse("a:\n  200: x\n  true: y\n").unwrap_or_default();
        assert_eq!(value["a"]["200"], "x");
        assert_eq!(value["a"]["true"], "y");
    }
}
