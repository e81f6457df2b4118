//! Where outbound calls to AWS services go: AWS's standard endpoint resolution.
//!
//! The order is the one every AWS SDK and the AWS CLI follow (botocore's
//! `EndpointURLProvider`), with the node's config file in place of the shared config file:
//!
//! 1. `AWS_ENDPOINT_URL_<SERVICE>`: the service id upper-cased, spaces and dashes turned into
//!    `_` (`Cognito Identity Provider` → `AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER`). For
//!    Cognito user pools Portico also reads `AWS_ENDPOINT_URL_COGNITO_IDP` (the endpoint
//!    prefix spelled the same way), the name issue 12 uses; the SDK's name wins when both are
//!    set.
//! 2. `AWS_ENDPOINT_URL`.
//! 3. The node's `[aws.services.<service>] endpoint_url` (snake-case service id).
//! 4. The node's `[aws] endpoint_url`.
//! 5. AWS's own endpoint: `https://{prefix}.{region}.amazonaws.com`.
//!
//! The environment is read once, when a node builds its clients ([`resolve`] takes the lookup
//! as a closure so the order is tested without touching the process environment); the request
//! path only formats a URL for a region.

use std::collections::BTreeMap;

use serde::Deserialize;

/// An AWS service Portico calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// The `serviceId` of botocore's model (`metadata.serviceId`).
    pub id: &'static str,
    /// The `endpointPrefix`: the host label of AWS's endpoint.
    pub endpoint_prefix: &'static str,
}

/// Amazon Cognito user pools (`cognito-idp`): the issuer of COGNITO_USER_POOLS tokens.
pub const COGNITO_IDP: Service = Service {
    id: "Cognito Identity Provider",
    endpoint_prefix: "cognito-idp",
};

/// Every service a node's config may name under `[aws.services]`.
pub const SERVICES: &[Service] = &[COGNITO_IDP];

impl Service {
    /// `cognito_identity_provider`: the key of `[aws.services.*]` (as in the AWS shared config
    /// file's `services` sections).
    pub fn config_key(&self) -> String {
        transform(self.id).to_ascii_lowercase()
    }

    /// The environment variables naming this service's endpoint, the standard one first.
    pub fn env_vars(&self) -> Vec<String> {
        let mut names = vec![format!("AWS_ENDPOINT_URL_{}", transform(self.id))];
        let alias = format!("AWS_ENDPOINT_URL_{}", transform(self.endpoint_prefix));
        if !names.contains(&alias) {
            names.push(alias);
        }
        names
    }
}

/// Upper case, spaces and dashes as `_`.
fn transform(id: &str) -> String {
    id.chars()
        .map(|c| match c {
            ' ' | '-' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// The `[aws]` section of an edge's or origin's config file (and `dev --aws-endpoint-url`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// Every AWS service's endpoint, unless a service has its own.
    pub endpoint_url: Option<String>,
    /// Per service, by snake-case service id (`cognito_identity_provider`).
    #[serde(default)]
    pub services: BTreeMap<String, ServiceConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub endpoint_url: Option<String>,
}

impl AwsConfig {
    /// Every problem with the section, as `(field, message)`: unknown services and URLs that
    /// are not `http(s)://host[:port][/path]`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if let Some(url) = &self.endpoint_url
            && let Err(message) = check_url(url)
        {
            problems.push(("aws.endpoint_url".to_string(), message));
        }
        for (name, service) in &self.services {
            let field = format!("aws.services.{name}");
            if !SERVICES.iter().any(|known| known.config_key() == *name) {
                let known: Vec<String> = SERVICES.iter().map(Service::config_key).collect();
                problems.push((
                    field,
                    format!(
                        "Portico calls no service named {name:?} (known: {})",
                        known.join(", ")
                    ),
                ));
                continue;
            }
            if let Some(url) = &service.endpoint_url
                && let Err(message) = check_url(url)
            {
                problems.push((format!("{field}.endpoint_url"), message));
            }
        }
        problems
    }
}

/// Where a service's requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// AWS's regional endpoint, `https://{prefix}.{region}.amazonaws.com`.
    Aws { endpoint_prefix: &'static str },
    /// An override, the same for every region (no trailing `/`).
    Url(String),
}

impl Endpoint {
    /// The base URL for a region (no trailing `/`).
    pub fn base_url(&self, region: &str) -> String {
        match self {
            Endpoint::Aws { endpoint_prefix } => {
                format!("https://{endpoint_prefix}.{region}.amazonaws.com")
            }
            Endpoint::Url(url) => url.clone(),
        }
    }
}

/// Where it was found, for the log line a node writes at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Env(String),
    ServiceConfig,
    GlobalConfig,
    Default,
}

/// Resolves `service`'s endpoint from the environment (through `env`) and the node's config.
/// An empty variable counts as unset, as in botocore. A malformed URL is an error naming
/// where it came from, rather than calls to a wrong host.
pub fn resolve(
    service: Service,
    config: &AwsConfig,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(Endpoint, Source), String> {
    let mut candidates: Vec<(String, Source)> = Vec::new();
    for name in service.env_vars() {
        if let Some(value) = env(&name).filter(|value| !value.is_empty()) {
            candidates.push((value, Source::Env(name)));
        }
    }
    if let Some(value) = env("AWS_ENDPOINT_URL").filter(|value| !value.is_empty()) {
        candidates.push((value, Source::Env("AWS_ENDPOINT_URL".to_string())));
    }
    if let Some(value) = config
        .services
        .get(&service.config_key())
        .and_then(|service| service.endpoint_url.clone())
    {
        candidates.push((value, Source::ServiceConfig));
    }
    if let Some(value) = config.endpoint_url.clone() {
        candidates.push((value, Source::GlobalConfig));
    }
    match candidates.into_iter().next() {
        Some((url, source)) => {
            check_url(&url).map_err(|message| format!("{source:?}: {message}"))?;
            Ok((Endpoint::Url(url.trim_end_matches('/').to_string()), source))
        }
        None => Ok((
            Endpoint::Aws {
                endpoint_prefix: service.endpoint_prefix,
            },
            Source::Default,
        )),
    }
}

/// [`resolve`] against the process environment.
pub fn resolve_from_process(
    service: Service,
    config: &AwsConfig,
) -> Result<(Endpoint, Source), String> {
    resolve(service, config, |name| std::env::var(name).ok())
}

fn check_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| format!("{url:?} is not a URL like http://127.0.0.1:5000"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(format!("{url:?} must start with http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{url:?} names no host"));
    }
    if uri.query().is_some() {
        return Err(format!("{url:?} must not have a query string"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    fn config(global: Option<&str>, cognito: Option<&str>) -> AwsConfig {
        let mut config = AwsConfig {
            endpoint_url: global.map(str::to_string),
            ..AwsConfig::default()
        };
        if let Some(url) = cognito {
            config.services.insert(
                "cognito_identity_provider".to_string(),
                ServiceConfig {
                    endpoint_url: Some(url.to_string()),
                },
            );
        }
        config
    }

    fn url(result: Result<(Endpoint, Source), String>) -> String {
        result.unwrap().0.base_url("eu-west-1")
    }

    #[test]
    fn names_follow_the_sdk_rule() {
        assert_eq!(
            COGNITO_IDP.env_vars(),
            [
                "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER",
                "AWS_ENDPOINT_URL_COGNITO_IDP"
            ]
        );
        assert_eq!(COGNITO_IDP.config_key(), "cognito_identity_provider");
    }

    #[test]
    fn the_order_is_service_env_global_env_service_config_global_config_default() {
        let full = config(Some("http://global-config"), Some("http://service-config"));
        let all = env(&[
            (
                "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER",
                "http://sdk-name",
            ),
            ("AWS_ENDPOINT_URL_COGNITO_IDP", "http://alias"),
            ("AWS_ENDPOINT_URL", "http://global-env"),
        ]);
        assert_eq!(url(resolve(COGNITO_IDP, &full, &all)), "http://sdk-name");
        let alias = env(&[
            ("AWS_ENDPOINT_URL_COGNITO_IDP", "http://alias/"),
            ("AWS_ENDPOINT_URL", "http://global-env"),
        ]);
        assert_eq!(url(resolve(COGNITO_IDP, &full, &alias)), "http://alias");
        let global = env(&[("AWS_ENDPOINT_URL", "http://global-env")]);
        assert_eq!(
            url(resolve(COGNITO_IDP, &full, &global)),
            "http://global-env"
        );
        let empty = env(&[("AWS_ENDPOINT_URL", "")]);
        assert_eq!(
            url(resolve(COGNITO_IDP, &full, &empty)),
            "http://service-config"
        );
        assert_eq!(
            url(resolve(
                COGNITO_IDP,
                &config(Some("http://global-config"), None),
                env(&[])
            )),
            "http://global-config"
        );
        let (endpoint, source) = resolve(COGNITO_IDP, &AwsConfig::default(), env(&[])).unwrap();
        assert_eq!(source, Source::Default);
        assert_eq!(
            endpoint.base_url("ap-south-1"),
            "https://cognito-idp.ap-south-1.amazonaws.com"
        );
    }

    #[test]
    fn bad_urls_are_refused_with_their_source() {
        let error = resolve(
            COGNITO_IDP,
            &AwsConfig::default(),
            env(&[("AWS_ENDPOINT_URL", "ftp://x")]),
        )
        .unwrap_err();
        assert!(error.contains("AWS_ENDPOINT_URL"), "{error}");
        let problems = AwsConfig {
            endpoint_url: Some("not a url".to_string()),
            services: BTreeMap::from([
                (
                    "cognito_identity_provider".to_string(),
                    ServiceConfig {
                        endpoint_url: Some("http://ok:5000/base".to_string()),
                    },
                ),
                ("s4".to_string(), ServiceConfig::default()),
            ]),
        }
        .problems();
        let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["aws.endpoint_url", "aws.services.s4"]);
    }
}
