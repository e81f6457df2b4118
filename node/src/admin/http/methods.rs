//! The rest of the REST control plane (issue 15): UpdateResource, UpdateIntegration,
//! UpdateMethodResponse, UpdateIntegrationResponse, DeleteMethodResponse,
//! DeleteIntegrationResponse and UpdateDeployment.
//!
//! The rules live in `portico_proto::admin::apply` (they depend on the replicated state); this
//! layer parses the patch, names the operation's input in AWS's validation texts and renders
//! the answer with the status codes of botocore's model (UpdateMethodResponse answers 201,
//! the deletes 204).

use http::StatusCode;
use portico_proto::admin::AdminOp;
use portico_proto::cluster::Command;

use super::{
    AdminApi, ApiError, Call, Outcome, api, deployment, empty, integration, integration_response,
    json_response, method_response, resource,
};
use crate::admin::render;

/// Where one of these operations acts: the path's ids.
pub(super) struct Target<'a> {
    pub api_id: &'a str,
    pub resource_id: &'a str,
    pub verb: &'a str,
}

impl AdminApi {
    pub(super) async fn update_resource(
        &self,
        call: &Call<'_>,
        api_id: &str,
        resource_id: &str,
    ) -> Outcome {
        let patch = render::parse_patch_for("updateResourceInput", &call.json()?)
            .map_err(ApiError::bad_request)?;
        let state = self
            .write(AdminOp::UpdateResource {
                api_id: api_id.to_string(),
                resource_id: resource_id.to_string(),
                patch,
            })
            .await?;
        let resource = resource(api(&state, api_id)?, resource_id)?;
        Ok(json_response(
            StatusCode::OK,
            &render::render_resource(resource, false),
        ))
    }

    pub(super) async fn update_integration(&self, call: &Call<'_>, at: Target<'_>) -> Outcome {
        let patch = render::parse_patch_for("updateIntegrationInput", &call.json()?)
            .map_err(ApiError::bad_request)?;
        let state = self
            .write(AdminOp::UpdateIntegration {
                api_id: at.api_id.to_string(),
                resource_id: at.resource_id.to_string(),
                http_method: at.verb.to_ascii_uppercase(),
                patch,
            })
            .await?;
        let integration = integration(api(&state, at.api_id)?, at.resource_id, at.verb)?;
        Ok(json_response(
            StatusCode::OK,
            &render::render_integration(integration),
        ))
    }

    pub(super) async fn update_method_response(
        &self,
        call: &Call<'_>,
        at: Target<'_>,
        status: &str,
    ) -> Outcome {
        let patch =
            render::parse_patch_with_status("updateMethodResponseInput", &call.json()?, status)
                .map_err(ApiError::bad_request)?;
        let state = self
            .write(AdminOp::UpdateMethodResponse {
                api_id: at.api_id.to_string(),
                resource_id: at.resource_id.to_string(),
                http_method: at.verb.to_ascii_uppercase(),
                status_code: status.to_string(),
                patch,
            })
            .await?;
        let response = method_response(api(&state, at.api_id)?, at.resource_id, at.verb, status)?;
        Ok(json_response(
            StatusCode::CREATED,
            &render::render_method_response(response),
        ))
    }

    pub(super) async fn update_integration_response(
        &self,
        call: &Call<'_>,
        at: Target<'_>,
        status: &str,
    ) -> Outcome {
        let patch = render::parse_patch_with_status(
            "updateIntegrationResponseInput",
            &call.json()?,
            status,
        )
        .map_err(ApiError::bad_request)?;
        let state = self
            .write(AdminOp::UpdateIntegrationResponse {
                api_id: at.api_id.to_string(),
                resource_id: at.resource_id.to_string(),
                http_method: at.verb.to_ascii_uppercase(),
                status_code: status.to_string(),
                patch,
            })
            .await?;
        let response =
            integration_response(api(&state, at.api_id)?, at.resource_id, at.verb, status)?;
        Ok(json_response(
            StatusCode::OK,
            &render::render_integration_response(response),
        ))
    }

    pub(super) async fn delete_method_response(&self, at: Target<'_>, status: &str) -> Outcome {
        self.control
            .write(Command::Admin(AdminOp::DeleteMethodResponse {
                api_id: at.api_id.to_string(),
                resource_id: at.resource_id.to_string(),
                http_method: at.verb.to_ascii_uppercase(),
                status_code: status.to_string(),
            }))
            .await?;
        Ok(empty(StatusCode::NO_CONTENT))
    }

    pub(super) async fn delete_integration_response(
        &self,
        at: Target<'_>,
        status: &str,
    ) -> Outcome {
        self.control
            .write(Command::Admin(AdminOp::DeleteIntegrationResponse {
                api_id: at.api_id.to_string(),
                resource_id: at.resource_id.to_string(),
                http_method: at.verb.to_ascii_uppercase(),
                status_code: status.to_string(),
            }))
            .await?;
        Ok(empty(StatusCode::NO_CONTENT))
    }

    pub(super) async fn update_deployment(
        &self,
        call: &Call<'_>,
        api_id: &str,
        deployment_id: &str,
    ) -> Outcome {
        let patch = render::parse_patch_for("updateDeploymentInput", &call.json()?)
            .map_err(ApiError::bad_request)?;
        let state = self
            .write(AdminOp::UpdateDeployment {
                api_id: api_id.to_string(),
                deployment_id: deployment_id.to_string(),
                patch,
            })
            .await?;
        let deployment = deployment(api(&state, api_id)?, deployment_id)?;
        Ok(json_response(
            StatusCode::OK,
            &render::render_deployment(deployment),
        ))
    }
}
