//! The rest of the REST control plane's editing calls (issue 15): removing and patching method
//! and integration responses, patching integrations, moving and renaming resources, and
//! patching deployments. Pure, like the rest of [`super`].
//!
//! Scripts written against AWS patch these resources one path at a time, so each path AWS
//! documents is handled here and every other path is refused with AWS's text. Texts recorded
//! from AWS (LocalStack's validated snapshots) are used where they exist; the others are ours
//! and listed in ARCHITECTURE.md's deviations.
//!
//! These edits change the API's working definition only: a stage keeps serving its
//! deployment's frozen copy until the API is deployed again, as on AWS.

use std::collections::{BTreeMap, BTreeSet};

use crate::cluster::Refusal;
use crate::model::{
    ApiDefinition, ApiState, ContentHandling, IntegrationType, PassthroughBehavior, StringMap,
    TlsConfig,
};

use super::auth::{invalid_patch_path, java_bool};
use super::{
    BUILTIN_MODELS, PatchOperation, bad, check_integration, check_op, integration_not_found,
    is_greedy, is_variable, join_path, method_mut, required_value, resource_mut,
    resource_not_found, unescape_pointer, unsupported_op, validate_path_part,
};

fn status_not_found() -> Refusal {
    Refusal::NotFound("Invalid Response status code specified".to_string())
}

/// One pointer segment after `prefix` (`/responseModels/application~1json`), unescaped; a
/// path with more segments is refused as AWS does (recorded: `/wrong/method.response...`).
fn map_key(path: &str, prefix: &str) -> Option<Result<String, Refusal>> {
    let rest = path.strip_prefix(prefix)?;
    if rest.is_empty() || rest.contains('/') {
        return Some(Err(invalid_patch_path(path)));
    }
    Some(Ok(unescape_pointer(rest)))
}

/// A string-valued map member (`/requestTemplates/{type}`, `/responseParameters/{name}`):
/// `add` sets it, `replace` sets it when it exists, `remove` drops it; a missing member is
/// answered with `missing` (404).
fn patch_string_member(
    map: &mut StringMap,
    key: String,
    operation: &PatchOperation,
    missing: &str,
) -> Result<(), Refusal> {
    match operation.op.as_str() {
        "add" => {
            map.insert(key, operation.value.clone().unwrap_or_default());
        }
        "replace" => {
            let Some(slot) = map.get_mut(&key) else {
                return Err(Refusal::NotFound(missing.to_string()));
            };
            *slot = operation.value.clone().unwrap_or_default();
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

fn check_add_remove_replace(operation: &PatchOperation) -> Result<(), Refusal> {
    check_op(operation)?;
    if !matches!(operation.op.as_str(), "add" | "remove" | "replace") {
        return Err(unsupported_op());
    }
    Ok(())
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

fn optional(operation: &PatchOperation) -> Option<String> {
    operation.value.clone().filter(|value| !value.is_empty())
}

fn parse_content_handling(operation: &PatchOperation) -> Result<Option<ContentHandling>, Refusal> {
    match optional(operation) {
        None => Ok(None),
        Some(text) => ContentHandling::parse(&text).map(Some).ok_or_else(|| {
            bad(format!(
                "Invalid value '{text}' for path {}. Must be one of: [CONVERT_TO_BINARY, CONVERT_TO_TEXT]",
                operation.path
            ))
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Deletes

pub(super) fn delete_method_response(
    definition: &mut ApiDefinition,
    resource_id: &str,
    http_method: &str,
    status_code: &str,
) -> Result<(), Refusal> {
    method_mut(definition, resource_id, http_method)?
        .method_responses
        .remove(status_code)
        .map(|_| ())
        .ok_or_else(status_not_found)
}

/// An unknown method is reported as an unknown integration (recorded, LS api
/// `test_delete_integration_response_errors` `non-existent-method`).
pub(super) fn delete_integration_response(
    definition: &mut ApiDefinition,
    resource_id: &str,
    http_method: &str,
    status_code: &str,
) -> Result<(), Refusal> {
    integration_of(definition, resource_id, http_method)?
        .integration_responses
        .remove(status_code)
        .map(|_| ())
        .ok_or_else(status_not_found)
}

fn integration_of<'d>(
    definition: &'d mut ApiDefinition,
    resource_id: &str,
    http_method: &str,
) -> Result<&'d mut crate::model::Integration, Refusal> {
    resource_mut(definition, resource_id)?
        .resource_methods
        .get_mut(&http_method.to_ascii_uppercase())
        .ok_or_else(integration_not_found)?
        .method_integration
        .as_mut()
        .ok_or_else(integration_not_found)
}

// ---------------------------------------------------------------------------------------------
// UpdateMethodResponse

/// Paths: `/responseParameters/{name}` (value `true`/`false`) and
/// `/responseModels/{content type}` (value a model name).
pub(super) fn update_method_response(
    definition: &mut ApiDefinition,
    resource_id: &str,
    http_method: &str,
    status_code: &str,
    patch: &[PatchOperation],
) -> Result<(), Refusal> {
    let models: Vec<String> = definition
        .models
        .iter()
        .map(|model| model.name.clone())
        .collect();
    let method = method_mut(definition, resource_id, http_method)?;
    let mut response = method
        .method_responses
        .get(status_code)
        .cloned()
        .ok_or_else(status_not_found)?;
    for operation in patch {
        check_add_remove_replace(operation)?;
        let path = operation.path.as_str();
        if let Some(name) = map_key(path, "/responseParameters/") {
            let name = name?;
            match operation.op.as_str() {
                "add" => {
                    response
                        .response_parameters
                        .insert(name, java_bool(operation));
                }
                "replace" => match response.response_parameters.get_mut(&name) {
                    Some(slot) => *slot = java_bool(operation),
                    None => {
                        return Err(Refusal::NotFound("Invalid parameter name specified".into()));
                    }
                },
                _ => {
                    if response.response_parameters.remove(&name).is_none() {
                        return Err(Refusal::NotFound("Invalid parameter name specified".into()));
                    }
                }
            }
        } else if let Some(content_type) = map_key(path, "/responseModels/") {
            let content_type = content_type?;
            if operation.op == "remove" {
                if response.response_models.remove(&content_type).is_none() {
                    return Err(Refusal::NotFound(
                        "Content-Type specified was not found".into(),
                    ));
                }
                continue;
            }
            if operation.op == "replace" && !response.response_models.contains_key(&content_type) {
                return Err(Refusal::NotFound(
                    "Content-Type specified was not found".into(),
                ));
            }
            let model = required_value(operation)?.to_string();
            if !BUILTIN_MODELS.contains(&model.as_str()) && !models.contains(&model) {
                return Err(bad(format!("Invalid model identifier specified: {model}")));
            }
            response.response_models.insert(content_type, model);
        } else {
            return Err(invalid_patch_path(path));
        }
    }
    method
        .method_responses
        .insert(status_code.to_string(), response);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// UpdateIntegrationResponse

/// Paths: `/selectionPattern`, `/contentHandling` (replace), `/responseParameters/{name}` and
/// `/responseTemplates/{content type}` (add, replace, remove).
pub(super) fn update_integration_response(
    definition: &mut ApiDefinition,
    resource_id: &str,
    http_method: &str,
    status_code: &str,
    patch: &[PatchOperation],
) -> Result<(), Refusal> {
    let integration = integration_of(definition, resource_id, http_method)?;
    let mut response = integration
        .integration_responses
        .get(status_code)
        .cloned()
        .ok_or_else(status_not_found)?;
    for operation in patch {
        check_add_remove_replace(operation)?;
        let path = operation.path.as_str();
        if let Some(name) = map_key(path, "/responseParameters/") {
            patch_string_member(
                &mut response.response_parameters,
                name?,
                operation,
                "Invalid parameter name specified",
            )?;
            continue;
        }
        if let Some(content_type) = map_key(path, "/responseTemplates/") {
            patch_string_member(
                &mut response.response_templates,
                content_type?,
                operation,
                "Content-Type specified was not found",
            )?;
            continue;
        }
        match path {
            "/selectionPattern" => {
                replace_only(operation)?;
                response.selection_pattern = operation.value.clone();
            }
            "/contentHandling" => {
                replace_only(operation)?;
                response.content_handling = parse_content_handling(operation)?;
            }
            _ => return Err(invalid_patch_path(path)),
        }
    }
    integration
        .integration_responses
        .insert(status_code.to_string(), response);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// UpdateIntegration

/// Paths: the scalar members (replace), `/requestParameters/{name}` and
/// `/requestTemplates/{content type}` (add, replace, remove), `/cacheKeyParameters/{name}`
/// (add, remove). The result is checked as PutIntegration checks its input.
pub(super) fn update_integration(
    definition: &mut ApiDefinition,
    resource_id: &str,
    http_method: &str,
    patch: &[PatchOperation],
) -> Result<(), Refusal> {
    let integration = integration_of(definition, resource_id, http_method)?;
    let mut updated = integration.clone();
    for operation in patch {
        check_add_remove_replace(operation)?;
        let path = operation.path.as_str();
        if let Some(name) = map_key(path, "/requestParameters/") {
            patch_string_member(
                &mut updated.request_parameters,
                name?,
                operation,
                "Invalid parameter name specified",
            )?;
            continue;
        }
        if let Some(content_type) = map_key(path, "/requestTemplates/") {
            patch_string_member(
                &mut updated.request_templates,
                content_type?,
                operation,
                "Content-Type specified was not found",
            )?;
            continue;
        }
        if let Some(name) = map_key(path, "/cacheKeyParameters/") {
            let name = name?;
            match operation.op.as_str() {
                "add" => {
                    if !updated.cache_key_parameters.contains(&name) {
                        updated.cache_key_parameters.push(name);
                    }
                }
                "remove" => updated.cache_key_parameters.retain(|known| known != &name),
                _ => {
                    return Err(bad(
                        "Invalid patch operation specified. Must be one of: [add, remove]",
                    ));
                }
            }
            continue;
        }
        replace_only(operation)?;
        match path {
            "/uri" => updated.uri = optional(operation),
            "/httpMethod" => updated.http_method = optional(operation),
            "/type" => {
                let text = required_value(operation)?;
                updated.integration_type = IntegrationType::parse(text).ok_or_else(|| {
                    bad(format!(
                        "Invalid value '{text}' for path /type. Must be one of: [HTTP, AWS, MOCK, HTTP_PROXY, AWS_PROXY]"
                    ))
                })?;
            }
            "/passthroughBehavior" => {
                let text = required_value(operation)?;
                updated.passthrough_behavior = PassthroughBehavior::parse(text).ok_or_else(|| {
                    bad(format!(
                        "Invalid value '{text}' for path /passthroughBehavior. Must be one of: [WHEN_NO_MATCH, WHEN_NO_TEMPLATES, NEVER]"
                    ))
                })?;
            }
            "/contentHandling" => updated.content_handling = parse_content_handling(operation)?,
            "/timeoutInMillis" => {
                let text = required_value(operation)?;
                updated.timeout_in_millis = text.parse().map_err(|_| {
                    bad(format!(
                        "Invalid timeout value '{text}' for path /timeoutInMillis"
                    ))
                })?;
            }
            "/connectionType" => updated.connection_type = optional(operation),
            "/connectionId" => updated.connection_id = optional(operation),
            "/credentials" => updated.credentials = optional(operation),
            "/cacheNamespace" => {
                updated.cache_namespace =
                    optional(operation).or_else(|| Some(resource_id.to_string()));
            }
            "/tlsConfig/insecureSkipVerification" => {
                updated.tls_config = Some(TlsConfig {
                    insecure_skip_verification: java_bool(operation),
                });
            }
            _ => return Err(invalid_patch_path(path)),
        }
    }
    check_integration(&updated)?;
    *integration = updated;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// UpdateResource

/// Paths `/pathPart` and `/parentId`, `replace` only, with AWS's texts (recorded, LS api
/// `test_update_resource_behaviour`, `test_update_resource_on_root`). A resource and its
/// descendants keep their ids and methods; their paths follow. A moved subtree goes to the end
/// of the resource list so that parents still come before their children.
pub(super) fn update_resource(
    definition: &mut ApiDefinition,
    resource_id: &str,
    patch: &[PatchOperation],
) -> Result<(), Refusal> {
    let resource = definition
        .resource(resource_id)
        .ok_or_else(resource_not_found)?;
    let mut parent_id = resource.parent_id.clone();
    let mut path_part = resource.path_part.clone();
    for operation in patch {
        check_op(operation)?;
        let path = operation.path.as_str();
        if operation.op != "replace" {
            if matches!(path, "/pathPart" | "/parentId") {
                return Err(bad(format!(
                    "Invalid patch path  '{path}' specified for op '{}'. Please choose supported operations",
                    operation.op
                )));
            }
            return Err(bad(format!(
                "Invalid patch path  '{path}' specified for op '{}'. Must be one of: [/parentId, /pathPart]",
                operation.op
            )));
        }
        match path {
            "/pathPart" => {
                if parent_id.is_none() {
                    return Err(bad("Root resource cannot update its pathPart."));
                }
                let part = operation.value.clone().unwrap_or_default();
                validate_path_part(&part)?;
                path_part = Some(part);
            }
            "/parentId" => {
                if parent_id.is_none() {
                    return Err(bad("Root resource cannot update its parentId."));
                }
                let new_parent = operation.value.clone().unwrap_or_default();
                if definition.resource(&new_parent).is_none() {
                    return Err(resource_not_found());
                }
                parent_id = Some(new_parent);
            }
            _ => {
                return Err(bad(format!(
                    "Invalid patch path  '{path}' specified for op 'replace'. Must be one of: [/parentId, /pathPart]"
                )));
            }
        }
    }
    let (Some(parent_id), Some(path_part)) = (parent_id, path_part) else {
        // The root: only an empty patch reaches here.
        return Ok(());
    };
    let subtree = subtree_ids(definition, resource_id);
    if subtree.contains(parent_id.as_str()) {
        return Err(bad("Resources cannot be cyclical."));
    }
    let parent = definition
        .resource(&parent_id)
        .ok_or_else(resource_not_found)?;
    if let Some(parent_part) = parent.path_part.as_deref().filter(|part| is_greedy(part)) {
        return Err(bad(format!(
            "Cannot create a child of a resource with a greedy path variable: {parent_part}"
        )));
    }
    for sibling in definition.resources.iter().filter(|sibling| {
        sibling.parent_id.as_deref() == Some(parent_id.as_str()) && sibling.id != resource_id
    }) {
        let Some(sibling_part) = sibling.path_part.as_deref() else {
            continue;
        };
        if sibling_part == path_part {
            return Err(Refusal::Conflict(format!(
                "Another resource with the same parent already has this name: {path_part}"
            )));
        }
        if is_variable(&path_part) && is_variable(sibling_part) {
            return Err(bad(format!(
                "A sibling ({sibling_part}) of this resource already has a variable path part -- only one is allowed"
            )));
        }
    }
    if is_greedy(&path_part) && subtree.len() > 1 {
        return Err(bad(format!(
            "Cannot create a child of a resource with a greedy path variable: {path_part}"
        )));
    }
    let new_path = join_path(&parent.path, &path_part);
    let moved = {
        let resource = resource_mut(definition, resource_id)?;
        let moved = resource.parent_id.as_deref() != Some(parent_id.as_str());
        resource.parent_id = Some(parent_id);
        resource.path_part = Some(path_part);
        resource.path = new_path;
        moved
    };
    // Descendants come after their ancestors, so one pass in list order rebuilds every path.
    let mut paths: BTreeMap<String, String> = BTreeMap::new();
    for resource in definition.resources.iter_mut() {
        if resource.id == resource_id {
            paths.insert(resource.id.clone(), resource.path.clone());
        } else if subtree.contains(resource.id.as_str())
            && let Some(parent_path) = resource
                .parent_id
                .as_ref()
                .and_then(|parent| paths.get(parent))
        {
            resource.path = join_path(parent_path, resource.path_part.as_deref().unwrap_or(""));
            paths.insert(resource.id.clone(), resource.path.clone());
        }
    }
    if moved {
        let (inside, outside): (Vec<_>, Vec<_>) = std::mem::take(&mut definition.resources)
            .into_iter()
            .partition(|resource| subtree.contains(resource.id.as_str()));
        definition.resources = outside;
        definition.resources.extend(inside);
    }
    super::check_tree(definition)
}

/// The ids of the resource and its descendants.
fn subtree_ids(definition: &ApiDefinition, resource_id: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    ids.insert(resource_id.to_string());
    // Parents come before children in the list, so one pass finds every descendant.
    for resource in &definition.resources {
        if let Some(parent) = &resource.parent_id
            && ids.contains(parent.as_str())
        {
            ids.insert(resource.id.clone());
        }
    }
    ids
}

// ---------------------------------------------------------------------------------------------
// UpdateDeployment

/// Path `/description` (replace); the frozen definition cannot be patched.
pub(super) fn update_deployment(
    api: &mut ApiState,
    deployment_id: &str,
    patch: &[PatchOperation],
) -> Result<(), Refusal> {
    let deployment = api
        .deployments
        .iter_mut()
        .find(|deployment| deployment.id == deployment_id)
        .ok_or_else(|| {
            Refusal::NotFound(format!(
                "Invalid Deployment identifier specified {deployment_id}"
            ))
        })?;
    let mut description = deployment.description.clone();
    for operation in patch {
        check_add_remove_replace(operation)?;
        match operation.path.as_str() {
            "/description" => {
                replace_only(operation)?;
                description = optional(operation);
            }
            path => return Err(invalid_patch_path(path)),
        }
    }
    deployment.description = description;
    Ok(())
}
