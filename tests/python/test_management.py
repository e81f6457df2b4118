"""Portico's management API driven by boto3 and the AWS CLI, unchanged, with --endpoint-url.

Starts `portico dev --admin` on loopback ports of its own, with a known access key, and checks
the workflow of people moving from Amazon API Gateway: build an API from scratch, deploy it,
change a stage variable, roll the stage back, import and export OpenAPI, and call the deployed
routes through the node's edge listener. Every wait is bounded; the process is always stopped.
"""

import datetime
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
import warnings

import boto3
import botocore.exceptions
import pytest

ACCESS_KEY_ID = "AKIAPORTICOPYTEST001"
SECRET_ACCESS_KEY = "portico-python-test-secret-0000000000000"
FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "fixtures")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def portico(tmp_path_factory):
    binary = os.environ.get("PORTICO_BINARY", "target/debug/portico")
    http_port, admin_port = free_port(), free_port()
    data_dir = tmp_path_factory.mktemp("portico")
    env = dict(
        os.environ,
        PORTICO_ADMIN_ACCESS_KEY_ID=ACCESS_KEY_ID,
        PORTICO_ADMIN_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
    )
    process = subprocess.Popen(
        [binary, "dev", "--http", f"127.0.0.1:{http_port}", "--https", "off",
         "--admin", f"127.0.0.1:{admin_port}", "--data-dir", str(data_dir)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", admin_port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("portico dev did not start within 30 s")
        yield {
            "endpoint": f"https://127.0.0.1:{admin_port}",
            "edge": f"http://127.0.0.1:{http_port}",
            "ca": str(data_dir / "cert.pem"),
        }
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def client(portico):
    # The dev certificate is self-signed for 127.0.0.1; boto3 verifies it as a private CA.
    return boto3.client(
        "apigateway",
        endpoint_url=portico["endpoint"],
        region_name="eu-west-3",
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        verify=portico["ca"],
    )


def edge_get(portico, api_id, path):
    """GET through the edge, addressed as on execute-api."""
    request = urllib.request.Request(
        portico["edge"] + path, headers={"Host": f"{api_id}.execute-api.portico.test"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def mock_route(client, api_id, resource_id, body):
    client.put_method(restApiId=api_id, resourceId=resource_id, httpMethod="GET",
                      authorizationType="NONE")
    client.put_integration(restApiId=api_id, resourceId=resource_id, httpMethod="GET",
                           type="MOCK",
                           requestTemplates={"application/json": '{"statusCode": 200}'})
    client.put_method_response(restApiId=api_id, resourceId=resource_id, httpMethod="GET",
                               statusCode="200",
                               responseParameters={"method.response.header.x-color": False})
    client.put_integration_response(
        restApiId=api_id, resourceId=resource_id, httpMethod="GET", statusCode="200",
        responseParameters={"method.response.header.x-color": "stageVariables.color"},
        responseTemplates={"application/json": body},
    )


def test_build_deploy_update_and_roll_back(client, portico):
    api = client.create_rest_api(name="orders", description="built with boto3")
    api_id = api["id"]
    assert len(api_id) == 10 and api_id.isalnum() and api_id.islower()
    assert api["apiKeySource"] == "HEADER"
    assert api["endpointConfiguration"]["types"] == ["EDGE"]

    resources = client.get_resources(restApiId=api_id)["items"]
    assert [r["path"] for r in resources] == ["/"]
    orders = client.create_resource(restApiId=api_id, parentId=api["rootResourceId"],
                                    pathPart="orders")
    assert orders["path"] == "/orders"
    order = client.create_resource(restApiId=api_id, parentId=orders["id"], pathPart="{orderId}")
    assert order["path"] == "/orders/{orderId}"
    mock_route(client, api_id, orders["id"], '{"version": 1}')

    method = client.get_method(restApiId=api_id, resourceId=orders["id"], httpMethod="GET")
    assert method["methodIntegration"]["type"] == "MOCK"
    integration = client.get_integration(restApiId=api_id, resourceId=orders["id"],
                                         httpMethod="GET")
    assert integration["passthroughBehavior"] == "WHEN_NO_MATCH"

    first = client.create_deployment(restApiId=api_id, stageName="prod",
                                     variables={"color": "blue"}, description="v1")
    status, body = edge_get(portico, api_id, "/prod/orders")
    assert status == 200 and json.loads(body) == {"version": 1}

    # A stage variable change is served without redeploying.
    client.update_stage(restApiId=api_id, stageName="prod", patchOperations=[
        {"op": "replace", "path": "/variables/color", "value": "green"}])
    stage = client.get_stage(restApiId=api_id, stageName="prod")
    assert stage["variables"] == {"color": "green"}
    request = urllib.request.Request(portico["edge"] + "/prod/orders",
                                     headers={"Host": f"{api_id}.execute-api.portico.test"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["x-color"] == "green"

    # A second deployment changes the route; rolling back restores the first.
    client.put_integration_response(
        restApiId=api_id, resourceId=orders["id"], httpMethod="GET", statusCode="200",
        responseParameters={"method.response.header.x-color": "stageVariables.color"},
        responseTemplates={"application/json": '{"version": 2}'})
    second = client.create_deployment(restApiId=api_id, stageName="prod", description="v2")
    assert edge_get(portico, api_id, "/prod/orders") == (200, '{"version": 2}')
    deployments = client.get_deployments(restApiId=api_id)["items"]
    assert {d["id"] for d in deployments} == {first["id"], second["id"]}
    client.update_stage(restApiId=api_id, stageName="prod", patchOperations=[
        {"op": "replace", "path": "/deploymentId", "value": first["id"]}])
    assert edge_get(portico, api_id, "/prod/orders") == (200, '{"version": 1}')

    # Method settings are accepted in AWS's shape even before they are enforced.
    stage = client.update_stage(restApiId=api_id, stageName="prod", patchOperations=[
        {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "100"}])
    assert stage["methodSettings"]["*/*"]["throttlingRateLimit"] == 100.0

    # TestInvokeMethod runs the working definition (version 2), not the deployed one.
    result = client.test_invoke_method(restApiId=api_id, resourceId=orders["id"],
                                       httpMethod="GET", pathWithQueryString="/orders",
                                       stageVariables={"color": "red"})
    assert result["status"] == 200
    assert json.loads(result["body"]) == {"version": 2}
    assert result["headers"]["x-color"] == "red"
    assert result["log"].startswith("Execution log for request")

    # FlushStageCache: 202 with an empty body, which botocore accepts; unknown stage → 404.
    flushed = client.flush_stage_cache(restApiId=api_id, stageName="prod")
    assert flushed["ResponseMetadata"]["HTTPStatusCode"] == 202
    with pytest.raises(client.exceptions.NotFoundException):
        client.flush_stage_cache(restApiId=api_id, stageName="nope")

    # Deleting a deployment a stage uses is refused; an unused one goes.
    with pytest.raises(client.exceptions.BadRequestException):
        client.delete_deployment(restApiId=api_id, deploymentId=first["id"])
    client.delete_deployment(restApiId=api_id, deploymentId=second["id"])


def test_patching_methods_integrations_resources_and_deployments(client, portico):
    """Issue 15: the Update*/Delete* calls of existing scripts, served after a redeploy."""
    api = client.create_rest_api(name="patched")
    api_id, root = api["id"], api["rootResourceId"]
    items = client.create_resource(restApiId=api_id, parentId=root, pathPart="items")
    mock_route(client, api_id, items["id"], '{"version": 1}')
    first = client.create_deployment(restApiId=api_id, stageName="live", description="v1")
    assert edge_get(portico, api_id, "/live/items") == (200, '{"version": 1}')

    method = client.update_method(restApiId=api_id, resourceId=items["id"], httpMethod="GET",
                                  patchOperations=[{"op": "replace", "path": "/operationName",
                                                    "value": "ListItems"}])
    assert method["operationName"] == "ListItems"
    integration = client.update_integration(
        restApiId=api_id, resourceId=items["id"], httpMethod="GET",
        patchOperations=[{"op": "replace", "path": "/timeoutInMillis", "value": "1000"}])
    assert integration["timeoutInMillis"] == 1000 and integration["type"] == "MOCK"
    response = client.update_integration_response(
        restApiId=api_id, resourceId=items["id"], httpMethod="GET", statusCode="200",
        patchOperations=[{"op": "replace", "path": "/responseTemplates/application~1json",
                          "value": '{"version": 2}'}])
    assert response["responseTemplates"] == {"application/json": '{"version": 2}'}
    method_response = client.update_method_response(
        restApiId=api_id, resourceId=items["id"], httpMethod="GET", statusCode="200",
        patchOperations=[{"op": "add", "path": "/responseModels/application~1json",
                          "value": "Empty"}])
    assert method_response["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert method_response["responseModels"] == {"application/json": "Empty"}
    with pytest.raises(client.exceptions.BadRequestException) as refused:
        client.update_integration(restApiId=api_id, resourceId=items["id"], httpMethod="GET",
                                  patchOperations=[{"op": "replace", "path": "/nothing",
                                                    "value": "x"}])
    assert refused.value.response["Error"]["Message"] == "Invalid patch path /nothing"

    # A rename changes nothing served until the API is deployed again.
    renamed = client.update_resource(restApiId=api_id, resourceId=items["id"], patchOperations=[
        {"op": "replace", "path": "/pathPart", "value": "things"}])
    assert renamed["path"] == "/things"
    assert edge_get(portico, api_id, "/live/items") == (200, '{"version": 1}')
    second = client.create_deployment(restApiId=api_id, stageName="live", description="v2")
    assert edge_get(portico, api_id, "/live/things") == (200, '{"version": 2}')
    assert edge_get(portico, api_id, "/live/items")[0] == 403

    client.create_stage(restApiId=api_id, stageName="old", deploymentId=first["id"])
    stages = client.get_stages(restApiId=api_id, deploymentId=first["id"])["item"]
    assert [stage["stageName"] for stage in stages] == ["old"]
    updated = client.update_deployment(restApiId=api_id, deploymentId=first["id"],
                                       patchOperations=[{"op": "replace", "path": "/description",
                                                         "value": "the first"}])
    assert updated["description"] == "the first"
    with pytest.raises(client.exceptions.BadRequestException) as refused:
        client.delete_deployment(restApiId=api_id, deploymentId=first["id"])
    assert refused.value.response["Error"]["Message"] == (
        "Active stages pointing to this deployment must be moved or deleted")
    client.delete_stage(restApiId=api_id, stageName="old")
    client.delete_deployment(restApiId=api_id, deploymentId=first["id"])
    assert [d["id"] for d in client.get_deployments(restApiId=api_id)["items"]] == [second["id"]]

    client.delete_integration_response(restApiId=api_id, resourceId=items["id"],
                                       httpMethod="GET", statusCode="200")
    client.delete_method_response(restApiId=api_id, resourceId=items["id"], httpMethod="GET",
                                  statusCode="200")
    method = client.get_method(restApiId=api_id, resourceId=items["id"], httpMethod="GET")
    assert "methodResponses" not in method
    assert "integrationResponses" not in method["methodIntegration"]
    with pytest.raises(client.exceptions.NotFoundException):
        client.delete_method_response(restApiId=api_id, resourceId=items["id"],
                                      httpMethod="GET", statusCode="200")


def test_import_export_and_serve(client, portico):
    with open(os.path.join(FIXTURES, "localstack-openapi", "openapi-mock.json"), "rb") as f:
        document = f.read()
    imported = client.import_rest_api(body=document, failOnWarnings=False)
    api_id = imported["id"]
    paths = sorted(r["path"] for r in client.get_resources(restApiId=api_id)["items"])
    assert "/echo/{data}" in paths
    client.create_deployment(restApiId=api_id, stageName="dev")

    exported = client.get_export(restApiId=api_id, stageName="dev", exportType="oas30",
                                 parameters={"extensions": "integrations"},
                                 accepts="application/json")
    assert exported["contentType"] == "application/json"
    spec = json.loads(exported["body"].read())
    assert spec["openapi"].startswith("3.0")
    assert "x-amazon-apigateway-any-method" in spec["paths"]["/echo/{data}"]
    assert spec["paths"]["/echo/{data}"]["x-amazon-apigateway-any-method"][
        "x-amazon-apigateway-integration"]["type"] == "mock"

    swagger = client.get_export(restApiId=api_id, stageName="dev", exportType="swagger",
                                accepts="application/yaml")
    assert swagger["contentType"] == "application/yaml"
    assert b"swagger:" in swagger["body"].read()

    # The imported route is deployed on the edge (its mapping template uses expressions, which
    # the data plane does not evaluate yet, so it answers 500 rather than 403 "no route").
    status, body = edge_get(portico, api_id, "/dev/echo/hello")
    assert status == 500 and "Missing Authentication Token" not in body

    # failOnWarnings refuses a document with unsupported extensions.
    with open(os.path.join(FIXTURES, "localstack-openapi", "openapi.spec.json"), "rb") as f:
        with pytest.raises(client.exceptions.BadRequestException):
            client.import_rest_api(body=f.read(), failOnWarnings=True)


def test_pagination_and_errors(client):
    for n in range(3):
        client.create_rest_api(name=f"page-{n}")
    first = client.get_rest_apis(limit=2)
    assert len(first["items"]) == 2 and "position" in first
    rest = client.get_rest_apis(position=first["position"], limit=500)
    names = [a["name"] for a in first["items"] + rest["items"]]
    assert len(names) == len(set(a["id"] for a in first["items"] + rest["items"]))
    paginator = client.get_paginator("get_rest_apis")
    all_ids = [a["id"] for page in paginator.paginate(PaginationConfig={"PageSize": 2})
               for a in page["items"]]
    assert len(all_ids) == len(set(all_ids)) >= 4

    with pytest.raises(client.exceptions.NotFoundException):
        client.get_rest_api(restApiId="0123456789")
    api = client.create_rest_api(name="errors")
    with pytest.raises(client.exceptions.BadRequestException):
        client.put_method(restApiId=api["id"], resourceId=api["rootResourceId"],
                          httpMethod="FETCH", authorizationType="NONE")
    client.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="a")
    with pytest.raises(client.exceptions.ConflictException):
        client.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="a")
    with pytest.raises(client.exceptions.BadRequestException):
        client.create_deployment(restApiId=api["id"], stageName="prod")
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_stage(restApiId=api["id"], stageName="nope")
    client.delete_rest_api(restApiId=api["id"])
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_rest_api(restApiId=api["id"])


def test_refuses_unsigned_badly_signed_and_stale_requests(portico):
    # Unsigned.
    request = urllib.request.Request(portico["endpoint"] + "/restapis")
    import ssl
    context = ssl.create_default_context(cafile=portico["ca"])
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(request, timeout=5, context=context)
    assert unsigned.value.code == 403
    assert unsigned.value.headers["x-amzn-ErrorType"].startswith("MissingAuthenticationToken")

    # Wrong secret.
    wrong = boto3.client("apigateway", endpoint_url=portico["endpoint"], region_name="us-east-1",
                         aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key="x" * 40,
                         verify=portico["ca"])
    with pytest.raises(botocore.exceptions.ClientError) as bad:
        wrong.get_rest_apis()
    assert bad.value.response["Error"]["Code"] == "InvalidSignatureException"

    # Unknown key.
    unknown = boto3.client("apigateway", endpoint_url=portico["endpoint"],
                           region_name="us-east-1", aws_access_key_id="AKIANOTAKEY000000000",
                           aws_secret_access_key=SECRET_ACCESS_KEY, verify=portico["ca"])
    with pytest.raises(botocore.exceptions.ClientError) as unknown_key:
        unknown.get_rest_apis()
    assert unknown_key.value.response["Error"]["Code"] == "UnrecognizedClientException"

    # Signed more than 5 minutes ago.
    stale = boto3.client("apigateway", endpoint_url=portico["endpoint"], region_name="us-east-1",
                         aws_access_key_id=ACCESS_KEY_ID,
                         aws_secret_access_key=SECRET_ACCESS_KEY, verify=portico["ca"])

    def backdate(request, **_):
        from botocore.auth import SigV4Auth
        from botocore.credentials import Credentials
        import datetime
        del request.headers["Authorization"]
        del request.headers["X-Amz-Date"]
        auth = SigV4Auth(Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY), "apigateway", "us-east-1")
        past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=10)
        request.context["timestamp"] = past.strftime("%Y%m%dT%H%M%SZ")
        auth._modify_request_before_signing(request)
        request.headers["X-Amz-Date"] = request.context["timestamp"]
        canonical = auth.canonical_request(request)
        string_to_sign = auth.string_to_sign(request, canonical)
        signature = auth.signature(string_to_sign, request)
        auth._inject_signature_to_request(request, signature)

    stale.meta.events.register("request-created.apigateway", backdate, unique_id="backdate")
    with pytest.raises(botocore.exceptions.ClientError) as expired:
        stale.get_rest_apis()
    assert expired.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert "Signature expired" in expired.value.response["Error"]["Message"]


def test_aws_cli(portico, client):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY_ID,
               AWS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY, AWS_DEFAULT_REGION="us-west-2",
               AWS_CA_BUNDLE=portico["ca"], AWS_PAGER="")
    common = ["--endpoint-url", portico["endpoint"], "--output", "json"]

    listed = subprocess.run(["aws", "apigateway", "get-rest-apis", *common],
                            env=env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    names = [api["name"] for api in json.loads(listed.stdout)["items"]]
    assert "PetStore" in names

    api = client.create_rest_api(name="cli")
    resource = client.create_resource(restApiId=api["id"], parentId=api["rootResourceId"],
                                      pathPart="ping")
    mock_route(client, api["id"], resource["id"], '{"pong": true}')
    deployed = subprocess.run(
        ["aws", "apigateway", "create-deployment", "--rest-api-id", api["id"],
         "--stage-name", "live", *common],
        env=env, capture_output=True, text=True, timeout=60)
    assert deployed.returncode == 0, deployed.stderr
    assert len(json.loads(deployed.stdout)["id"]) == 10
    assert edge_get(portico, api["id"], "/live/ping") == (200, '{"pong": true}')

    missing = subprocess.run(["aws", "apigateway", "get-rest-api", "--rest-api-id", "missing000",
                              *common], env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0
    assert "NotFoundException" in missing.stderr


def test_functions_reach_apis_created_through_the_management_api(client, portico):
    # dev's function endpoint (here its demo one; --lambda-endpoint in general) serves every
    # API, including those created through the management API.
    api = client.create_rest_api(name="functions")
    resource = client.create_resource(restApiId=api["id"], parentId=api["rootResourceId"],
                                      pathPart="greet")
    client.put_method(restApiId=api["id"], resourceId=resource["id"], httpMethod="GET",
                      authorizationType="NONE")
    client.put_integration(
        restApiId=api["id"], resourceId=resource["id"], httpMethod="GET", type="AWS_PROXY",
        integrationHttpMethod="POST",
        uri="arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
            "arn:aws:lambda:us-east-1:123456789012:function:hello/invocations")
    client.create_deployment(restApiId=api["id"], stageName="live")
    status, body = edge_get(portico, api["id"], "/live/greet?name=boto3")
    assert status == 200, body
    reply = json.loads(body)
    assert "boto3" in reply["message"]
    assert reply["resource"] == "/greet"


def without_metadata(response):
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}


def test_api_keys_usage_plans_and_account(client):
    api = client.create_rest_api(name="keyed")
    api_id = api["id"]
    pets = client.create_resource(restApiId=api_id, parentId=api["rootResourceId"],
                                  pathPart="pets")
    mock_route(client, api_id, pets["id"], '{"ok": true}')
    client.create_deployment(restApiId=api_id, stageName="prod")

    # Keys: generated value, disabled by default, the value only when asked for.
    key = client.create_api_key(name="py-key", customerId="cust-9", tags={"t": "1"})
    assert key["enabled"] is False and key["stageKeys"] == [] and key["tags"] == {"t": "1"}
    assert len(key["value"]) == 40 and key["value"].isalnum()
    assert isinstance(key["createdDate"], datetime.datetime)
    assert client.get_api_key(apiKey=key["id"], includeValue=True)["value"] == key["value"]
    assert "value" not in client.get_api_key(apiKey=key["id"])
    listed = client.get_api_keys(nameQuery="py-", includeValues=True)["items"]
    assert [k["id"] for k in listed] == [key["id"]] and listed[0]["value"] == key["value"]
    assert client.get_api_keys(customerId="cust-9")["items"][0]["id"] == key["id"]
    assert all("value" not in k for k in client.get_api_keys()["items"])
    enable = [{"op": "replace", "path": "/enabled", "value": "true"}]
    assert client.update_api_key(apiKey=key["id"], patchOperations=enable)["enabled"] is True
    disable = [{"op": "replace", "path": "/enabled", "value": "false"}]
    disabled = client.update_api_key(apiKey=key["id"], patchOperations=disable)
    assert disabled["enabled"] is False and disabled["tags"] == {"t": "1"}
    assert client.get_api_key(apiKey=key["id"])["enabled"] is False
    with pytest.raises(client.exceptions.BadRequestException) as error:
        client.create_api_key(name="short", value="too-short")
    assert "API Key value should be at least 20 characters" in str(error.value)
    with pytest.raises(client.exceptions.ConflictException):
        client.create_api_key(value=key["value"])

    # Import from CSV (header columns in any case).
    imported = client.import_api_keys(
        body=b"Name,KEY,enabled\npy-imported,python-imported-value-0001,TRUE\n",
        format="csv", failOnWarnings=True)
    assert len(imported["ids"]) == 1
    row = client.get_api_key(apiKey=imported["ids"][0], includeValue=True)
    assert row["value"] == "python-imported-value-0001" and row["enabled"] is True
    assert row["name"] == "py-imported"
    with pytest.raises(client.exceptions.BadRequestException):
        client.import_api_keys(body=b"key,colour\npython-imported-value-0002,red\n",
                               format="csv", failOnWarnings=True)

    # Usage plans: throttle, quota (offset filled in), a per-method override.
    plan = client.create_usage_plan(
        name="py-plan", description="python",
        apiStages=[{"apiId": api_id, "stage": "prod",
                    "throttle": {"/pets/GET": {"burstLimit": 5, "rateLimit": 2.5}}}],
        throttle={"burstLimit": 10, "rateLimit": 20.0},
        quota={"limit": 100, "period": "WEEK"})
    assert plan["quota"] == {"limit": 100, "offset": 0, "period": "WEEK"}
    assert plan["throttle"] == {"burstLimit": 10, "rateLimit": 20.0}
    assert plan["apiStages"] == [{"apiId": api_id, "stage": "prod",
                                  "throttle": {"/pets/GET": {"burstLimit": 5, "rateLimit": 2.5}}}]
    with pytest.raises(client.exceptions.BadRequestException):
        client.create_usage_plan(name="bad", apiStages=[{"apiId": api_id, "stage": "nope"}])
    updated = client.update_usage_plan(usagePlanId=plan["id"], patchOperations=[
        {"op": "replace", "path": "/quota/limit", "value": "500"},
        {"op": "replace", "path": f"/apiStages/{api_id}:prod/throttle/~1pets/GET/rateLimit",
         "value": "7"},
        {"op": "remove", "path": "/throttle"},
    ])
    assert updated["quota"] == {"limit": 500, "offset": 0, "period": "WEEK"}
    assert "throttle" not in updated
    assert updated["apiStages"][0]["throttle"]["/pets/GET"] == {"burstLimit": 5, "rateLimit": 7.0}
    assert client.get_usage_plan(usagePlanId=plan["id"])["quota"]["limit"] == 500
    assert [p["id"] for p in client.get_usage_plans()["items"]] == [plan["id"]]
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_usage_plan(usagePlanId="nope")

    # Usage plan keys: one plan per key and API stage.
    plan_key = client.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"],
                                            keyType="API_KEY")
    assert without_metadata(plan_key) == {"id": key["id"], "type": "API_KEY",
                                          "name": "py-key", "value": key["value"]}
    with pytest.raises(client.exceptions.NotFoundException):
        client.create_usage_plan_key(usagePlanId=plan["id"], keyId="nope", keyType="API_KEY")
    other = client.create_usage_plan(name="py-other",
                                     apiStages=[{"apiId": api_id, "stage": "prod"}])
    with pytest.raises(client.exceptions.ConflictException):
        client.create_usage_plan_key(usagePlanId=other["id"], keyId=key["id"],
                                     keyType="API_KEY")
    keys = client.get_usage_plan_keys(usagePlanId=plan["id"], nameQuery="py")["items"]
    assert [k["id"] for k in keys] == [key["id"]]
    assert client.get_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"])["value"] == \
        key["value"]
    assert [p["id"] for p in client.get_usage_plans(keyId=key["id"])["items"]] == [plan["id"]]
    client.delete_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"])
    assert client.get_usage_plan_keys(usagePlanId=plan["id"])["items"] == []

    # Account: AWS's defaults; the throttle can be changed here (a Portico extension).
    account = client.get_account()
    # No account throttle until one is set (AWS shows its 10000/5000 service quota).
    assert "throttleSettings" not in account
    assert account["apiKeyVersion"] == "4" and account["features"] == ["UsagePlans"]
    account = client.update_account(patchOperations=[
        {"op": "replace", "path": "/throttle/rateLimit", "value": "300"},
        {"op": "replace", "path": "/throttle/burstLimit", "value": "150"},
    ])
    assert account["throttleSettings"] == {"burstLimit": 150, "rateLimit": 300.0}
    client.update_account(patchOperations=[
        {"op": "replace", "path": "/throttle/rateLimit", "value": "10000"},
        {"op": "replace", "path": "/throttle/burstLimit", "value": "5000"},
    ])

    # Deletes.
    client.delete_usage_plan(usagePlanId=plan["id"])
    client.delete_usage_plan(usagePlanId=other["id"])
    assert client.get_usage_plans()["items"] == []
    client.delete_api_key(apiKey=key["id"])
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_api_key(apiKey=key["id"])


def keyed_get(portico, api_id, path, key):
    """GET through the edge with an x-api-key: (status, x-amzn-ErrorType, body)."""
    request = urllib.request.Request(
        portico["edge"] + path,
        headers={"Host": f"{api_id}.execute-api.portico.test", "x-api-key": key},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, None, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("x-amzn-ErrorType"), error.read().decode()


def test_keys_plans_limits_and_usage_through_the_edge(client, portico):
    # The workflow of issue #5's "done when": boto3 creates a key and a plan, the edge
    # enforces the key, the throttle and the quota, and GetUsage reads back what was admitted.
    api = client.create_rest_api(name="metered")
    api_id = api["id"]
    resource = client.create_resource(restApiId=api_id, parentId=api["rootResourceId"],
                                      pathPart="item")
    client.put_method(restApiId=api_id, resourceId=resource["id"], httpMethod="GET",
                      authorizationType="NONE", apiKeyRequired=True)
    client.put_integration(restApiId=api_id, resourceId=resource["id"], httpMethod="GET",
                           type="MOCK",
                           requestTemplates={"application/json": '{"statusCode": 200}'})
    client.put_method_response(restApiId=api_id, resourceId=resource["id"], httpMethod="GET",
                               statusCode="200")
    client.put_integration_response(restApiId=api_id, resourceId=resource["id"],
                                    httpMethod="GET", statusCode="200",
                                    responseTemplates={"application/json": '{"ok": true}'})
    client.create_deployment(restApiId=api_id, stageName="prod")

    key = client.create_api_key(name="metered-key", enabled=True)
    value = client.get_api_key(apiKey=key["id"], includeValue=True)["value"]
    plan = client.create_usage_plan(
        name="metered-plan",
        apiStages=[{"apiId": api_id, "stage": "prod"}],
        throttle={"rateLimit": 5.0, "burstLimit": 5},
        quota={"limit": 12, "period": "DAY"},
    )
    # Without a key, with an unknown key, or before the key is in the plan: 403.
    assert keyed_get(portico, api_id, "/prod/item", "")[0] == 403
    assert keyed_get(portico, api_id, "/prod/item", "x" * 30)[:2] == (403, "ForbiddenException")
    assert keyed_get(portico, api_id, "/prod/item", value)[0] == 403
    client.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")

    # A burst of 8 at once: the bucket holds 5 (and refills one every 200 ms).
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        burst = list(pool.map(lambda _: keyed_get(portico, api_id, "/prod/item", value),
                              range(8)))
    throttled = [answer for answer in burst if answer[0] == 429]
    assert all(answer[1] == "TooManyRequestsException" for answer in throttled), burst
    assert all(json.loads(answer[2]) == {"message": "Too Many Requests"}
               for answer in throttled), burst
    admitted = sum(1 for answer in burst if answer[0] == 200)
    assert admitted >= 5 and len(throttled) >= 1, burst

    # Then one at a time until the quota of 12 is spent: exactly 12 in all are admitted.
    exceeded = None
    for _ in range(100):
        status, error_type, body = keyed_get(portico, api_id, "/prod/item", value)
        if status == 200:
            admitted += 1
        elif error_type == "LimitExceededException":
            exceeded = json.loads(body)
            break
        time.sleep(0.21)
    assert admitted == 12
    assert exceeded == {"message": "Limit Exceeded"}

    # GetUsage reports what the edge admitted (the edge reports every 100 ms).
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    deadline = time.monotonic() + 10
    while True:
        usage = client.get_usage(usagePlanId=plan["id"], startDate=today, endDate=today)
        if usage["items"].get(key["id"]) == [[12, 0]] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert usage["usagePlanId"] == plan["id"]
    assert usage["items"] == {key["id"]: [[12, 0]]}

    # Disabling the key takes effect at once.
    client.update_api_key(apiKey=key["id"],
                          patchOperations=[{"op": "replace", "path": "/enabled",
                                            "value": "false"}])
    assert keyed_get(portico, api_id, "/prod/item", value)[:2] == (403, "ForbiddenException")
