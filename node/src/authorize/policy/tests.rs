use super::*;
use proptest::prelude::*;

fn request<'a>(resource: &'a str) -> PolicyRequest<'a> {
    PolicyRequest {
        action: "execute-api:Invoke",
        resource,
        principal: Principal::Anonymous,
        source_ip: None,
        context: &[],
    }
}

const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/pets/1";

#[test]
fn an_authorizer_policy_allows_its_method_and_nothing_else() {
    let policy = Policy::from_value(&serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Action": "execute-api:Invoke",
            "Effect": "Allow",
            "Resource": "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/pets/*"
        }]
    }))
    .unwrap();
    assert_eq!(policy.evaluate(&request(ARN)), Evaluation::Allow);
    assert_eq!(
        policy.evaluate(&request(
            "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/POST/pets/1"
        )),
        Evaluation::NotApplicable
    );
}

#[test]
fn an_explicit_deny_wins_whatever_the_order() {
    for statements in [
        serde_json::json!([
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "execute-api:*", "Resource": ARN}
        ]),
        serde_json::json!([
            {"Effect": "Deny", "Action": "execute-api:*", "Resource": ARN},
            {"Effect": "Allow", "Action": "*", "Resource": "*"}
        ]),
    ] {
        let policy = Policy::from_value(&serde_json::json!({"Statement": statements})).unwrap();
        assert_eq!(policy.evaluate(&request(ARN)), Evaluation::Deny);
    }
}

#[test]
fn functions_may_spell_keys_in_lower_case_and_actions_in_any_case() {
    let policy = Policy::from_value(&serde_json::json!({
        "version": "2012-10-17",
        "statement": {"action": "EXECUTE-API:invoke", "effect": "allow", "resource": [ARN]}
    }))
    .unwrap();
    assert_eq!(policy.evaluate(&request(ARN)), Evaluation::Allow);
}

#[test]
fn not_resource_and_not_action_invert_the_match() {
    let policy = Policy::from_value(&serde_json::json!({
        "Statement": [{"Effect": "Allow", "Action": "*", "NotResource": "*/DELETE/*"}]
    }))
    .unwrap();
    assert_eq!(policy.evaluate(&request(ARN)), Evaluation::Allow);
    assert_eq!(
        policy.evaluate(&request("arn:aws:execute-api:r:1:a/s/DELETE/x")),
        Evaluation::NotApplicable
    );
    let policy = Policy::from_value(&serde_json::json!({
        "Statement": [{"Effect": "Deny", "NotAction": "execute-api:Invoke", "Resource": "*"}]
    }))
    .unwrap();
    assert_eq!(policy.evaluate(&request(ARN)), Evaluation::NotApplicable);
}

#[test]
fn resource_policy_principals_and_source_ip() {
    let policy = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*"},
            {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"execute-api:Invoke","Resource":"*"},
            {"Effect":"Deny","Principal":"*","Action":"execute-api:Invoke","Resource":"*",
             "Condition":{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]}}}
        ]}"#,
    )
    .unwrap()
    .for_api("us-east-1", "123456789012", "abc123");
    let from = |ip: &str| PolicyRequest {
        source_ip: Some(ip.parse().unwrap()),
        ..request(ARN)
    };
    assert_eq!(policy.evaluate(&from("10.1.2.3")), Evaluation::Allow);
    assert_eq!(policy.evaluate(&from("2001:db8::1")), Evaluation::Allow);
    assert_eq!(policy.evaluate(&from("192.168.0.1")), Evaluation::Deny);
    // A missing key makes a negated condition hold: no address, denied.
    assert_eq!(policy.evaluate(&request(ARN)), Evaluation::Deny);

    let only_account = Policy::parse(
        r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":["123456789012"]},"Action":"execute-api:Invoke","Resource":"*"}}"#,
    )
    .unwrap();
    assert_eq!(
        only_account.evaluate(&request(ARN)),
        Evaluation::NotApplicable
    );
    let iam = PolicyRequest {
        principal: Principal::Iam {
            arn: "arn:aws:iam::123456789012:user/alice",
            account: "123456789012",
        },
        ..request(ARN)
    };
    assert_eq!(only_account.evaluate(&iam), Evaluation::Allow);
    let other = PolicyRequest {
        principal: Principal::Iam {
            arn: "arn:aws:iam::999999999999:user/alice",
            account: "999999999999",
        },
        ..request(ARN)
    };
    assert_eq!(only_account.evaluate(&other), Evaluation::NotApplicable);
}

#[test]
fn string_conditions_follow_iam() {
    let policy = Policy::parse(
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{
            "StringLike":{"aws:Referer":["https://*.example.com/*"]},
            "StringEqualsIgnoreCase":{"aws:username":"Alice"}}}}"#,
    )
    .unwrap();
    let with = |context: &'static [(&'static str, &'static str)]| PolicyRequest {
        context,
        ..request(ARN)
    };
    assert_eq!(
        policy.evaluate(&with(&[
            ("aws:referer", "https://www.example.com/a"),
            ("aws:username", "alice")
        ])),
        Evaluation::Allow
    );
    assert_eq!(
        policy.evaluate(&with(&[("aws:Referer", "https://www.example.com/a")])),
        Evaluation::NotApplicable
    );
    let if_exists = Policy::parse(
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{
            "StringEqualsIfExists":{"aws:username":"alice"}}}}"#,
    )
    .unwrap();
    assert_eq!(if_exists.evaluate(&request(ARN)), Evaluation::Allow);
}

#[test]
fn malformed_documents_are_refused_with_a_reason() {
    for (text, expect) in [
        ("not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ("{}", "no Statement"),
        (r#"{"Statement":7}"#, "Statement must be"),
        (
            r#"{"Statement":{"Effect":"Maybe","Action":"*","Resource":"*"}}"#,
            "Effect",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Resource":"*"}}"#,
            "no Action",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Action":"*"}}"#,
            "no Resource",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Action":{"a":1},"Resource":"*"}}"#,
            "Action must be",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2020"}}}}"#,
            "not supported",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"300.1.1.1"}}}}"#,
            "not an IP address",
        ),
        (r#"{"Version":"1999","Statement":[]}"#, "Version"),
        (
            r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"*","Resource":"*"}}"#,
            "Invalid principal",
        ),
    ] {
        let refused = Policy::parse(text).unwrap_err();
        assert!(refused.0.contains(expect), "{text}: {refused}");
    }
    let huge = format!(
        r#"{{"Statement":[{}]}}"#,
        vec![r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#; MAX_STATEMENTS + 1].join(",")
    );
    assert!(Policy::parse(&huge).unwrap_err().0.contains("statements"));
}

#[test]
fn method_arns_have_aws_shape() {
    assert_eq!(
        method_arn(
            "us-east-1",
            "123456789012",
            "abc123",
            "prod",
            "GET",
            "/pets/1"
        ),
        ARN
    );
    assert_eq!(
        method_arn("us-east-1", "1", "a", "s", "GET", "/"),
        "arn:aws:execute-api:us-east-1:1:a/s/GET/"
    );
}

/// The reference: a wildcard pattern as an anchored regex.
fn reference_match(pattern: &str, value: &str, case_insensitive: bool) -> bool {
    let mut regex = String::from(if case_insensitive { "(?is)^" } else { "(?s)^" });
    for c in pattern.chars() {
        match c {
            '*' => regex.push_str(".*"),
            '?' => regex.push('.'),
            c => regex.push_str(&regex::escape(&c.to_string())),
        }
    }
    regex.push('$');
    regex::Regex::new(&regex).unwrap().is_match(value)
}

/// The reference evaluator: statements as plain tuples, IAM's rule written out directly.
fn reference_evaluate(statements: &[(bool, Vec<String>, bool)], resource: &str) -> Evaluation {
    let matching = |(_, patterns, negated): &&(bool, Vec<String>, bool)| {
        patterns
            .iter()
            .any(|pattern| reference_match(pattern, resource, false))
            != *negated
    };
    let applicable: Vec<_> = statements.iter().filter(matching).collect();
    if applicable.iter().any(|(allow, _, _)| !allow) {
        Evaluation::Deny
    } else if applicable.iter().any(|(allow, _, _)| *allow) {
        Evaluation::Allow
    } else {
        Evaluation::NotApplicable
    }
}

fn segment() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "ab", "pets", "GET", "POST", "é", "1"])
        .prop_map(String::from)
}

fn resource() -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 1..5).prop_map(|parts| parts.join("/"))
}

fn pattern() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            segment(),
            Just("*".to_string()),
            Just("?".to_string()),
            Just("/".to_string())
        ],
        0..6,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn wildcards_match_like_the_reference(pattern in pattern(), value in resource(), ci in any::<bool>()) {
        prop_assert_eq!(
            Pattern::new(&pattern).matches(&value, ci),
            reference_match(&pattern, &value, ci),
            "pattern {:?} value {:?}", pattern, value
        );
    }

    #[test]
    fn evaluation_matches_the_reference(
        statements in prop::collection::vec(
            (any::<bool>(), prop::collection::vec(pattern(), 1..3), any::<bool>()),
            0..5,
        ),
        resource in resource(),
    ) {
        let document = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": statements.iter().map(|(allow, patterns, negated)| {
                let mut statement = serde_json::json!({
                    "Effect": if *allow { "Allow" } else { "Deny" },
                    "Action": "execute-api:Invoke",
                });
                let key = if *negated { "NotResource" } else { "Resource" };
                statement[key] = serde_json::json!(patterns);
                statement
            }).collect::<Vec<_>>(),
        });
        let policy = Policy::from_value(&document).unwrap();
        prop_assert_eq!(
            policy.evaluate(&request(&resource)),
            reference_evaluate(&statements, &resource)
        );
    }
}
