"""The authorization side of the management API (issue 12) driven by boto3 and the AWS CLI:
authorizers, UpdateMethod with an authorization type, the resource policy, gateway responses
and FlushStageAuthorizersCache. Uses the `portico dev --admin` node of test_management.py.
"""

import json
import os
import subprocess

import pytest

from test_management import (  # noqa: F401  (pytest fixtures)
    ACCESS_KEY_ID,
    SECRET_ACCESS_KEY,
    client,
    mock_route,
    portico,
    without_metadata,
)

LAMBDA_URI = ("arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
              "arn:aws:lambda:us-east-1:123456789012:function:auth/invocations")
DEMO_AUTHORIZER_URI = ("arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
                       "arn:aws:lambda:us-east-1:123456789012:function:authorizer/invocations")
POOL_ARN = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_ABC123"
DEFAULT_TEMPLATE = '{"message":$context.error.messageString}'


def test_authorizer_lifecycle(client):
    api = client.create_rest_api(name="authorizers")
    api_id = api["id"]
    created = client.create_authorizer(
        restApiId=api_id, name="tokens", type="TOKEN", authorizerUri=LAMBDA_URI,
        identitySource="method.request.header.Authorization",
        identityValidationExpression="^Bearer .+$", authType="custom")
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    token_id = created["id"]
    assert without_metadata(created) == {
        "id": token_id, "name": "tokens", "type": "TOKEN", "authType": "custom",
        "authorizerUri": LAMBDA_URI, "identitySource": "method.request.header.Authorization",
        "identityValidationExpression": "^Bearer .+$",
    }
    pool = client.create_authorizer(
        restApiId=api_id, name="pool", type="COGNITO_USER_POOLS", providerARNs=[POOL_ARN],
        identitySource="method.request.header.Authorization", authorizerResultTtlInSeconds=60)
    assert pool["providerARNs"] == [POOL_ARN]
    assert pool["authorizerResultTtlInSeconds"] == 60

    got = client.get_authorizer(restApiId=api_id, authorizerId=token_id)
    assert without_metadata(got) == without_metadata(created)
    listed = client.get_authorizers(restApiId=api_id)["items"]
    assert sorted(a["name"] for a in listed) == ["pool", "tokens"]
    first = client.get_authorizers(restApiId=api_id, limit=1)
    assert len(first["items"]) == 1 and "position" in first

    updated = client.update_authorizer(
        restApiId=api_id, authorizerId=token_id, patchOperations=[
            {"op": "replace", "path": "/name", "value": "renamed"},
            {"op": "replace", "path": "/authorizerResultTtlInSeconds", "value": "120"},
            {"op": "replace", "path": "/identitySource",
             "value": "method.request.header.X-Token"},
        ])
    assert updated["name"] == "renamed"
    assert updated["authorizerResultTtlInSeconds"] == 120
    assert updated["identitySource"] == "method.request.header.X-Token"
    added = client.update_authorizer(
        restApiId=api_id, authorizerId=pool["id"],
        patchOperations=[{"op": "add", "path": "/providerARNs",
                          "value": POOL_ARN.replace("ABC123", "XYZ789")}])
    assert len(added["providerARNs"]) == 2

    with pytest.raises(client.exceptions.BadRequestException) as bad_ttl:
        client.update_authorizer(
            restApiId=api_id, authorizerId=token_id,
            patchOperations=[{"op": "replace", "path": "/authorizerResultTtlInSeconds",
                              "value": "3601"}])
    assert "3600" in bad_ttl.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.BadRequestException) as bad_source:
        client.create_authorizer(restApiId=api_id, name="q", type="TOKEN",
                                 authorizerUri=LAMBDA_URI,
                                 identitySource="method.request.querystring.token")
    assert "Invalid token source expression" in bad_source.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.BadRequestException):
        client.create_authorizer(restApiId=api_id, name="nopool", type="COGNITO_USER_POOLS",
                                 identitySource="method.request.header.Authorization")
    # AWS's answer for an unknown API here is a 409 (recorded).
    with pytest.raises(client.exceptions.ConflictException):
        client.create_authorizer(restApiId="missing000", name="x", type="TOKEN",
                                 authorizerUri=LAMBDA_URI,
                                 identitySource="method.request.header.Authorization")

    # A method using the authorizer keeps it from being deleted.
    method = client.put_method(restApiId=api_id, resourceId=api["rootResourceId"],
                               httpMethod="GET", authorizationType="CUSTOM",
                               authorizerId=token_id)
    assert method["authorizerId"] == token_id
    with pytest.raises(client.exceptions.ConflictException):
        client.delete_authorizer(restApiId=api_id, authorizerId=token_id)
    client.update_method(restApiId=api_id, resourceId=api["rootResourceId"], httpMethod="GET",
                         patchOperations=[{"op": "replace", "path": "/authorizationType",
                                           "value": "NONE"}])
    deleted = client.delete_authorizer(restApiId=api_id, authorizerId=token_id)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 202
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_authorizer(restApiId=api_id, authorizerId=token_id)


def test_update_method_authorization_and_rest_api_policy(client):
    api = client.create_rest_api(name="protected")
    api_id, root = api["id"], api["rootResourceId"]
    client.put_method(restApiId=api_id, resourceId=root, httpMethod="GET",
                      authorizationType="NONE")
    pool = client.create_authorizer(
        restApiId=api_id, name="pool", type="COGNITO_USER_POOLS", providerARNs=[POOL_ARN],
        identitySource="method.request.header.Authorization")

    with pytest.raises(client.exceptions.BadRequestException) as no_authorizer:
        client.update_method(restApiId=api_id, resourceId=root, httpMethod="GET",
                             patchOperations=[{"op": "replace", "path": "/authorizationType",
                                               "value": "CUSTOM"}])
    assert no_authorizer.value.response["Error"]["Message"] == (
        "Invalid authorizer ID specified. Setting the authorization type to CUSTOM or "
        "COGNITO_USER_POOLS requires a valid authorizer.")
    method = client.update_method(
        restApiId=api_id, resourceId=root, httpMethod="GET", patchOperations=[
            {"op": "replace", "path": "/authorizationType", "value": "COGNITO_USER_POOLS"},
            {"op": "replace", "path": "/authorizerId", "value": pool["id"]},
            {"op": "add", "path": "/authorizationScopes", "value": "email"},
            {"op": "add", "path": "/authorizationScopes", "value": "pets/read"},
            {"op": "replace", "path": "/apiKeyRequired", "value": "true"},
        ])
    assert method["authorizationType"] == "COGNITO_USER_POOLS"
    assert method["authorizerId"] == pool["id"]
    assert method["authorizationScopes"] == ["email", "pets/read"]
    assert method["apiKeyRequired"] is True
    iam = client.update_method(
        restApiId=api_id, resourceId=root, httpMethod="GET", patchOperations=[
            {"op": "replace", "path": "/authorizationType", "value": "AWS_IAM"},
            {"op": "remove", "path": "/authorizationScopes", "value": "email"},
        ])
    assert iam["authorizationType"] == "AWS_IAM" and "authorizerId" not in iam
    assert iam["authorizationScopes"] == ["pets/read"]

    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke",
        "Resource": "execute-api:/*"}]}
    updated = client.update_rest_api(restApiId=api_id, patchOperations=[
        {"op": "replace", "path": "/policy", "value": json.dumps(policy)},
        {"op": "replace", "path": "/apiKeySource", "value": "AUTHORIZER"},
    ])
    assert json.loads(updated["policy"]) == policy
    assert updated["apiKeySource"] == "AUTHORIZER"
    with pytest.raises(client.exceptions.BadRequestException):
        client.update_rest_api(restApiId=api_id, patchOperations=[
            {"op": "replace", "path": "/policy", "value": "{not json"}])
    created = client.create_rest_api(name="with-policy", policy=json.dumps(policy),
                                     apiKeySource="AUTHORIZER")
    assert json.loads(created["policy"]) == policy
    assert created["apiKeySource"] == "AUTHORIZER"


def test_gateway_responses(client):
    api_id = client.create_rest_api(name="responses")["id"]
    everything = client.get_gateway_responses(restApiId=api_id)["items"]
    assert len(everything) == 21
    assert all(response["defaultResponse"] for response in everything)
    by_type = {response["responseType"]: response for response in everything}
    assert by_type["UNAUTHORIZED"]["statusCode"] == "401"
    assert by_type["ACCESS_DENIED"]["statusCode"] == "403"
    assert "statusCode" not in by_type["DEFAULT_4XX"]
    assert by_type["DEFAULT_5XX"]["responseTemplates"] == {"application/json": DEFAULT_TEMPLATE}

    put = client.put_gateway_response(
        restApiId=api_id, responseType="UNAUTHORIZED", statusCode="401",
        responseParameters={"gatewayresponse.header.WWW-Authenticate": "'Bearer'"},
        responseTemplates={"application/json": '{"error":$context.error.messageString}'})
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert put["defaultResponse"] is False
    got = client.get_gateway_response(restApiId=api_id, responseType="UNAUTHORIZED")
    assert got["responseParameters"] == {"gatewayresponse.header.WWW-Authenticate": "'Bearer'"}
    updated = client.update_gateway_response(
        restApiId=api_id, responseType="UNAUTHORIZED", patchOperations=[
            {"op": "replace", "path": "/statusCode", "value": "403"},
            {"op": "add", "path": "/responseTemplates/application~1xml",
             "value": "<e>$context.error.messageString</e>"},
        ])
    assert updated["statusCode"] == "403"
    assert updated["responseTemplates"]["application/xml"] == "<e>$context.error.messageString</e>"
    # A customised DEFAULT_5XX shapes the 5xx types left at their defaults.
    client.put_gateway_response(restApiId=api_id, responseType="DEFAULT_5XX", statusCode="503")
    timeout = client.get_gateway_response(restApiId=api_id, responseType="INTEGRATION_TIMEOUT")
    assert timeout["statusCode"] == "503" and timeout["defaultResponse"] is True

    deleted = client.delete_gateway_response(restApiId=api_id, responseType="UNAUTHORIZED")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 202
    back = client.get_gateway_response(restApiId=api_id, responseType="UNAUTHORIZED")
    assert back["defaultResponse"] is True and back["statusCode"] == "401"
    with pytest.raises(client.exceptions.NotFoundException):
        client.delete_gateway_response(restApiId=api_id, responseType="UNAUTHORIZED")
    with pytest.raises(client.exceptions.BadRequestException):
        client.update_gateway_response(
            restApiId=api_id, responseType="DEFAULT_4XX",
            patchOperations=[{"op": "remove", "path": "/statusCode"}])


def test_flush_stage_authorizers_cache(client):
    api = client.create_rest_api(name="flush-authorizers")
    resource = client.create_resource(restApiId=api["id"], parentId=api["rootResourceId"],
                                      pathPart="ping")
    mock_route(client, api["id"], resource["id"], '{"pong": true}')
    client.create_deployment(restApiId=api["id"], stageName="live")
    flushed = client.flush_stage_authorizers_cache(restApiId=api["id"], stageName="live")
    assert flushed["ResponseMetadata"]["HTTPStatusCode"] == 202
    with pytest.raises(client.exceptions.NotFoundException):
        client.flush_stage_authorizers_cache(restApiId=api["id"], stageName="nope")


def test_aws_cli_authorization(portico, client):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY_ID,
               AWS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY, AWS_DEFAULT_REGION="us-west-2",
               AWS_CA_BUNDLE=portico["ca"], AWS_PAGER="")
    common = ["--endpoint-url", portico["endpoint"], "--output", "json"]

    def aws(*args):
        done = subprocess.run(["aws", "apigateway", *args, *common], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    api = client.create_rest_api(name="cli-auth")
    api_id, root = api["id"], api["rootResourceId"]
    created = aws("create-authorizer", "--rest-api-id", api_id, "--name", "cli-token",
                  "--type", "TOKEN", "--authorizer-uri", LAMBDA_URI,
                  "--identity-source", "method.request.header.Authorization")
    authorizer_id = created["id"]
    assert aws("get-authorizer", "--rest-api-id", api_id,
               "--authorizer-id", authorizer_id)["name"] == "cli-token"
    assert len(aws("get-authorizers", "--rest-api-id", api_id)["items"]) == 1
    updated = aws("update-authorizer", "--rest-api-id", api_id, "--authorizer-id",
                  authorizer_id, "--patch-operations",
                  "op=replace,path=/authorizerResultTtlInSeconds,value=0")
    assert updated["authorizerResultTtlInSeconds"] == 0

    client.put_method(restApiId=api_id, resourceId=root, httpMethod="GET",
                      authorizationType="NONE")
    method = aws("update-method", "--rest-api-id", api_id, "--resource-id", root,
                 "--http-method", "GET", "--patch-operations",
                 "op=replace,path=/authorizationType,value=CUSTOM",
                 f"op=replace,path=/authorizerId,value={authorizer_id}")
    assert method["authorizationType"] == "CUSTOM"
    client.update_method(restApiId=api_id, resourceId=root, httpMethod="GET",
                         patchOperations=[{"op": "replace", "path": "/authorizationType",
                                           "value": "NONE"}])

    policy = '{"Version":"2012-10-17","Statement":[]}'
    rest_api = aws("update-rest-api", "--rest-api-id", api_id, "--patch-operations",
                   json.dumps([{"op": "replace", "path": "/policy", "value": policy}]))
    assert json.loads(rest_api["policy"]) == json.loads(policy)

    put = aws("put-gateway-response", "--rest-api-id", api_id, "--response-type",
              "ACCESS_DENIED", "--status-code", "403", "--response-templates",
              json.dumps({"application/json": '{"denied":true}'}))
    assert put["defaultResponse"] is False
    assert aws("get-gateway-response", "--rest-api-id", api_id, "--response-type",
               "ACCESS_DENIED")["responseTemplates"] == {"application/json": '{"denied":true}'}
    assert len(aws("get-gateway-responses", "--rest-api-id", api_id)["items"]) == 21
    aws("delete-gateway-response", "--rest-api-id", api_id, "--response-type", "ACCESS_DENIED")

    client.delete_method(restApiId=api_id, resourceId=root, httpMethod="GET")
    resource = client.create_resource(restApiId=api_id, parentId=root, pathPart="ping")
    mock_route(client, api_id, resource["id"], '{"pong": true}')
    client.create_deployment(restApiId=api_id, stageName="live")
    aws("flush-stage-authorizers-cache", "--rest-api-id", api_id, "--stage-name", "live")
    aws("delete-authorizer", "--rest-api-id", api_id, "--authorizer-id", authorizer_id)

    demo = aws("create-authorizer", "--rest-api-id", api_id, "--name", "cli-demo",
               "--type", "TOKEN", "--authorizer-uri", DEMO_AUTHORIZER_URI,
               "--identity-source", "method.request.header.Authorization")
    tested = aws("test-invoke-authorizer", "--rest-api-id", api_id, "--authorizer-id",
                 demo["id"], "--headers", "Authorization=Bearer allow")
    assert tested["clientStatus"] == 200, tested
    assert tested["principalId"] == "demo-user"


def test_test_invoke_authorizer(client):
    # dev's demo function endpoint hosts `authorizer`: "Bearer allow" is allowed the stage,
    # anything else is Unauthorized.
    api = client.create_rest_api(name="test-invoke-authorizer")
    authorizer = client.create_authorizer(
        restApiId=api["id"], name="demo", type="TOKEN", authorizerUri=DEMO_AUTHORIZER_URI,
        identitySource="method.request.header.Authorization")
    allowed = client.test_invoke_authorizer(
        restApiId=api["id"], authorizerId=authorizer["id"],
        headers={"Authorization": "Bearer allow"}, pathWithQueryString="/orders/1")
    assert allowed["clientStatus"] == 200, allowed
    assert allowed["principalId"] == "demo-user"
    assert json.loads(allowed["policy"])["Statement"][0]["Effect"] == "Allow"
    assert allowed["log"].startswith("Execution log for request")
    assert allowed["latency"] >= 0
    refused = client.test_invoke_authorizer(
        restApiId=api["id"], authorizerId=authorizer["id"],
        headers={"Authorization": "Bearer nope"})
    assert refused["clientStatus"] == 401, refused
    with pytest.raises(client.exceptions.NotFoundException):
        client.test_invoke_authorizer(restApiId=api["id"], authorizerId="nope000000")
