//! The management API: Amazon API Gateway's control plane (`apigateway`, 2015-07-09), so that
//! boto3, the AWS CLI and infrastructure tools drive Portico with `--endpoint-url`.

pub mod control;
pub mod http;
pub mod iam;
pub mod invoke;
pub mod render;
pub mod secrets;
pub mod sigv4;
