//! Sizes and counts every write must stay within: AWS's documented quotas where AWS documents
//! one, and a generous bound (named as ours) where it does not.
//!
//! Why in `apply`: every path that writes a definition (the management API's operations and
//! patches, ImportRestApi and PutRestApi, `ctl apply`) ends here, so no path can store a
//! 10 MB name or a million binary media types that every later list call, snapshot and edge
//! then carries. A refusal is a 400 `BadRequestException` whose text names the field and the
//! bound, never the offending value.

use crate::cluster::Refusal;
use crate::{ApiDefinition, RestApi, StringMap};

/// A REST API's name, in characters. Not documented by AWS; ours.
pub const API_NAME_MAX: usize = 1024;
/// A REST API's description, in characters. Not documented by AWS; ours, generous because
/// imports take it from `info.description`, often a long Markdown introduction.
pub const DESCRIPTION_MAX: usize = 16_384;
/// A REST API's version label, in characters. Not documented by AWS; ours.
pub const VERSION_MAX: usize = 1024;
/// Binary media types of one API. Not documented by AWS; ours.
pub const BINARY_MEDIA_TYPES_MAX: usize = 100;
/// One binary media type, in characters: RFC 6838's 127 for the type and for the subtype, and
/// the slash.
pub const MEDIA_TYPE_MAX: usize = 255;
/// Tags on one resource (AWS's tagging quota; "Tags per stage: 50" in API Gateway's quotas).
pub const TAGS_MAX: usize = 50;
/// A tag key, in characters (botocore's `apigateway` model).
pub const TAG_KEY_MAX: usize = 128;
/// A tag value, in characters (botocore's `apigateway` model).
pub const TAG_VALUE_MAX: usize = 256;
/// A resource policy, in characters (API Gateway's REST API quotas).
pub const POLICY_MAX: usize = 8192;
/// Resources of one API, the root included (API Gateway's REST API quotas; AWS raises it on
/// request, Portico does not).
pub const RESOURCES_MAX: usize = 300;
/// A model's schema, in bytes (botocore's `apigateway` model: 400 KB).
pub const MODEL_SCHEMA_MAX: usize = 400 * 1024;
/// Stage variables of one stage (API Gateway's REST API quotas).
pub const STAGE_VARIABLES_MAX: usize = 100;
/// A stage variable's name, in characters (API Gateway's REST API quotas).
pub const STAGE_VARIABLE_NAME_MAX: usize = 64;
/// A stage variable's value, in characters (API Gateway's REST API quotas).
pub const STAGE_VARIABLE_VALUE_MAX: usize = 512;

fn too_long(what: &str, max: usize) -> Refusal {
    Refusal::BadRequest(format!("{what} must be at most {max} characters long"))
}

fn check_length(what: &str, text: &str, max: usize) -> Result<(), Refusal> {
    // Bytes bound characters from above, so only long texts are counted.
    if text.len() > max && text.chars().count() > max {
        return Err(too_long(what, max));
    }
    Ok(())
}

/// A REST API's own fields: name, description, version, binary media types, tags, policy.
pub fn check_rest_api(api: &RestApi) -> Result<(), Refusal> {
    check_length("The REST API name", &api.name, API_NAME_MAX)?;
    if let Some(description) = &api.description {
        check_length("The description", description, DESCRIPTION_MAX)?;
    }
    if let Some(version) = &api.version {
        check_length("The version", version, VERSION_MAX)?;
    }
    if api.binary_media_types.len() > BINARY_MEDIA_TYPES_MAX {
        return Err(Refusal::BadRequest(format!(
            "A REST API may have at most {BINARY_MEDIA_TYPES_MAX} binary media types"
        )));
    }
    for media_type in &api.binary_media_types {
        check_length("A binary media type", media_type, MEDIA_TYPE_MAX)?;
    }
    if let Some(policy) = &api.policy {
        check_length("The resource policy", policy, POLICY_MAX)?;
    }
    check_tags(&api.tags)
}

/// Tags: count, key and value lengths, and no `aws:` prefix (AWS reserves it).
pub fn check_tags(tags: &StringMap) -> Result<(), Refusal> {
    if tags.len() > TAGS_MAX {
        return Err(Refusal::BadRequest(format!(
            "A resource may have at most {TAGS_MAX} tags"
        )));
    }
    for (key, value) in tags {
        check_length("A tag key", key, TAG_KEY_MAX)?;
        check_length("A tag value", value, TAG_VALUE_MAX)?;
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(Refusal::BadRequest(
                "Tag keys must not start with 'aws:'".to_string(),
            ));
        }
    }
    Ok(())
}

/// The refusal when a definition would have more than [`RESOURCES_MAX`] resources (the text
/// API Gateway is reported to send; not recorded here).
pub fn too_many_resources() -> Refusal {
    Refusal::BadRequest(
        "Maximum number of Resources for this API has been reached. Please contact AWS if you need additional Resources."
            .to_string(),
    )
}

/// A whole definition: the API's fields, the number of resources, the size of each model.
pub fn check_definition(definition: &ApiDefinition) -> Result<(), Refusal> {
    check_rest_api(&definition.api)?;
    if definition.resources.len() > RESOURCES_MAX {
        return Err(too_many_resources());
    }
    for model in &definition.models {
        if model
            .schema
            .as_ref()
            .is_some_and(|schema| schema.len() > MODEL_SCHEMA_MAX)
        {
            return Err(Refusal::BadRequest(format!(
                "The schema of model {} is larger than {MODEL_SCHEMA_MAX} bytes",
                model.name
            )));
        }
    }
    Ok(())
}

/// A stage's variables: count, name and value lengths.
pub fn check_stage_variables(variables: &StringMap) -> Result<(), Refusal> {
    if variables.len() > STAGE_VARIABLES_MAX {
        return Err(Refusal::BadRequest(format!(
            "A stage may have at most {STAGE_VARIABLES_MAX} stage variables"
        )));
    }
    for (name, value) in variables {
        check_length("A stage variable name", name, STAGE_VARIABLE_NAME_MAX)?;
        check_length("A stage variable value", value, STAGE_VARIABLE_VALUE_MAX)?;
    }
    Ok(())
}
