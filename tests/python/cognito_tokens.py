"""Real Cognito tokens from moto in server mode, for node/tests/cognito_moto.rs.

Usage: python cognito_tokens.py ENDPOINT_URL
Creates two user pools with an app client each and a user in each, signs the users in with
ADMIN_USER_PASSWORD_AUTH (as an app's backend would) and prints one JSON object with the pool
ARNs and the ID and access tokens moto issued, plus an expired copy of the first ID token
signed with moto's own key. Not a pytest module (no test_ prefix).
"""

import base64
import json
import sys
import time

import boto3
from joserfc import jwk, jwt
from moto.utilities.utils import load_resource


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


def expired_copy(token):
    """The token's claims re-signed with the key moto signs every pool's tokens with, an hour
    in the past (moto always issues tokens valid from now)."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    now = int(time.time())
    claims.update({"iat": now - 7200, "auth_time": now - 7200, "exp": now - 3600})
    key = jwk.RSAKey.import_key(load_resource("cognitoidp/resources/jwks-private.json"))
    return jwt.encode({"kid": "dummy", "alg": "RS256"}, claims, key)


def main():
    endpoint = sys.argv[1]
    client = boto3.client(
        "cognito-idp",
        endpoint_url=endpoint,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    main_pool = pool_with_user(client, "portico-main", "alice", "Alice-pass-1!")
    main_pool["expired_id_token"] = expired_copy(main_pool["id_token"])
    other_pool = pool_with_user(client, "portico-other", "bob", "Bob-pass-1!")
    print(json.dumps({"main": main_pool, "other": other_pool}))


if __name__ == "__main__":
    main()
