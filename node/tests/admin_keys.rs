//! API keys, usage plans, usage plan keys and the account over real HTTPS, signed with SigV4:
//! status codes, response shapes and AWS error types, as boto3 sees them.

mod common;

use common::admin::Admin;
use serde_json::{Value, json};

impl Admin {
    async fn expect(&self, method: &str, path: &str, body: Value, status: u16) -> Value {
        let text = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (got, error_type, json) = self.call(method, path, &text).await;
        assert_eq!(got, status, "{method} {path}: {error_type:?} {json}");
        json
    }

    /// Expects an AWS error: status, `x-amzn-ErrorType` and `{"message"}`.
    async fn error(
        &self,
        method: &str,
        path: &str,
        body: &str,
        status: u16,
        error_type: &str,
    ) -> String {
        let (got, got_type, json) = self.call(method, path, body).await;
        assert_eq!(got, status, "{method} {path}: {json}");
        assert_eq!(
            got_type.as_deref(),
            Some(error_type),
            "{method} {path}: {json}"
        );
        json["message"].as_str().unwrap().to_string()
    }

    /// An API with a MOCK `GET /` deployed to stage `prod`; returns its id.
    async fn deployed_api(&self) -> String {
        let api = self
            .expect("POST", "/restapis", json!({"name": "keyed"}), 201)
            .await;
        let api_id = api["id"].as_str().unwrap().to_string();
        let root = api["rootResourceId"].as_str().unwrap();
        let method = format!("/restapis/{api_id}/resources/{root}/methods/GET");
        self.expect(
            "PUT",
            &method,
            json!({"authorizationType": "NONE", "apiKeyRequired": true}),
            201,
        )
        .await;
        self.expect(
            "PUT",
            &format!("{method}/integration"),
            json!({"type": "MOCK", "requestTemplates": {"application/json": "{\"statusCode\": 200}"}}),
            201,
        )
        .await;
        self.expect(
            "POST",
            &format!("/restapis/{api_id}/deployments"),
            json!({"stageName": "prod"}),
            201,
        )
        .await;
        api_id
    }
}

fn items(list: &Value) -> &Vec<Value> {
    list["item"].as_array().unwrap()
}

#[tokio::test]
async fn api_keys_lifecycle() {
    let admin = Admin::start().await;

    // A generated key: 40 characters of [A-Za-z0-9], disabled by default, value shown once.
    let created = admin
        .expect("POST", "/apikeys", json!({"name": "alpha"}), 201)
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    let value = created["value"].as_str().unwrap().to_string();
    assert_eq!(value.len(), 40);
    assert!(value.chars().all(|c| c.is_ascii_alphanumeric()), "{value}");
    assert_eq!(created["enabled"], json!(false));
    assert_eq!(created["stageKeys"], json!([]));
    assert!(created["createdDate"].is_i64());
    assert!(created.get("tags").is_none());

    // A given value, enabled, with a customer and tags.
    let given = "given-value-0123456789-abcdefghij";
    let second = admin
        .expect(
            "POST",
            "/apikeys",
            json!({"name": "beta", "value": given, "enabled": true,
                   "customerId": "cust-1", "tags": {"team": "a"}}),
            201,
        )
        .await;
    let second_id = second["id"].as_str().unwrap().to_string();
    assert_eq!(second["value"], json!(given));
    assert_eq!(second["enabled"], json!(true));
    assert_eq!(second["tags"], json!({"team": "a"}));

    // Value rules with AWS's texts; one value, one key.
    let message = admin
        .error(
            "POST",
            "/apikeys",
            r#"{"value": "short"}"#,
            400,
            "BadRequestException",
        )
        .await;
    assert_eq!(message, "API Key value should be at least 20 characters");
    let long = json!({ "value": "v".repeat(129) }).to_string();
    let message = admin
        .error("POST", "/apikeys", &long, 400, "BadRequestException")
        .await;
    assert_eq!(
        message,
        "API Key value exceeds maximum size of 128 characters"
    );
    let duplicate = json!({ "value": given }).to_string();
    admin
        .error("POST", "/apikeys", &duplicate, 409, "ConflictException")
        .await;
    let long_name = json!({ "name": "n".repeat(1025) }).to_string();
    let message = admin
        .error("POST", "/apikeys", &long_name, 400, "BadRequestException")
        .await;
    assert_eq!(
        message,
        "Invalid API Key name, can be at most 1024 characters."
    );

    // Reads: the value only when asked for.
    let read = admin
        .expect("GET", &format!("/apikeys/{id}"), Value::Null, 200)
        .await;
    assert!(read.get("value").is_none());
    assert_eq!(read["tags"], json!({}));
    let read = admin
        .expect(
            "GET",
            &format!("/apikeys/{id}?includeValue=true"),
            Value::Null,
            200,
        )
        .await;
    assert_eq!(read["value"], json!(value));

    let list = admin.expect("GET", "/apikeys", Value::Null, 200).await;
    assert_eq!(items(&list).len(), 2);
    assert!(items(&list).iter().all(|key| key.get("value").is_none()));
    let list = admin
        .expect("GET", "/apikeys?includeValues=true", Value::Null, 200)
        .await;
    let values: Vec<&str> = items(&list)
        .iter()
        .map(|key| key["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, vec![value.as_str(), given]);
    // `nameQuery` (sent as `name`) is a case-sensitive prefix.
    let list = admin
        .expect("GET", "/apikeys?name=be", Value::Null, 200)
        .await;
    assert_eq!(items(&list).len(), 1);
    assert_eq!(items(&list)[0]["id"], json!(second_id));
    let list = admin
        .expect("GET", "/apikeys?name=Be", Value::Null, 200)
        .await;
    assert!(items(&list).is_empty());
    let list = admin
        .expect("GET", "/apikeys?customerId=cust-1", Value::Null, 200)
        .await;
    assert_eq!(items(&list).len(), 1);
    // Paging.
    let page = admin
        .expect("GET", "/apikeys?limit=1", Value::Null, 200)
        .await;
    assert_eq!(items(&page).len(), 1);
    let position = page["position"].as_str().unwrap();
    let rest = admin
        .expect(
            "GET",
            &format!("/apikeys?limit=1&position={position}"),
            Value::Null,
            200,
        )
        .await;
    assert_eq!(items(&rest)[0]["id"], json!(second_id));
    assert!(rest.get("position").is_none());

    // Update: enable, rename, describe; stages are added and removed.
    let updated = admin
        .expect(
            "PATCH",
            &format!("/apikeys/{id}"),
            json!({"patchOperations": [
                {"op": "replace", "path": "/enabled", "value": "true"},
                {"op": "replace", "path": "/name", "value": "alpha2"},
                {"op": "replace", "path": "/description", "value": "first key"}
            ]}),
            200,
        )
        .await;
    assert_eq!(updated["enabled"], json!(true));
    assert_eq!(updated["name"], json!("alpha2"));
    assert_eq!(updated["description"], json!("first key"));
    assert!(updated.get("value").is_none());
    let api_id = admin.deployed_api().await;
    let updated = admin
        .expect(
            "PATCH",
            &format!("/apikeys/{id}"),
            json!({"patchOperations": [
                {"op": "add", "path": "/stages", "value": format!("{api_id}/prod")},
                {"op": "replace", "path": "/enabled", "value": "false"}
            ]}),
            200,
        )
        .await;
    assert_eq!(updated["stageKeys"], json!([format!("{api_id}/prod")]));
    assert_eq!(updated["enabled"], json!(false));
    let body = json!({"patchOperations": [{"op": "replace", "path": "/id", "value": "x"}]});
    let message = admin
        .error(
            "PATCH",
            &format!("/apikeys/{id}"),
            &body.to_string(),
            400,
            "BadRequestException",
        )
        .await;
    assert_eq!(
        message,
        "Invalid patch path  '/id' specified for op 'replace'. Must be one of: [/description, /enabled, /name, /customerId]"
    );

    // Delete.
    admin
        .expect("DELETE", &format!("/apikeys/{id}"), Value::Null, 202)
        .await;
    let message = admin
        .error(
            "GET",
            &format!("/apikeys/{id}"),
            "",
            404,
            "NotFoundException",
        )
        .await;
    assert_eq!(message, "Invalid API Key identifier specified");
    admin
        .error(
            "DELETE",
            &format!("/apikeys/{id}"),
            "",
            404,
            "NotFoundException",
        )
        .await;
}

#[tokio::test]
async fn usage_plans_plan_keys_and_import() {
    let admin = Admin::start().await;
    let api_id = admin.deployed_api().await;

    // A plan with throttle, quota and a per-method override; AWS fills `quota.offset`.
    let plan = admin
        .expect(
            "POST",
            "/usageplans",
            json!({
                "name": "gold",
                "description": "the gold plan",
                "apiStages": [{"apiId": api_id, "stage": "prod",
                               "throttle": {"//GET": {"burstLimit": 3, "rateLimit": 1.5}}}],
                "throttle": {"burstLimit": 10, "rateLimit": 20},
                "quota": {"limit": 1000, "period": "MONTH"},
                "tags": {"tier": "gold"}
            }),
            201,
        )
        .await;
    let plan_id = plan["id"].as_str().unwrap().to_string();
    assert_eq!(
        plan["quota"],
        json!({"limit": 1000, "offset": 0, "period": "MONTH"})
    );
    assert_eq!(
        plan["throttle"],
        json!({"burstLimit": 10, "rateLimit": 20.0})
    );
    assert!(plan["throttle"]["rateLimit"].is_f64());
    assert_eq!(
        plan["apiStages"],
        json!([{"apiId": api_id, "stage": "prod",
                "throttle": {"//GET": {"burstLimit": 3, "rateLimit": 1.5}}}])
    );
    assert_eq!(plan["tags"], json!({"tier": "gold"}));

    // Refusals.
    let body = json!({"name": "x", "apiStages": [{"apiId": api_id, "stage": "nope"}]});
    let message = admin
        .error(
            "POST",
            "/usageplans",
            &body.to_string(),
            400,
            "BadRequestException",
        )
        .await;
    assert!(
        message.starts_with(&format!("Invalid API Stage {{api: {api_id}, stage: nope}}")),
        "{message}"
    );
    admin
        .error("POST", "/usageplans", "{}", 400, "ValidationException")
        .await;
    let body = json!({"name": "x", "quota": {"limit": 1, "period": "YEAR"}});
    admin
        .error(
            "POST",
            "/usageplans",
            &body.to_string(),
            400,
            "ValidationException",
        )
        .await;
    let body = json!({"name": "x", "throttle": {"burstLimit": 1, "rateLimit": -1}});
    admin
        .error(
            "POST",
            "/usageplans",
            &body.to_string(),
            400,
            "BadRequestException",
        )
        .await;
    let message = admin
        .error("GET", "/usageplans/nope", "", 404, "NotFoundException")
        .await;
    assert_eq!(message, "Invalid Usage Plan ID specified");

    // Update.
    let updated = admin
        .expect(
            "PATCH",
            &format!("/usageplans/{plan_id}"),
            json!({"patchOperations": [
                {"op": "replace", "path": "/throttle/rateLimit", "value": "200"},
                {"op": "replace", "path": "/quota/limit", "value": "5000"},
                {"op": "replace", "path": "/quota/period", "value": "DAY"},
                {"op": "replace", "path": format!("/apiStages/{api_id}:prod/throttle/~1/GET/burstLimit"), "value": "9"},
                {"op": "replace", "path": "/name", "value": "platinum"}
            ]}),
            200,
        )
        .await;
    assert_eq!(updated["name"], json!("platinum"));
    assert_eq!(updated["throttle"]["rateLimit"], json!(200.0));
    assert_eq!(
        updated["quota"],
        json!({"limit": 5000, "offset": 0, "period": "DAY"})
    );
    assert_eq!(
        updated["apiStages"][0]["throttle"]["//GET"]["burstLimit"],
        json!(9)
    );
    let body = json!({"patchOperations": [{"op": "remove", "path": "/apiStages"}]});
    let message = admin
        .error(
            "PATCH",
            &format!("/usageplans/{plan_id}"),
            &body.to_string(),
            400,
            "BadRequestException",
        )
        .await;
    assert_eq!(message, "Invalid API Stage specified");

    // Plan keys.
    let key = admin
        .expect(
            "POST",
            "/apikeys",
            json!({"name": "member", "enabled": true}),
            201,
        )
        .await;
    let key_id = key["id"].as_str().unwrap().to_string();
    let plan_keys = format!("/usageplans/{plan_id}/keys");
    let plan_key = admin
        .expect(
            "POST",
            &plan_keys,
            json!({"keyId": key_id, "keyType": "API_KEY"}),
            201,
        )
        .await;
    assert_eq!(
        plan_key,
        json!({"id": key_id, "type": "API_KEY", "name": "member", "value": key["value"]})
    );
    let body = json!({"keyId": key_id, "keyType": "OTHER"}).to_string();
    admin
        .error("POST", &plan_keys, &body, 400, "BadRequestException")
        .await;
    let body = json!({"keyId": "nope", "keyType": "API_KEY"}).to_string();
    admin
        .error("POST", &plan_keys, &body, 404, "NotFoundException")
        .await;
    // A second plan on the same stage cannot take the same key.
    let other = admin
        .expect(
            "POST",
            "/usageplans",
            json!({"name": "silver", "apiStages": [{"apiId": api_id, "stage": "prod"}]}),
            201,
        )
        .await;
    let other_id = other["id"].as_str().unwrap();
    let body = json!({"keyId": key_id, "keyType": "API_KEY"}).to_string();
    admin
        .error(
            "POST",
            &format!("/usageplans/{other_id}/keys"),
            &body,
            409,
            "ConflictException",
        )
        .await;
    let listed = admin.expect("GET", &plan_keys, Value::Null, 200).await;
    assert_eq!(items(&listed).len(), 1);
    let listed = admin
        .expect("GET", &format!("{plan_keys}?name=mem"), Value::Null, 200)
        .await;
    assert_eq!(items(&listed).len(), 1);
    let listed = admin
        .expect("GET", &format!("{plan_keys}?name=Mem"), Value::Null, 200)
        .await;
    assert!(items(&listed).is_empty());
    let listed = admin
        .expect("GET", "/usageplans/nope/keys", Value::Null, 200)
        .await;
    assert!(items(&listed).is_empty());
    let one = admin
        .expect("GET", &format!("{plan_keys}/{key_id}"), Value::Null, 200)
        .await;
    assert_eq!(one["id"], json!(key_id));
    let plans = admin
        .expect(
            "GET",
            &format!("/usageplans?keyId={key_id}"),
            Value::Null,
            200,
        )
        .await;
    assert_eq!(items(&plans).len(), 1);
    assert_eq!(items(&plans)[0]["id"], json!(plan_id));
    let plans = admin.expect("GET", "/usageplans", Value::Null, 200).await;
    assert_eq!(items(&plans).len(), 2);
    admin
        .expect("DELETE", &format!("{plan_keys}/{key_id}"), Value::Null, 202)
        .await;
    admin
        .error(
            "GET",
            &format!("{plan_keys}/{key_id}"),
            "",
            404,
            "NotFoundException",
        )
        .await;

    // Import: all rows or none, joined to plans.
    let csv = format!(
        "Name,Key,Description,Enabled,UsagePlanIds\n\
         imported-1,imported-value-000000000001,first,true,{plan_id}\n\
         imported-2,imported-value-000000000002,,false,\n"
    );
    let (status, _, imported) = admin
        .call("POST", "/apikeys?mode=import&format=csv", &csv)
        .await;
    assert_eq!(status, 201, "{imported}");
    let ids = imported["ids"].as_array().unwrap();
    assert_eq!(ids.len(), 2);
    let listed = admin.expect("GET", &plan_keys, Value::Null, 200).await;
    assert_eq!(
        items(&listed)[0]["value"],
        json!("imported-value-000000000001")
    );
    let first = admin
        .expect(
            "GET",
            &format!("/apikeys/{}", ids[0].as_str().unwrap()),
            Value::Null,
            200,
        )
        .await;
    assert_eq!(first["enabled"], json!(true));
    assert_eq!(first["description"], json!("first"));
    let keys_before = items(&admin.expect("GET", "/apikeys", Value::Null, 200).await).len();
    let duplicate = "key\nimported-value-000000000003\nimported-value-000000000001\n";
    let (status, error_type, _) = admin
        .call("POST", "/apikeys?mode=import&format=csv", duplicate)
        .await;
    assert_eq!(
        (status, error_type.as_deref()),
        (409, Some("ConflictException"))
    );
    let keys_after = items(&admin.expect("GET", "/apikeys", Value::Null, 200).await).len();
    assert_eq!(
        keys_before, keys_after,
        "a refused import imported something"
    );
    let warned = "key,colour\nimported-value-000000000004,red\n";
    let (status, error_type, _) = admin
        .call(
            "POST",
            "/apikeys?mode=import&format=csv&failonwarnings=true",
            warned,
        )
        .await;
    assert_eq!(
        (status, error_type.as_deref()),
        (400, Some("BadRequestException"))
    );
    let (status, _, answer) = admin
        .call("POST", "/apikeys?mode=import&format=csv", warned)
        .await;
    assert_eq!(status, 201);
    assert_eq!(answer["warnings"].as_array().unwrap().len(), 1);
    let (status, error_type, _) = admin.call("POST", "/apikeys?mode=import", warned).await;
    assert_eq!(
        (status, error_type.as_deref()),
        (400, Some("ValidationException"))
    );

    // Deleting a key drops it from its plans; deleting a plan.
    admin
        .expect(
            "DELETE",
            &format!("/apikeys/{}", ids[0].as_str().unwrap()),
            Value::Null,
            202,
        )
        .await;
    let listed = admin.expect("GET", &plan_keys, Value::Null, 200).await;
    assert!(items(&listed).is_empty());
    admin
        .expect(
            "DELETE",
            &format!("/usageplans/{plan_id}"),
            Value::Null,
            202,
        )
        .await;
    admin
        .error(
            "DELETE",
            &format!("/usageplans/{plan_id}"),
            "",
            404,
            "NotFoundException",
        )
        .await;
}

#[tokio::test]
async fn account_throttle_and_role() {
    let admin = Admin::start().await;
    let account = admin.expect("GET", "/account", Value::Null, 200).await;
    assert_eq!(
        account,
        json!({"features": ["UsagePlans"], "apiKeyVersion": "4"}),
        "no account throttle until an operator sets one (a deviation from AWS)"
    );
    let updated = admin
        .expect(
            "PATCH",
            "/account",
            json!({"patchOperations": [
                {"op": "replace", "path": "/throttle/rateLimit", "value": "100"},
                {"op": "replace", "path": "/throttle/burstLimit", "value": "50"},
                {"op": "replace", "path": "/cloudwatchRoleArn", "value": "arn:aws:iam::123456789012:role/logs"}
            ]}),
            200,
        )
        .await;
    assert_eq!(
        updated["throttleSettings"],
        json!({"burstLimit": 50, "rateLimit": 100.0})
    );
    assert_eq!(
        updated["cloudwatchRoleArn"],
        json!("arn:aws:iam::123456789012:role/logs")
    );
    let again = admin.expect("GET", "/account", Value::Null, 200).await;
    assert_eq!(again, updated);
    let body = json!({"patchOperations": [{"op": "replace", "path": "/throttle/burstLimit", "value": "-1"}]});
    admin
        .error(
            "PATCH",
            "/account",
            &body.to_string(),
            400,
            "BadRequestException",
        )
        .await;
    let body = json!({"patchOperations": [{"op": "replace", "path": "/features", "value": "x"}]});
    admin
        .error(
            "PATCH",
            "/account",
            &body.to_string(),
            400,
            "BadRequestException",
        )
        .await;
}

#[tokio::test]
async fn malformed_bodies_get_aws_errors_never_500s() {
    let admin = Admin::start().await;
    let key = admin.expect("POST", "/apikeys", json!({}), 201).await;
    let key_id = key["id"].as_str().unwrap();
    let plan = admin
        .expect("POST", "/usageplans", json!({"name": "p"}), 201)
        .await;
    let plan_id = plan["id"].as_str().unwrap();
    let cases = [
        ("POST", "/apikeys".to_string()),
        ("PATCH", format!("/apikeys/{key_id}")),
        ("POST", "/usageplans".to_string()),
        ("PATCH", format!("/usageplans/{plan_id}")),
        ("POST", format!("/usageplans/{plan_id}/keys")),
        ("PATCH", "/account".to_string()),
    ];
    for (method, path) in &cases {
        for body in [
            "{not json",
            r#"{"name": 5, "patchOperations": 5, "keyId": 5}"#,
        ] {
            let (status, error_type, json) = admin.call(method, path, body).await;
            assert_eq!(status, 400, "{method} {path} {body}: {json}");
            assert!(error_type.is_some(), "{method} {path} {body}");
            assert!(
                json["message"].is_string(),
                "{method} {path} {body}: {json}"
            );
        }
    }
    // A CSV import whose only key is too short.
    let (status, error_type, _) = admin
        .call("POST", "/apikeys?mode=import&format=csv", "key\n\u{0}")
        .await;
    assert_eq!(status, 400);
    assert_eq!(error_type.as_deref(), Some("BadRequestException"));
}
