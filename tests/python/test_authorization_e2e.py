"""Every authorization type end to end, built with boto3 only and called through the edge.

One API is built through `portico dev --admin`'s management API (the `apigateway` client),
with IAM identities from the same endpoint (the `iam` client) and a Cognito user pool from moto
(the `cognito-idp` client); it is deployed and called on dev's data-plane listener (plain HTTP,
`Host: {apiId}.execute-api.localhost`), and every answer is checked as Amazon API Gateway gives
it: status, `x-amzn-ErrorType` and JSON body, for allowed, denied, unauthenticated and
misconfigured callers.

- NONE: open.
- CUSTOM, TOKEN: dev's demo function `authorizer` (`Bearer allow` / `Bearer deny` / anything
  else Unauthorized), in front of the demo function `hello` (AWS_PROXY); authorizers whose
  function does not exist or answers garbage.
- CUSTOM, REQUEST: a header as identity source, a function of this file's own.
- COGNITO_USER_POOLS: moto's pool, ID and access tokens, scopes.
- AWS_IAM: a user, an access key and inline policies; requests signed with botocore's SigV4Auth.
- A resource policy, a customised gateway response and FlushStageAuthorizersCache.

The runnable example of README's authorization sections. moto, dev and the function endpoint of
this file are started on loopback ports of their own and stopped at teardown.
"""

import base64
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from cognito_tokens import expired_copy, pool_with_user

ACCESS_KEY_ID = "AKIAPORTICOE2EAUTH01"
SECRET_ACCESS_KEY = "portico-e2e-authorization-secret-000000"
REGION = "us-east-1"
STAGE = "prod"
MISSING_TOKEN = {"message": "Missing Authentication Token"}
UNAUTHORIZED = {"message": "Unauthorized"}
BAD_SIGNATURE = ("The request signature we calculated does not match the signature you "
                 "provided. Check your AWS Secret Access Key and signing method. Consult the "
                 "service documentation for details.")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, what, process, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {seconds} s")


def stop(process):
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=20)


def function_uri(name):
    return ("arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
            f"arn:aws:lambda:us-east-1:123456789012:function:{name}/invocations")


# Functions of this file, served on the Lambda Invoke API
# (POST /2015-03-31/functions/{name}/invocations) and handed to dev with --function NAME=URL.
def echo(event):
    """AWS_PROXY: answers with the whole event."""
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps(event)}


def session(event):
    """A REQUEST authorizer: `X-Session: let-me-in` is allowed the method, else Unauthorized."""
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    if headers.get("x-session") != "let-me-in":
        raise PermissionError("Unauthorized")
    return {
        "principalId": "session-user",
        "policyDocument": {"Version": "2012-10-17", "Statement": [{
            "Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}]},
        "context": {"via": "request-authorizer"},
    }


REVOKED = set()


def revocable(event):
    """A TOKEN authorizer: `Bearer k1`, `Bearer k2`... are allowed the method until revoked;
    `Bearer narrow` is allowed another method only."""
    token = event.get("authorizationToken", "")
    if token == "Bearer narrow":
        resource = event["methodArn"].rsplit("/", 1)[0] + "/elsewhere"
    elif token.startswith("Bearer k") and token not in REVOKED:
        resource = event["methodArn"]
    else:
        raise PermissionError("Unauthorized")
    return {
        "principalId": token[len("Bearer "):],
        "policyDocument": {"Version": "2012-10-17", "Statement": [{
            "Action": "execute-api:Invoke", "Effect": "Allow", "Resource": resource}]},
    }


FUNCTIONS = {"echo": echo, "session": session, "revocable": revocable}


class FunctionEndpoint(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        length = int(self.headers.get("Content-Length") or 0)
        event = json.loads(self.rfile.read(length) or b"{}")
        parts = self.path.split("/")
        name = parts[3] if len(parts) > 4 else ""
        headers = {"Content-Type": "application/json"}
        if name == "garbage":
            status, payload = 200, b"<html>this is no authorizer answer</html>"
        elif name in FUNCTIONS:
            try:
                status, payload = 200, json.dumps(FUNCTIONS[name](event)).encode()
            except PermissionError as refusal:
                # A function error, as Lambda reports one.
                headers["X-Amz-Function-Error"] = "Unhandled"
                status, payload = 200, json.dumps(
                    {"errorMessage": str(refusal), "errorType": "Error"}).encode()
        else:
            status, payload = 404, b'{"Type":"User","message":"Function not found"}'
        self.send_response(status)
        for header, value in headers.items():
            self.send_header(header, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """moto (the Cognito issuer), this file's functions and `portico dev --admin` whose
    cognito-idp endpoint is moto; everything stopped at teardown."""
    moto_port = free_port()
    moto = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "moto_server"),
         "-H", "127.0.0.1", "-p", str(moto_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    functions = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FunctionEndpoint)
    functions.daemon_threads = True
    thread = threading.Thread(target=functions.serve_forever, daemon=True)
    thread.start()
    portico = None
    try:
        wait_for_port(moto_port, "moto_server", moto)
        moto_url = f"http://127.0.0.1:{moto_port}"
        functions_url = f"http://127.0.0.1:{functions.server_address[1]}"
        http_port, admin_port = free_port(), free_port()
        data_dir = tmp_path_factory.mktemp("portico-e2e")
        env = {name: value for name, value in os.environ.items()
               if not name.startswith("AWS_ENDPOINT_URL")}
        env.update(PORTICO_ADMIN_ACCESS_KEY_ID=ACCESS_KEY_ID,
                   PORTICO_ADMIN_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
                   AWS_ENDPOINT_URL_COGNITO_IDP=moto_url)
        binary = os.environ.get("PORTICO_BINARY", "target/debug/portico")
        portico = subprocess.Popen(
            [binary, "dev", "--http", f"127.0.0.1:{http_port}", "--https", "off",
             "--admin", f"127.0.0.1:{admin_port}", "--data-dir", str(data_dir),
             "--signing-region", REGION,
             "--function", f"echo={functions_url}", "--function", f"session={functions_url}",
             "--function", f"garbage={functions_url}",
             "--function", f"revocable={functions_url}"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL)
        wait_for_port(admin_port, "portico dev", portico, seconds=30)
        wait_for_port(http_port, "portico dev's edge", portico, seconds=30)
        yield {
            "endpoint": f"https://127.0.0.1:{admin_port}",
            "edge": f"http://127.0.0.1:{http_port}",
            "ca": str(data_dir / "cert.pem"),
            "moto": moto_url,
        }
    finally:
        if portico is not None:
            stop(portico)
        functions.shutdown()
        functions.server_close()
        stop(moto)


def management(stack, service):
    return boto3.client(service, endpoint_url=stack["endpoint"], region_name=REGION,
                        aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
                        verify=stack["ca"])


@pytest.fixture(scope="module")
def gw(stack):
    return management(stack, "apigateway")


@pytest.fixture(scope="module")
def iam(stack):
    return management(stack, "iam")


@pytest.fixture(scope="module")
def cognito(stack):
    client = boto3.client("cognito-idp", endpoint_url=stack["moto"], region_name=REGION,
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    pool = pool_with_user(client, "portico-e2e", "alice", "Alice-pass-1!")
    pool["expired_id_token"] = expired_copy(pool["id_token"])
    return pool


def method(gw, api_id, resource_id, authorization, integration, **extra):
    """GET on the resource with this authorization, behind a function (AWS_PROXY) or a MOCK
    answering `{"mock": true}`."""
    gw.put_method(restApiId=api_id, resourceId=resource_id, httpMethod="GET",
                  authorizationType=authorization, **extra)
    if integration == "mock":
        gw.put_integration(restApiId=api_id, resourceId=resource_id, httpMethod="GET",
                           type="MOCK",
                           requestTemplates={"application/json": '{"statusCode": 200}'})
        gw.put_method_response(restApiId=api_id, resourceId=resource_id, httpMethod="GET",
                               statusCode="200")
        gw.put_integration_response(restApiId=api_id, resourceId=resource_id,
                                    httpMethod="GET", statusCode="200",
                                    responseTemplates={"application/json": '{"mock": true}'})
    else:
        gw.put_integration(restApiId=api_id, resourceId=resource_id, httpMethod="GET",
                           type="AWS_PROXY", integrationHttpMethod="POST",
                           uri=function_uri(integration))


@pytest.fixture(scope="module")
def api(gw, iam, cognito):
    """The API: one resource per case, deployed to `prod`; and the IAM identities."""
    rest_api = gw.create_rest_api(name="every-authorization-type")
    api_id, root = rest_api["id"], rest_api["rootResourceId"]

    def resource(path):
        return gw.create_resource(restApiId=api_id, parentId=root, pathPart=path)["id"]

    def token_authorizer(name, function):
        return gw.create_authorizer(
            restApiId=api_id, name=name, type="TOKEN", authorizerUri=function_uri(function),
            identitySource="method.request.header.Authorization")["id"]

    demo = token_authorizer("demo", "authorizer")
    request = gw.create_authorizer(
        restApiId=api_id, name="session", type="REQUEST", authorizerUri=function_uri("session"),
        identitySource="method.request.header.X-Session",
        authorizerResultTtlInSeconds=0)["id"]
    pool = gw.create_authorizer(
        restApiId=api_id, name="users", type="COGNITO_USER_POOLS",
        providerARNs=[cognito["pool_arn"]],
        identitySource="method.request.header.Authorization")["id"]

    method(gw, api_id, resource("open"), "NONE", "mock")
    method(gw, api_id, resource("blocked"), "NONE", "mock")
    method(gw, api_id, resource("token"), "CUSTOM", "hello", authorizerId=demo)
    method(gw, api_id, resource("missing-function"), "CUSTOM", "mock",
           authorizerId=token_authorizer("missing", "no-such-function"))
    method(gw, api_id, resource("garbage"), "CUSTOM", "mock",
           authorizerId=token_authorizer("garbage", "garbage"))
    method(gw, api_id, resource("not-an-authorizer"), "CUSTOM", "mock",
           authorizerId=token_authorizer("hello-as-authorizer", "hello"))
    method(gw, api_id, resource("session"), "CUSTOM", "echo", authorizerId=request)
    method(gw, api_id, resource("cached"), "CUSTOM", "mock",
           authorizerId=token_authorizer("revocable", "revocable"))
    method(gw, api_id, resource("cognito"), "COGNITO_USER_POOLS", "hello", authorizerId=pool)
    method(gw, api_id, resource("admin"), "COGNITO_USER_POOLS", "mock", authorizerId=pool,
           authorizationScopes=["aws.cognito.signin.user.admin"])
    method(gw, api_id, resource("pets"), "COGNITO_USER_POOLS", "mock", authorizerId=pool,
           authorizationScopes=["pets/read"])
    method(gw, api_id, resource("iam"), "AWS_IAM", "echo")
    deployment = gw.create_deployment(restApiId=api_id, stageName=STAGE)
    assert deployment["ResponseMetadata"]["HTTPStatusCode"] == 201

    def user(name, effect):
        iam.create_user(UserName=name)
        if effect is not None:
            iam.put_user_policy(UserName=name, PolicyName="invoke", PolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": effect, "Action": "execute-api:Invoke",
                    "Resource": f"arn:aws:execute-api:{REGION}:*:{api_id}/{STAGE}/GET/*"}],
            }))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return {"name": name, "arn": iam.get_user(UserName=name)["User"]["Arn"],
                "key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}

    return {"id": api_id, "pool": pool, "alice": user("alice", "Allow"),
            "mallory": user("mallory", "Deny"), "nobody": user("nobody", None)}


class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    @property
    def json(self):
        return json.loads(self.body)

    @property
    def error_type(self):
        return self.headers.get("x-amzn-ErrorType")


def call(stack, api, path, headers=None, sign=None, service="execute-api", region=REGION):
    """GET /prod/{path} on the edge, addressed as on execute-api; `sign` is (key, secret) to
    sign the request with SigV4 (for execute-api in us-east-1), as any AWS SDK would."""
    headers = dict(headers or {}, Host=f"{api['id']}.execute-api.localhost")
    url = f"{stack['edge']}/{STAGE}/{path}"
    if sign is not None:
        request = AWSRequest(method="GET", url=url, headers=headers)
        SigV4Auth(Credentials(*sign), service, region).add_auth(request)
        headers = dict(request.headers.items())
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    timeout=10) as response:
            return Reply(response.status, response.headers, response.read().decode())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.headers, error.read().decode())


def assert_error(reply, status, error_type, body):
    assert (reply.status, reply.error_type) == (status, error_type), reply.body
    assert reply.json == body


def tampered(token):
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["cognito:username"] = "mallory"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_none_is_open(stack, api):
    reply = call(stack, api, "open")
    assert reply.status == 200 and reply.json == {"mock": True}
    assert_error(call(stack, api, "nowhere"), 403, "MissingAuthenticationTokenException",
                 MISSING_TOKEN)


def test_lambda_token_authorizer(stack, api):
    allowed = call(stack, api, "token", {"Authorization": "Bearer allow"})
    assert allowed.status == 200, allowed.body
    seen = allowed.json
    assert seen["authorizer"]["principalId"] == "demo-user"
    assert seen["authorizer"]["plan"] == "demo"
    assert seen["path"] == "/token" and seen["stage"] == STAGE

    assert_error(call(stack, api, "token", {"Authorization": "Bearer deny"}), 403,
                 "AccessDeniedException",
                 {"message": "User is not authorized to access this resource with an explicit "
                             "deny"})
    assert_error(call(stack, api, "token"), 401, "UnauthorizedException", UNAUTHORIZED)
    assert_error(call(stack, api, "token", {"Authorization": "Bearer who-knows"}), 401,
                 "UnauthorizedException", UNAUTHORIZED)
    # Allowed by the function, but not this method.
    assert_error(call(stack, api, "cached", {"Authorization": "Bearer narrow"}), 403,
                 "AccessDeniedException",
                 {"message": "User is not authorized to access this resource"})


def test_misconfigured_lambda_authorizers_are_500_with_a_null_message(stack, api):
    for path in ("missing-function", "garbage", "not-an-authorizer"):
        assert_error(call(stack, api, path, {"Authorization": "Bearer allow"}), 500,
                     "AuthorizerConfigurationException", {"message": None})


def test_lambda_request_authorizer(stack, api):
    assert_error(call(stack, api, "session"), 401, "UnauthorizedException", UNAUTHORIZED)
    assert_error(call(stack, api, "session", {"X-Session": "guess"}), 401,
                 "UnauthorizedException", UNAUTHORIZED)
    allowed = call(stack, api, "session", {"X-Session": "let-me-in"})
    assert allowed.status == 200, allowed.body
    authorizer = allowed.json["requestContext"]["authorizer"]
    assert authorizer["principalId"] == "session-user"
    assert authorizer["via"] == "request-authorizer"


def test_cognito_user_pool_authorizer(stack, api, cognito):
    id_token, access_token = cognito["id_token"], cognito["access_token"]
    allowed = call(stack, api, "cognito", {"Authorization": id_token})
    assert allowed.status == 200, allowed.body
    claims = allowed.json["authorizer"]["claims"]
    assert claims["cognito:username"] == "alice"
    assert claims["token_use"] == "id"
    assert claims["aud"] == cognito["client_id"]
    assert claims["iss"].endswith("/" + cognito["pool_id"])
    assert " UTC " in claims["exp"]   # as on AWS: every claim a string, dates spelled out
    assert all(isinstance(value, str) for value in claims.values())

    for headers in ({}, {"Authorization": tampered(id_token)}, {"Authorization": "not.a.jwt"}):
        assert_error(call(stack, api, "cognito", headers), 401, "UnauthorizedException",
                     UNAUTHORIZED)
    assert_error(call(stack, api, "cognito", {"Authorization": cognito["expired_id_token"]}),
                 401, "UnauthorizedException", {"message": "The incoming token has expired"})
    # Scopes: an access token holding the method's scope passes; one without it, or an ID
    # token where scopes are required, does not.
    admin = call(stack, api, "admin", {"Authorization": access_token})
    assert admin.status == 200 and admin.json == {"mock": True}, admin.body
    assert_error(call(stack, api, "pets", {"Authorization": access_token}), 401,
                 "UnauthorizedException", UNAUTHORIZED)
    assert_error(call(stack, api, "admin", {"Authorization": id_token}), 401,
                 "UnauthorizedException", UNAUTHORIZED)


def test_test_invoke_cognito_authorizer(gw, api, cognito):
    # TestInvokeAuthorizer verifies the token as a request would (moto's JWKS) and shows its claims.
    ok = gw.test_invoke_authorizer(restApiId=api["id"], authorizerId=api["pool"],
                                   headers={"Authorization": cognito["id_token"]})
    assert ok["clientStatus"] == 200, ok
    assert ok["claims"]["cognito:username"] == "alice"
    refused = gw.test_invoke_authorizer(restApiId=api["id"], authorizerId=api["pool"],
                                        headers={"Authorization": tampered(cognito["id_token"])})
    assert refused["clientStatus"] == 401, refused


def test_aws_iam(stack, api, iam):
    alice, mallory, nobody = api["alice"], api["mallory"], api["nobody"]
    allowed = call(stack, api, "iam", sign=(alice["key"], alice["secret"]))
    assert allowed.status == 200, allowed.body
    identity = allowed.json["requestContext"]["identity"]
    assert identity["userArn"] == alice["arn"]
    assert identity["accessKey"] == alice["key"]

    assert_error(call(stack, api, "iam"), 403, "MissingAuthenticationTokenException",
                 MISSING_TOKEN)
    assert_error(call(stack, api, "iam", sign=(alice["key"], "x" * 40)), 403,
                 "InvalidSignatureException", {"message": BAD_SIGNATURE})
    denied = call(stack, api, "iam", sign=(mallory["key"], mallory["secret"]))
    assert_error(denied, 403, "AccessDeniedException", {"message": (
        f"User: {mallory['arn']} is not authorized to perform: execute-api:Invoke on "
        f"resource: arn:aws:execute-api:{REGION}:********0000:{api['id']}/{STAGE}/GET/iam "
        "with an explicit deny")})
    assert_error(call(stack, api, "iam", sign=(nobody["key"], nobody["secret"])), 403,
                 "AccessDeniedException", {"message": (
                     f"User: {nobody['arn']} is not authorized to perform: execute-api:Invoke "
                     f"on resource: arn:aws:execute-api:{REGION}:********0000:{api['id']}/"
                     f"{STAGE}/GET/iam because no identity-based policy allows the "
                     "execute-api:Invoke action")})
    assert_error(call(stack, api, "iam", sign=("AKIANOSUCHKEY0000000", "x" * 40)), 403,
                 "UnrecognizedClientException",
                 {"message": "The security token included in the request is invalid."})
    assert_error(call(stack, api, "iam", sign=(alice["key"], alice["secret"]),
                      service="lambda"), 403, "InvalidSignatureException",
                 {"message": "Credential should be scoped to correct service: 'execute-api'. "})
    assert_error(call(stack, api, "iam", sign=(alice["key"], alice["secret"]),
                      region="eu-west-9"), 403, "InvalidSignatureException",
                 {"message": "Credential should be scoped to a valid region, not 'eu-west-9'. "})
    # A deactivated key is refused from the next request on.
    spare = iam.create_access_key(UserName="alice")["AccessKey"]
    spare = (spare["AccessKeyId"], spare["SecretAccessKey"])
    assert call(stack, api, "iam", sign=spare).status == 200
    iam.update_access_key(UserName="alice", AccessKeyId=spare[0], Status="Inactive")
    assert_error(call(stack, api, "iam", sign=spare), 403, "UnrecognizedClientException",
                 {"message": "The security token included in the request is invalid."})


def test_flush_stage_authorizers_cache(stack, gw, api):
    key = {"Authorization": "Bearer k1"}
    assert call(stack, api, "cached", key).status == 200
    # Revoked at the function, the key still passes on the cached answer (TTL 300 s)...
    REVOKED.add(key["Authorization"])
    assert call(stack, api, "cached", key).status == 200
    # ...until the stage's authorizer cache is flushed.
    flushed = gw.flush_stage_authorizers_cache(restApiId=api["id"], stageName=STAGE)
    assert flushed["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert_error(call(stack, api, "cached", key), 401, "UnauthorizedException", UNAUTHORIZED)
    assert call(stack, api, "cached", {"Authorization": "Bearer k2"}).status == 200


def test_resource_policy_denies_one_path(stack, gw, api):
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke",
         "Resource": "execute-api:/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke",
         "Resource": "execute-api:/*/GET/blocked"},
    ]}
    assert call(stack, api, "blocked").status == 200
    gw.update_rest_api(restApiId=api["id"], patchOperations=[
        {"op": "replace", "path": "/policy", "value": json.dumps(policy)}])
    # In force from the next deployment, as on AWS.
    assert call(stack, api, "blocked").status == 200
    gw.create_deployment(restApiId=api["id"], stageName=STAGE)
    assert_error(call(stack, api, "blocked"), 403, "AccessDeniedException", {"message": (
        "User: anonymous is not authorized to perform: execute-api:Invoke on resource: "
        f"arn:aws:execute-api:{REGION}:********0000:{api['id']}/{STAGE}/GET/blocked "
        "with an explicit deny")})
    assert call(stack, api, "open").status == 200
    assert call(stack, api, "token", {"Authorization": "Bearer allow"}).status == 200
    # AWS_IAM callers of the API's own account: an allow in either policy admits, an explicit
    # deny in either refuses.
    nobody, mallory = api["nobody"], api["mallory"]
    assert call(stack, api, "iam", sign=(nobody["key"], nobody["secret"])).status == 200
    denied = call(stack, api, "iam", sign=(mallory["key"], mallory["secret"]))
    assert (denied.status, denied.error_type) == (403, "AccessDeniedException"), denied.body
    assert denied.json["message"].endswith("/GET/iam with an explicit deny")


def test_gateway_response_reshapes_the_401(stack, gw, api):
    gw.put_gateway_response(
        restApiId=api["id"], responseType="UNAUTHORIZED", statusCode="401",
        responseParameters={"gatewayresponse.header.WWW-Authenticate": "'Bearer realm=\"e2e\"'"},
        responseTemplates={"application/json":
                           '{"error":$context.error.messageString,'
                           '"type":"$context.error.responseType"}'})
    before = call(stack, api, "token")
    assert before.json == UNAUTHORIZED and "WWW-Authenticate" not in before.headers
    gw.create_deployment(restApiId=api["id"], stageName=STAGE)
    after = call(stack, api, "token")
    assert (after.status, after.error_type) == (401, "UnauthorizedException"), after.body
    assert after.headers["WWW-Authenticate"] == 'Bearer realm="e2e"'
    assert after.json == {"error": "Unauthorized", "type": "UNAUTHORIZED"}
    # Every 401 goes through it, whichever authorizer refused.
    assert call(stack, api, "cognito").json == {"error": "Unauthorized", "type": "UNAUTHORIZED"}
    # Other responses keep their defaults.
    assert_error(call(stack, api, "iam"), 403, "MissingAuthenticationTokenException",
                 MISSING_TOKEN)
