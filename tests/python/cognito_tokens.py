"""Real Cognito tokens from moto in server mode, for node/tests/cognito_moto.rs.

Usage: python cognito_tokens.py ENDPOINT_URL
Creates two user pools with an app client each and a user in each, signs the users in with
ADMIN_USER_PASSWORD_AUTH (as an app's backend would) and prints one JSON object with the pool
ARNs and the ID and access tokens moto issued. Not a pytest module (no test_ prefix).
"""

import json
import sys

import boto3


def pool_with_user(client, name, username, password):
    pool = client.create_user_pool(PoolName=name)["UserPool"]
    app = client.create_user_pool_client(
        UserPoolId=pool["Id"],
        ClientName=f"{name}-app",
        ExplicitAuthFlows=["ADMIN_USER_PASSWORD_AUTH"],
    )["UserPoolClient"]
    client.admin_create_user(
        UserPoolId=pool["Id"],
        Username=username,
        TemporaryPassword="Temporary-pass-1!",
        UserAttributes=[
            {"Name": "email", "Value": f"{username}@example.com"},
            {"Name": "email_verified", "Value": "true"},
        ],
    )
    client.admin_set_user_password(
        UserPoolId=pool["Id"], Username=username, Password=password, Permanent=True
    )
    tokens = client.admin_initiate_auth(
        UserPoolId=pool["Id"],
        ClientId=app["ClientId"],
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )["AuthenticationResult"]
    return {
        "pool_id": pool["Id"],
        "pool_arn": pool["Arn"],
        "client_id": app["ClientId"],
        "id_token": tokens["IdToken"],
        "access_token": tokens["AccessToken"],
    }


def main():
    endpoint = sys.argv[1]
    client = boto3.client(
        "cognito-idp",
        endpoint_url=endpoint,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    print(
        json.dumps(
            {
                "main": pool_with_user(client, "portico-main", "alice", "Alice-pass-1!"),
                "other": pool_with_user(client, "portico-other", "bob", "Bob-pass-1!"),
            }
        )
    )


if __name__ == "__main__":
    main()
