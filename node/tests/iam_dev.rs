//! AWS_IAM end to end on `dev --admin`: a user, an access key and a policy created through the
//! IAM endpoint over HTTPS; then the node's `IamVerifier` (fed by dev exactly as the data plane
//! will be) admits a request signed by the `aws-sigv4` crate with the new key's secret and
//! refuses wrong, expired, unauthorized, deactivated and deleted ones with API Gateway's
//! answers.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use common::admin::{Admin, xml_value};
use portico::authorize::iam::{IamDenial, IamVerifier};
use portico::sigv4::SignedRequest;

const HOST: &str = "abcdefghij.execute-api.us-east-1.amazonaws.com";
const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:us-east-1:*:abcdefghij/prod/GET/*"},
  {"Effect":"Deny","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:us-east-1:*:abcdefghij/prod/GET/admin/*"}]}"#;

/// A data-plane request as a client would send it, signed by aws-sigv4 (the SDKs' signer).
struct Request {
    method: String,
    path: String,
    query: Option<String>,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

fn oracle_signed(
    key_id: &str,
    secret: &str,
    region: &str,
    at: SystemTime,
    path_and_query: &str,
) -> Request {
    let uri = format!("https://{HOST}{path_and_query}");
    let body = br#"{"hello":"world"}"#.to_vec();
    let headers = [("host", HOST), ("content-type", "application/json")];
    let identity = Credentials::new(key_id, secret, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("execute-api")
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        "GET",
        uri.as_str(),
        headers.iter().copied(),
        SignableBody::Bytes(&body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut request = http::Request::get(uri.as_str());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let mut request = request.body(()).unwrap();
    instructions.apply_to_request_http1x(&mut request);
    Request {
        method: "GET".into(),
        path: request.uri().path().to_string(),
        query: request.uri().query().map(str::to_string),
        headers: request.headers().clone(),
        body,
    }
}

impl Request {
    fn check(
        &self,
        verifier: &IamVerifier,
        now: i64,
    ) -> Result<portico::authorize::iam::IamCaller, IamDenial> {
        verifier.authenticate(
            &SignedRequest {
                method: &self.method,
                path: &self.path,
                query: self.query.as_deref(),
                headers: &self.headers,
                body: &self.body,
            },
            now,
        )
    }
}

fn method_arn(path: &str) -> String {
    format!("arn:aws:execute-api:us-east-1:000000000000:abcdefghij/prod/GET/{path}")
}

#[tokio::test]
async fn users_made_through_the_iam_endpoint_sign_data_plane_requests() {
    let admin = Admin::start().await;
    let verifier = admin.node.iam.clone();

    let (status, xml) = admin
        .iam(&[("Action", "CreateUser"), ("UserName", "alice")])
        .await;
    assert_eq!(status, 200, "{xml}");
    let user_arn = xml_value(&xml, "Arn").unwrap().to_string();
    assert_eq!(user_arn, "arn:aws:iam::000000000000:user/alice");
    let user_id = xml_value(&xml, "UserId").unwrap().to_string();
    let (status, xml) = admin
        .iam(&[("Action", "CreateAccessKey"), ("UserName", "alice")])
        .await;
    assert_eq!(status, 200, "{xml}");
    let key_id = xml_value(&xml, "AccessKeyId").unwrap().to_string();
    let secret = xml_value(&xml, "SecretAccessKey").unwrap().to_string();
    // Shown once: listing the keys never shows it again.
    let (status, xml) = admin
        .iam(&[("Action", "ListAccessKeys"), ("UserName", "alice")])
        .await;
    assert_eq!(status, 200, "{xml}");
    assert!(xml.contains(&key_id) && !xml.contains(&secret), "{xml}");

    let now = SystemTime::now();
    let now_s = now.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let good = oracle_signed(&key_id, &secret, "us-east-1", now, "/prod/pets?limit=2");
    let caller = good.check(&verifier, now_s).expect("the new key verifies");
    assert_eq!(caller.user_arn, user_arn);
    assert_eq!(caller.caller, user_id);
    assert_eq!(caller.account_id, "000000000000");
    // No policy yet: authenticated, not authorized.
    let denial = verifier
        .authorize(&caller, &method_arn("pets"), "127.0.0.1".parse().unwrap())
        .unwrap_err();
    assert_eq!(denial.error_type(), "AccessDeniedException");
    assert!(
        denial
            .message()
            .starts_with(&format!("User: {user_arn} is not authorized"))
    );

    let (status, xml) = admin
        .iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", "alice"),
            ("PolicyName", "invoke"),
            ("PolicyDocument", POLICY),
        ])
        .await;
    assert_eq!(status, 200, "{xml}");
    let (status, xml) = admin
        .iam(&[
            ("Action", "GetUserPolicy"),
            ("UserName", "alice"),
            ("PolicyName", "invoke"),
        ])
        .await;
    assert_eq!(status, 200, "{xml}");
    let encoded = xml_value(&xml, "PolicyDocument").unwrap();
    assert_eq!(
        percent_encoding::percent_decode_str(encoded)
            .decode_utf8()
            .unwrap(),
        POLICY
    );
    let ip = "127.0.0.1".parse().unwrap();
    assert_eq!(verifier.authorize(&caller, &method_arn("pets"), ip), Ok(()));
    let denial = verifier
        .authorize(&caller, &method_arn("admin/users"), ip)
        .unwrap_err();
    assert!(
        denial.message().ends_with("with an explicit deny"),
        "{}",
        denial.message()
    );
    let post = "arn:aws:execute-api:us-east-1:000000000000:abcdefghij/prod/POST/pets";
    assert!(verifier.authorize(&caller, post, ip).is_err());

    // Wrong secret, expired, unknown key, a region the node does not accept.
    let wrong = oracle_signed(&key_id, "wrong-secret", "us-east-1", now, "/prod/pets");
    assert_eq!(
        wrong.check(&verifier, now_s).unwrap_err().error_type(),
        "InvalidSignatureException"
    );
    let old = oracle_signed(
        &key_id,
        &secret,
        "us-east-1",
        now - Duration::from_secs(900),
        "/prod/pets",
    );
    let expired = old.check(&verifier, now_s).unwrap_err();
    assert_eq!(expired.error_type(), "InvalidSignatureException");
    assert!(
        expired.message().starts_with("Signature expired: "),
        "{}",
        expired.message()
    );
    let unknown = oracle_signed(
        "AKIAUNKNOWNKEY000000",
        &secret,
        "us-east-1",
        now,
        "/prod/pets",
    );
    assert_eq!(
        unknown.check(&verifier, now_s).unwrap_err().message(),
        "The security token included in the request is invalid."
    );
    let elsewhere = oracle_signed(&key_id, &secret, "ap-south-1", now, "/prod/pets");
    assert!(elsewhere.check(&verifier, now_s).is_err());
    // Tampering with a signed request after signing.
    let mut tampered = oracle_signed(&key_id, &secret, "us-east-1", now, "/prod/pets");
    tampered.body.push(b' ');
    assert_eq!(
        tampered.check(&verifier, now_s).unwrap_err().error_type(),
        "InvalidSignatureException"
    );
    let unsigned = Request {
        headers: http::HeaderMap::new(),
        ..oracle_signed(&key_id, &secret, "us-east-1", now, "/prod/pets")
    };
    assert_eq!(
        unsigned.check(&verifier, now_s).unwrap_err().message(),
        "Missing Authentication Token"
    );

    // Deactivated, then deleted: refused at once.
    let (status, _) = admin
        .iam(&[
            ("Action", "UpdateAccessKey"),
            ("UserName", "alice"),
            ("AccessKeyId", &key_id),
            ("Status", "Inactive"),
        ])
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        good.check(&verifier, now_s).unwrap_err().error_type(),
        "UnrecognizedClientException"
    );
    let (status, _) = admin
        .iam(&[
            ("Action", "UpdateAccessKey"),
            ("UserName", "alice"),
            ("AccessKeyId", &key_id),
            ("Status", "Active"),
        ])
        .await;
    assert_eq!(status, 200);
    assert!(good.check(&verifier, now_s).is_ok());
    let (status, _) = admin
        .iam(&[
            ("Action", "DeleteAccessKey"),
            ("UserName", "alice"),
            ("AccessKeyId", &key_id),
        ])
        .await;
    assert_eq!(status, 200);
    assert!(good.check(&verifier, now_s).is_err());

    // IAM's errors, as XML.
    let (status, xml) = admin
        .iam(&[("Action", "GetUser"), ("UserName", "bob")])
        .await;
    assert_eq!(status, 404);
    assert_eq!(xml_value(&xml, "Code"), Some("NoSuchEntity"));
    assert_eq!(xml_value(&xml, "Type"), Some("Sender"));
    assert_eq!(
        xml_value(&xml, "Message"),
        Some("The user with name bob cannot be found.")
    );
    let (status, xml) = admin
        .iam(&[("Action", "DeleteUser"), ("UserName", "alice")])
        .await;
    assert_eq!(
        (status, xml_value(&xml, "Code")),
        (409, Some("DeleteConflict"))
    );
    let (status, xml) = admin.iam(&[("Action", "Frobnicate")]).await;
    assert_eq!(
        (status, xml_value(&xml, "Code")),
        (400, Some("InvalidAction"))
    );
    let (status, xml) = admin.iam(&[("Action", "CreateUser")]).await;
    assert_eq!(
        (status, xml_value(&xml, "Code")),
        (400, Some("ValidationError"))
    );
    admin.node.shutdown().await;
}

/// The pipeline enforces AWS_IAM: a real request to a dev listener, signed by aws-sigv4 with a
/// key made through the IAM endpoint, reaches the function with `requestContext.identity`;
/// unsigned, badly signed and denied requests get API Gateway's 403s.
#[tokio::test]
async fn aws_iam_methods_are_enforced_on_the_request_path() {
    let shutdown = portico::accept::Shutdown::new();
    let functions = common::start_functions(&shutdown).await;
    let api_dir = tempfile::tempdir().unwrap();
    let api_file = api_dir.path().join("api.yaml");
    std::fs::write(
        &api_file,
        r#"
openapi: 3.0.1
info: { title: iam, version: "1" }
x-amazon-apigateway-policy:
  Version: "2012-10-17"
  Statement:
    - { Effect: Allow, Principal: "*", Action: "execute-api:Invoke", Resource: "execute-api:/*" }
    - Effect: Deny
      Principal: "*"
      Action: "execute-api:Invoke"
      Resource: "execute-api:/*/POST/blocked"
      Condition: { StringEquals: { "aws:username": carol } }
paths:
  /blocked:
    post:
      x-amazon-apigateway-auth: { type: aws_iam }
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        uri: arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/echo/invocations
  /pets:
    post:
      x-amazon-apigateway-auth: { type: aws_iam }
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        uri: arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/echo/invocations
  /admin:
    post:
      x-amazon-apigateway-auth: { type: aws_iam }
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        uri: arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/echo/invocations
"#,
    )
    .unwrap();
    let endpoint = format!("http://{}", functions.local_addr);
    let admin = Admin::start_with(|options| {
        options.http = Some("127.0.0.1:0".parse().unwrap());
        options.api_file = Some(api_file.clone());
        options.stage = "prod".into();
        options.functions.default = Some(endpoint);
    })
    .await;
    let http = admin.node.http_addr.unwrap();
    let (_, xml) = admin
        .iam(&[("Action", "CreateUser"), ("UserName", "carol")])
        .await;
    let user_arn = xml_value(&xml, "Arn").unwrap().to_string();
    let (_, xml) = admin
        .iam(&[("Action", "CreateAccessKey"), ("UserName", "carol")])
        .await;
    let key_id = xml_value(&xml, "AccessKeyId").unwrap().to_string();
    let secret = xml_value(&xml, "SecretAccessKey").unwrap().to_string();
    let (status, xml) = admin
        .iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", "carol"),
            ("PolicyName", "invoke"),
            (
                "PolicyDocument",
                r#"{"Version":"2012-10-17","Statement":[
                    {"Effect":"Allow","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:*:*:*/prod/POST/*"},
                    {"Effect":"Deny","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:*:*:*/prod/POST/admin"}]}"#,
            ),
        ])
        .await;
    assert_eq!(status, 200, "{xml}");

    let send = |path: &str, key: &str, secret: &str, signed: bool| {
        let uri = format!("http://{http}{path}");
        let body = br#"{"hello":"world"}"#.to_vec();
        let host = http.to_string();
        let mut request = http::Request::post(uri.as_str())
            .header("host", host.as_str())
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        if signed {
            let identity = Credentials::new(key, secret, None, None, "test").into();
            let params = v4::SigningParams::builder()
                .identity(&identity)
                .region("us-east-1")
                .name("execute-api")
                .time(SystemTime::now())
                .settings(SigningSettings::default())
                .build()
                .unwrap()
                .into();
            let headers = [
                ("host", host.as_str()),
                ("content-type", "application/json"),
            ];
            let signable = SignableRequest::new(
                "POST",
                uri.as_str(),
                headers.iter().copied(),
                SignableBody::Bytes(&body),
            )
            .unwrap();
            let (instructions, _) = sign(signable, &params).unwrap().into_parts();
            instructions.apply_to_request_http1x(&mut request);
        }
        let (parts, ()) = request.into_parts();
        common::send(http::Request::from_parts(
            parts,
            http_body_util::Full::new(bytes::Bytes::from(body)),
        ))
    };

    let reply = send("/prod/pets", &key_id, &secret, true).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let event: serde_json::Value = serde_json::from_str(&reply.text()).unwrap();
    let identity = &event["requestContext"]["identity"];
    assert_eq!(identity["accessKey"], key_id.as_str());
    assert_eq!(identity["userArn"], user_arn.as_str());
    assert_eq!(identity["accountId"], "000000000000");
    // The body was read for the signature and still reaches the function.
    assert_eq!(event["body"], r#"{"hello":"world"}"#);

    let reply = send("/prod/pets", &key_id, &secret, false).await;
    common::assert_gateway_error(
        &reply,
        403,
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    );
    let reply = send("/prod/pets", &key_id, "not-the-secret", true).await;
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.headers["x-amzn-errortype"],
        "InvalidSignatureException"
    );
    let reply = send("/prod/pets", "AKIAUNKNOWNKEY000000", &secret, true).await;
    common::assert_gateway_error(
        &reply,
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    );
    let reply = send("/prod/admin", &key_id, &secret, true).await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.headers["x-amzn-errortype"], "AccessDeniedException");
    let message = reply.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.starts_with(&format!(
            "User: {user_arn} is not authorized to perform: execute-api:Invoke"
        )) && message.ends_with("with an explicit deny"),
        "{message}"
    );
    // The trailing slash routing ignores does not escape the user's deny.
    let reply = send("/prod/admin/", &key_id, &secret, true).await;
    assert_eq!(reply.status, 403, "{}", reply.text());
    // The resource policy sees the caller's condition keys: its deny for carol applies, though
    // carol's own policy allows every POST.
    let reply = send("/prod/blocked", &key_id, &secret, true).await;
    assert_eq!(reply.status, 403, "{}", reply.text());
    let message = reply.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.starts_with(&format!(
            "User: {user_arn} is not authorized to perform: execute-api:Invoke"
        )) && message.ends_with("/prod/POST/blocked with an explicit deny"),
        "{message}"
    );
    // A malformed signature is incomplete, not invalid.
    let malformed = common::send(
        http::Request::post(format!("http://{http}/prod/pets"))
            .header("authorization", "AWS4-HMAC-SHA256 Credential=nonsense")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(malformed.status, 403);
    assert_eq!(
        malformed.headers["x-amzn-errortype"],
        "IncompleteSignatureException"
    );
    admin.node.shutdown().await;
    shutdown.trigger();
}
