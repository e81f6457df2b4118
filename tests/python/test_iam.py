"""The IAM-compatible endpoint (identities for AWS_IAM methods) driven by boto3's `iam` client
and the AWS CLI with --endpoint-url, against `portico dev --admin` (the fixture of
test_management.py: the same process kind, a process of this module's own)."""

import json
import os
import subprocess

import boto3
import botocore.exceptions
import pytest

from test_management import ACCESS_KEY_ID, SECRET_ACCESS_KEY, portico  # noqa: F401 (fixture)

POLICY = {
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Action": "execute-api:Invoke",
        "Resource": "arn:aws:execute-api:us-east-1:*:*/prod/GET/*",
    }],
}


@pytest.fixture(scope="module")
def iam(portico):  # noqa: F811 (the imported fixture)
    return boto3.client(
        "iam",
        endpoint_url=portico["endpoint"],
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        verify=portico["ca"],
    )


def error_of(call, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(**kwargs)
    response = raised.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], \
        response["Error"]["Message"]


def test_users_keys_and_policies_through_boto3(iam):
    created = iam.create_user(UserName="alice", Path="/team/")["User"]
    assert created["UserName"] == "alice"
    assert created["Path"] == "/team/"
    assert created["Arn"] == "arn:aws:iam::000000000000:user/team/alice"
    assert created["UserId"].startswith("AIDA") and len(created["UserId"]) == 21
    assert created["CreateDate"].year >= 2024
    assert iam.get_user(UserName="alice")["User"]["UserId"] == created["UserId"]
    assert error_of(iam.create_user, UserName="ALICE")[:2] == ("EntityAlreadyExists", 409)
    assert error_of(iam.get_user, UserName="nobody") == (
        "NoSuchEntity", 404, "The user with name nobody cannot be found.")

    iam.create_user(UserName="bob")
    names = [user["UserName"] for user in iam.list_users()["Users"]]
    assert names == ["alice", "bob"]
    assert [u["UserName"] for u in iam.list_users(PathPrefix="/team/")["Users"]] == ["alice"]
    first = iam.list_users(MaxItems=1)
    assert first["IsTruncated"] and [u["UserName"] for u in first["Users"]] == ["alice"]
    rest = iam.list_users(Marker=first["Marker"])
    assert [u["UserName"] for u in rest["Users"]] == ["bob"] and not rest["IsTruncated"]
    paginated = [u["UserName"] for page in iam.get_paginator("list_users").paginate(
        PaginationConfig={"PageSize": 1}) for u in page["Users"]]
    assert paginated == ["alice", "bob"]

    key = iam.create_access_key(UserName="alice")["AccessKey"]
    assert key["AccessKeyId"].startswith("AKIA") and len(key["AccessKeyId"]) == 20
    assert len(key["SecretAccessKey"]) == 40
    assert key["Status"] == "Active"
    second = iam.create_access_key(UserName="alice")["AccessKey"]
    assert error_of(iam.create_access_key, UserName="alice") == (
        "LimitExceeded", 409, "Cannot exceed quota for AccessKeysPerUser: 2")
    listed = iam.list_access_keys(UserName="alice")["AccessKeyMetadata"]
    assert sorted(k["AccessKeyId"] for k in listed) == sorted(
        [key["AccessKeyId"], second["AccessKeyId"]])
    assert all("SecretAccessKey" not in k for k in listed)
    iam.update_access_key(UserName="alice", AccessKeyId=second["AccessKeyId"], Status="Inactive")
    statuses = {k["AccessKeyId"]: k["Status"]
                for k in iam.list_access_keys(UserName="alice")["AccessKeyMetadata"]}
    assert statuses[second["AccessKeyId"]] == "Inactive"
    assert error_of(iam.delete_access_key, UserName="bob",
                    AccessKeyId=second["AccessKeyId"])[:2] == ("NoSuchEntity", 404)

    iam.put_user_policy(UserName="alice", PolicyName="invoke", PolicyDocument=json.dumps(POLICY))
    fetched = iam.get_user_policy(UserName="alice", PolicyName="invoke")
    # IAM answers the document URL-encoded; botocore decodes it back into a dict.
    assert fetched["PolicyDocument"] == POLICY
    assert iam.list_user_policies(UserName="alice")["PolicyNames"] == ["invoke"]
    assert error_of(iam.put_user_policy, UserName="alice", PolicyName="bad",
                    PolicyDocument="{not json")[:2] == ("MalformedPolicyDocument", 400)
    with_principal = dict(POLICY, Statement=[dict(POLICY["Statement"][0], Principal="*")])
    assert error_of(iam.put_user_policy, UserName="alice", PolicyName="bad",
                    PolicyDocument=json.dumps(with_principal)) == (
        "MalformedPolicyDocument", 400, "Policy document should not specify a principal.")
    assert error_of(iam.get_user_policy, UserName="alice", PolicyName="nope")[:2] == (
        "NoSuchEntity", 404)

    code, status, message = error_of(iam.delete_user, UserName="alice")
    assert (code, status) == ("DeleteConflict", 409)
    assert message == "Cannot delete entity, must delete access keys first."
    for access_key in (key, second):
        iam.delete_access_key(UserName="alice", AccessKeyId=access_key["AccessKeyId"])
    assert error_of(iam.delete_user, UserName="alice")[2] == \
        "Cannot delete entity, must delete policies first."
    iam.delete_user_policy(UserName="alice", PolicyName="invoke")
    iam.delete_user(UserName="alice")
    assert error_of(iam.get_user, UserName="alice")[:2] == ("NoSuchEntity", 404)


def test_unsigned_and_wrongly_signed_iam_calls_are_refused(portico):  # noqa: F811
    stranger = boto3.client(
        "iam", endpoint_url=portico["endpoint"], region_name="us-east-1",
        aws_access_key_id="AKIASTRANGER00000000", aws_secret_access_key="x" * 40,
        verify=portico["ca"])
    assert error_of(stranger.list_users)[:2] == ("InvalidClientTokenId", 403)
    forger = boto3.client(
        "iam", endpoint_url=portico["endpoint"], region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key="y" * 40,
        verify=portico["ca"])
    assert error_of(forger.list_users)[:2] == ("SignatureDoesNotMatch", 403)


def test_the_aws_cli_manages_iam_users(portico):  # noqa: F811
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY_ID,
               AWS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY, AWS_DEFAULT_REGION="us-east-1",
               AWS_CA_BUNDLE=portico["ca"], AWS_PAGER="")
    common = ["--endpoint-url", portico["endpoint"], "--output", "json"]

    def aws(*args):
        return subprocess.run(["aws", "iam", *args, *common], env=env, capture_output=True,
                              text=True, timeout=60)

    created = aws("create-user", "--user-name", "carol")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["User"]["UserName"] == "carol"
    key = aws("create-access-key", "--user-name", "carol")
    assert key.returncode == 0, key.stderr
    access_key_id = json.loads(key.stdout)["AccessKey"]["AccessKeyId"]
    missing = aws("get-user", "--user-name", "nobody")
    assert missing.returncode != 0 and "NoSuchEntity" in missing.stderr
    assert aws("delete-access-key", "--user-name", "carol", "--access-key-id",
               access_key_id).returncode == 0
    assert aws("delete-user", "--user-name", "carol").returncode == 0
