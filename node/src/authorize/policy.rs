//! IAM policy documents as API Gateway evaluates them: the policies Lambda authorizers return,
//! the RestApi resource policy and IAM users' `execute-api:Invoke` policies.
//!
//! Documents are parsed once (when a resource policy compiles, when an authorizer's answer is
//! cached, when a user's policy is replicated) into patterns that match without allocating, so
//! evaluating a cached policy on the request path costs a few string walks. Evaluation follows
//! IAM: an explicit `Deny` wins over any `Allow`; without a matching `Allow` nothing is allowed.
//! Anything the evaluator cannot honour exactly (an unknown condition operator, an element of
//! the wrong type) refuses the whole document at parse time rather than being ignored, since
//! ignoring a condition would widen an `Allow` or narrow a `Deny`.

use std::net::IpAddr;

use serde_json::Value;

/// Bounds on what a document may hold; a function or an operator that exceeds them gets a
/// parse error, not a slow request path.
const MAX_STATEMENTS: usize = 512;
const MAX_VALUES_PER_ELEMENT: usize = 1024;
const MAX_PATTERN_BYTES: usize = 2048;

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

fn error(message: impl Into<String>) -> PolicyError {
    PolicyError(message.into())
}

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    statements: Vec<Statement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq)]
struct Statement {
    effect: Effect,
    /// `None`: the element is absent (identity policies, authorizer policies), so the statement
    /// applies to whoever the policy belongs to.
    principal: Option<Principals>,
    actions: Matcher,
    resources: Matcher,
    conditions: Vec<Condition>,
}

/// `Action` or `NotAction` (likewise `Resource`/`NotResource`, `Principal`/`NotPrincipal`).
#[derive(Debug, Clone, PartialEq)]
struct Matcher {
    patterns: Vec<Pattern>,
    negated: bool,
    case_insensitive: bool,
}

impl Matcher {
    fn matches(&self, value: &str) -> bool {
        let any = self
            .patterns
            .iter()
            .any(|pattern| pattern.matches(value, self.case_insensitive));
        any != self.negated
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Principals {
    /// `"*"` or `{"AWS": "*"}`: everyone, anonymous callers included.
    everyone: bool,
    /// Account ids (from `123456789012` or `arn:aws:iam::123456789012:root`).
    accounts: Vec<String>,
    /// Exact or wildcard principal ARNs.
    arns: Vec<Pattern>,
    negated: bool,
}

impl Principals {
    fn matches(&self, principal: &Principal<'_>) -> bool {
        let hit = self.everyone
            || match principal {
                Principal::Anonymous => false,
                Principal::Iam { arn, account } => {
                    self.accounts.iter().any(|id| id == account)
                        || self.arns.iter().any(|pattern| pattern.matches(arn, false))
                }
            };
        hit != self.negated
    }
}

/// Who is asking. Lambda authorizers and anonymous callers are `Anonymous`; IAM callers carry
/// their ARN and account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal<'a> {
    Anonymous,
    Iam { arn: &'a str, account: &'a str },
}

/// One request as the evaluator sees it.
#[derive(Debug, Clone, Copy)]
pub struct PolicyRequest<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    pub principal: Principal<'a>,
    /// `aws:SourceIp`.
    pub source_ip: Option<IpAddr>,
    /// Other condition keys (`aws:username`, `aws:Referer`, `aws:SourceVpce`...), names matched
    /// case-insensitively as IAM does.
    pub context: &'a [(&'a str, &'a str)],
}

impl<'a> PolicyRequest<'a> {
    fn value(&self, key: &str) -> Option<&'a str> {
        self.context
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| *value)
    }
}

/// The outcome of evaluating one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evaluation {
    /// A statement denies the request explicitly.
    Deny,
    /// A statement allows it and none denies it.
    Allow,
    /// No statement applies (an implicit deny, unless another policy allows).
    NotApplicable,
}

#[derive(Debug, Clone, PartialEq)]
enum ConditionTest {
    /// `StringEquals`, `StringEqualsIgnoreCase`, `StringLike` and their negations.
    String {
        patterns: Vec<Pattern>,
        wildcards: bool,
        case_insensitive: bool,
    },
    Ip(Vec<Cidr>),
    Bool(bool),
    Null(bool),
}

#[derive(Debug, Clone, PartialEq)]
struct Condition {
    key: String,
    test: ConditionTest,
    negated: bool,
    if_exists: bool,
}

impl Condition {
    fn holds(&self, request: &PolicyRequest<'_>) -> bool {
        if let ConditionTest::Null(expect_absent) = self.test {
            let present = if self.key.eq_ignore_ascii_case("aws:SourceIp") {
                request.source_ip.is_some()
            } else {
                request.value(&self.key).is_some()
            };
            return present != expect_absent;
        }
        let matched = if self.key.eq_ignore_ascii_case("aws:SourceIp") {
            match (&self.test, request.source_ip) {
                (ConditionTest::Ip(ranges), Some(ip)) => {
                    Some(ranges.iter().any(|range| range.contains(ip)))
                }
                (ConditionTest::String { .. }, Some(ip)) => {
                    Some(self.string_matches(&ip.to_string()))
                }
                (_, Some(_)) => Some(false),
                (_, None) => None,
            }
        } else {
            match (&self.test, request.value(&self.key)) {
                (_, None) => None,
                (ConditionTest::Ip(ranges), Some(value)) => Some(
                    value
                        .parse::<IpAddr>()
                        .is_ok_and(|ip| ranges.iter().any(|range| range.contains(ip))),
                ),
                (ConditionTest::Bool(expected), Some(value)) => {
                    Some(value.eq_ignore_ascii_case(if *expected { "true" } else { "false" }))
                }
                (ConditionTest::String { .. }, Some(value)) => Some(self.string_matches(value)),
                (ConditionTest::Null(_), Some(_)) => Some(false),
            }
        };
        match matched {
            Some(matched) => matched != self.negated,
            // IAM: a missing key makes a condition false, except for `...IfExists` operators
            // and negated operators, which hold.
            None => self.if_exists || self.negated,
        }
    }

    fn string_matches(&self, value: &str) -> bool {
        match &self.test {
            ConditionTest::String {
                patterns,
                wildcards,
                case_insensitive,
            } => patterns.iter().any(|pattern| {
                if *wildcards {
                    pattern.matches(value, *case_insensitive)
                } else if *case_insensitive {
                    pattern.text.eq_ignore_ascii_case(value)
                } else {
                    pattern.text == value
                }
            }),
            _ => false,
        }
    }
}

/// An IPv4 or IPv6 range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(text: &str) -> Option<Cidr> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let network: IpAddr = address.trim().parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { network, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(ip) & mask
            }
            (IpAddr::V6(_), IpAddr::V4(ip)) => self.contains(IpAddr::V6(ip.to_ipv6_mapped())),
            (IpAddr::V4(_), IpAddr::V6(ip)) => ip
                .to_ipv4_mapped()
                .is_some_and(|ip| self.contains(IpAddr::V4(ip))),
        }
    }
}

/// A string with IAM wildcards: `*` any run of characters (slashes included), `?` any one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
}

impl Pattern {
    pub fn new(text: &str) -> Pattern {
        Pattern {
            text: text.to_string(),
        }
    }

    /// Iterative wildcard match with single-star backtracking: O(len(text) × len(pattern))
    /// at worst, no allocation, no recursion.
    pub fn matches(&self, value: &str, case_insensitive: bool) -> bool {
        let pattern = self.text.as_bytes();
        let value = value.as_bytes();
        let same = |a: u8, b: u8| {
            if case_insensitive {
                a.eq_ignore_ascii_case(&b)
            } else {
                a == b
            }
        };
        let (mut p, mut v) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while v < value.len() {
            if p < pattern.len() && pattern[p] == b'*' {
                star = Some((p, v));
                p += 1;
            } else if p < pattern.len() && (pattern[p] == b'?' || same(pattern[p], value[v])) {
                // `?` matches one character, not one byte: skip a UTF-8 sequence whole.
                if pattern[p] == b'?' {
                    v += utf8_len(value[v]);
                } else {
                    v += 1;
                }
                p += 1;
            } else if let Some((star_p, star_v)) = star {
                let next = star_v + utf8_len(value[star_v]);
                star = Some((star_p, next));
                p = star_p + 1;
                v = next;
            } else {
                return false;
            }
        }
        pattern[p.min(pattern.len())..].iter().all(|&b| b == b'*') && v == value.len()
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 1,
    }
}

impl Policy {
    /// Parses a JSON policy document (the RestApi `policy` text, a user policy).
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|cause| error(format!("the policy is not valid JSON: {cause}")))?;
        Policy::from_value(&value)
    }

    /// Parses a policy already decoded (an authorizer's `policyDocument`). Keys are matched
    /// case-insensitively, as API Gateway accepts `statement`/`effect` from functions.
    pub fn from_value(value: &Value) -> Result<Policy, PolicyError> {
        let Value::Object(document) = value else {
            return Err(error("the policy document must be a JSON object"));
        };
        if let Some(version) = get(document, "Version")
            && !matches!(version.as_str(), Some("2012-10-17" | "2008-10-17"))
        {
            return Err(error(
                "the policy Version must be \"2012-10-17\" or \"2008-10-17\"",
            ));
        }
        let statements = match get(document, "Statement") {
            Some(Value::Array(items)) => items.iter().collect::<Vec<_>>(),
            Some(item @ Value::Object(_)) => vec![item],
            Some(_) => return Err(error("Statement must be an object or a list of objects")),
            None => return Err(error("the policy has no Statement")),
        };
        if statements.len() > MAX_STATEMENTS {
            return Err(error(format!(
                "the policy has {} statements; at most {MAX_STATEMENTS} are accepted",
                statements.len()
            )));
        }
        let statements = statements
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                parse_statement(item).map_err(|e| error(format!("Statement {index}: {}", e.0)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Policy { statements })
    }

    /// IAM's evaluation of this one document: explicit deny, else allow, else nothing.
    pub fn evaluate(&self, request: &PolicyRequest<'_>) -> Evaluation {
        let mut allowed = false;
        for statement in &self.statements {
            let applies = statement
                .principal
                .as_ref()
                .is_none_or(|principals| principals.matches(&request.principal))
                && statement.actions.matches(request.action)
                && statement.resources.matches(request.resource)
                && statement
                    .conditions
                    .iter()
                    .all(|condition| condition.holds(request));
            if applies {
                match statement.effect {
                    Effect::Deny => return Evaluation::Deny,
                    Effect::Allow => allowed = true,
                }
            }
        }
        if allowed {
            Evaluation::Allow
        } else {
            Evaluation::NotApplicable
        }
    }

    /// Expands the resource policy shorthand `execute-api:/stage/VERB/path` to the API's full
    /// ARN (`arn:aws:execute-api:{region}:{account}:{apiId}/stage/VERB/path`), as API Gateway
    /// does when it stores a resource policy.
    pub fn for_api(mut self, region: &str, account: &str, api_id: &str) -> Policy {
        let prefix = format!("arn:aws:execute-api:{region}:{account}:{api_id}/");
        for statement in &mut self.statements {
            for pattern in &mut statement.resources.patterns {
                if let Some(rest) = pattern.text.strip_prefix("execute-api:/") {
                    pattern.text = format!("{prefix}{rest}");
                }
            }
        }
        self
    }

    /// About how many bytes the parsed policy holds (patterns, conditions, per-item overhead):
    /// what a cache of policies weighs it at.
    pub fn weight(&self) -> usize {
        const ITEM: usize = 48;
        let patterns = |patterns: &[Pattern]| {
            patterns
                .iter()
                .map(|pattern| pattern.text.len() + ITEM)
                .sum::<usize>()
        };
        self.statements
            .iter()
            .map(|statement| {
                let principals = statement.principal.as_ref().map_or(0, |principals| {
                    patterns(&principals.arns)
                        + principals
                            .accounts
                            .iter()
                            .map(|account| account.len() + ITEM)
                            .sum::<usize>()
                });
                let conditions = statement
                    .conditions
                    .iter()
                    .map(|condition| {
                        condition.key.len()
                            + ITEM
                            + match &condition.test {
                                ConditionTest::String { patterns: list, .. } => patterns(list),
                                ConditionTest::Ip(ranges) => ranges.len() * ITEM,
                                _ => 0,
                            }
                    })
                    .sum::<usize>();
                ITEM * 4
                    + patterns(&statement.actions.patterns)
                    + patterns(&statement.resources.patterns)
                    + principals
                    + conditions
            })
            .sum()
    }
}

fn get<'v>(map: &'v serde_json::Map<String, Value>, key: &str) -> Option<&'v Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| value)
    })
}

fn strings(value: &Value, element: &str) -> Result<Vec<String>, PolicyError> {
    let items: Vec<&Value> = match value {
        Value::String(_) => vec![value],
        Value::Array(items) => items.iter().collect(),
        _ => {
            return Err(error(format!(
                "{element} must be a string or a list of strings"
            )));
        }
    };
    if items.len() > MAX_VALUES_PER_ELEMENT {
        return Err(error(format!(
            "{element} has {} values; at most {MAX_VALUES_PER_ELEMENT} are accepted",
            items.len()
        )));
    }
    items
        .into_iter()
        .map(|item| match item {
            Value::String(text) if text.len() <= MAX_PATTERN_BYTES => Ok(text.clone()),
            Value::String(_) => Err(error(format!(
                "{element} has a value over {MAX_PATTERN_BYTES} bytes"
            ))),
            // Condition values may be numbers or booleans; IAM compares them as strings.
            Value::Bool(flag) => Ok(flag.to_string()),
            Value::Number(number) => Ok(number.to_string()),
            _ => Err(error(format!("{element} must hold strings"))),
        })
        .collect()
}

fn matcher(
    statement: &serde_json::Map<String, Value>,
    positive: &str,
    negative: &str,
    case_insensitive: bool,
) -> Result<Matcher, PolicyError> {
    let (value, negated, name) = match (get(statement, positive), get(statement, negative)) {
        (Some(_), Some(_)) => {
            return Err(error(format!(
                "a statement may have {positive} or {negative}, not both"
            )));
        }
        (Some(value), None) => (value, false, positive),
        (None, Some(value)) => (value, true, negative),
        (None, None) => return Err(error(format!("the statement has no {positive}"))),
    };
    let patterns = strings(value, name)?
        .iter()
        .map(|text| Pattern::new(text))
        .collect();
    Ok(Matcher {
        patterns,
        negated,
        case_insensitive,
    })
}

fn parse_statement(value: &Value) -> Result<Statement, PolicyError> {
    let Value::Object(statement) = value else {
        return Err(error("a statement must be a JSON object"));
    };
    let effect = match get(statement, "Effect").and_then(Value::as_str) {
        Some(text) if text.eq_ignore_ascii_case("Allow") => Effect::Allow,
        Some(text) if text.eq_ignore_ascii_case("Deny") => Effect::Deny,
        _ => return Err(error("Effect must be \"Allow\" or \"Deny\"")),
    };
    let principal = match (get(statement, "Principal"), get(statement, "NotPrincipal")) {
        (Some(_), Some(_)) => return Err(error("a statement may have Principal or NotPrincipal")),
        (Some(value), None) => Some(parse_principals(value, false)?),
        (None, Some(value)) => Some(parse_principals(value, true)?),
        (None, None) => None,
    };
    Ok(Statement {
        effect,
        principal,
        // Actions are case-insensitive in IAM; resources are not.
        actions: matcher(statement, "Action", "NotAction", true)?,
        resources: matcher(statement, "Resource", "NotResource", false)?,
        conditions: match get(statement, "Condition") {
            None => Vec::new(),
            Some(value) => parse_conditions(value)?,
        },
    })
}

fn parse_principals(value: &Value, negated: bool) -> Result<Principals, PolicyError> {
    let mut principals = Principals {
        everyone: false,
        accounts: Vec::new(),
        arns: Vec::new(),
        negated,
    };
    match value {
        Value::String(text) if text == "*" => principals.everyone = true,
        Value::Object(map) => {
            for (kind, values) in map {
                if kind != "AWS" {
                    // Service and federated principals never call execute-api:Invoke through a
                    // gateway; they match nobody.
                    strings(values, "Principal")?;
                    continue;
                }
                for text in strings(values, "Principal")? {
                    if text == "*" {
                        principals.everyone = true;
                    } else if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
                        principals.accounts.push(text);
                    } else if let Some(account) = text
                        .strip_prefix("arn:aws:iam::")
                        .and_then(|rest| rest.strip_suffix(":root"))
                    {
                        principals.accounts.push(account.to_string());
                    } else if text.starts_with("arn:") {
                        principals.arns.push(Pattern::new(&text));
                    } else {
                        return Err(error(format!(
                            "Invalid principal in policy: \"AWS\":\"{text}\""
                        )));
                    }
                }
            }
        }
        _ => {
            return Err(error(
                "Principal must be \"*\" or an object such as {\"AWS\": ...}",
            ));
        }
    }
    Ok(principals)
}

fn parse_conditions(value: &Value) -> Result<Vec<Condition>, PolicyError> {
    let Value::Object(operators) = value else {
        return Err(error("Condition must be an object"));
    };
    let mut conditions = Vec::new();
    for (operator, keys) in operators {
        let (base, if_exists) = match operator.strip_suffix("IfExists") {
            Some(base) => (base, true),
            None => (operator.as_str(), false),
        };
        let Value::Object(keys) = keys else {
            return Err(error(format!(
                "Condition {operator} must map keys to values"
            )));
        };
        for (key, values) in keys {
            let values = strings(values, "a condition value")?;
            let patterns = || values.iter().map(|text| Pattern::new(text)).collect();
            let (test, negated) = match base {
                "StringEquals" | "StringNotEquals" | "ArnEquals" | "ArnNotEquals" => (
                    ConditionTest::String {
                        patterns: patterns(),
                        wildcards: false,
                        case_insensitive: false,
                    },
                    base.contains("Not"),
                ),
                "StringEqualsIgnoreCase" | "StringNotEqualsIgnoreCase" => (
                    ConditionTest::String {
                        patterns: patterns(),
                        wildcards: false,
                        case_insensitive: true,
                    },
                    base.contains("Not"),
                ),
                "StringLike" | "StringNotLike" | "ArnLike" | "ArnNotLike" => (
                    ConditionTest::String {
                        patterns: patterns(),
                        wildcards: true,
                        case_insensitive: false,
                    },
                    base.contains("Not"),
                ),
                "IpAddress" | "NotIpAddress" => {
                    let ranges = values
                        .iter()
                        .map(|text| {
                            Cidr::parse(text).ok_or_else(|| {
                                error(format!(
                                    "{operator}: {text} is not an IP address or CIDR range"
                                ))
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    (ConditionTest::Ip(ranges), base == "NotIpAddress")
                }
                "Bool" => match values.as_slice() {
                    [one] if one.eq_ignore_ascii_case("true") => (ConditionTest::Bool(true), false),
                    [one] if one.eq_ignore_ascii_case("false") => {
                        (ConditionTest::Bool(false), false)
                    }
                    _ => return Err(error("Bool takes one value, true or false")),
                },
                "Null" if !if_exists => match values.as_slice() {
                    [one] if one.eq_ignore_ascii_case("true") => (ConditionTest::Null(true), false),
                    [one] if one.eq_ignore_ascii_case("false") => {
                        (ConditionTest::Null(false), false)
                    }
                    _ => return Err(error("Null takes one value, true or false")),
                },
                _ => {
                    return Err(error(format!(
                        "the condition operator {operator} is not supported"
                    )));
                }
            };
            conditions.push(Condition {
                key: key.clone(),
                test,
                negated,
                if_exists,
            });
        }
    }
    Ok(conditions)
}

/// The ARN of a method as policies name it:
/// `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{VERB}/{path without leading slash}`.
pub fn method_arn(
    region: &str,
    account: &str,
    api_id: &str,
    stage: &str,
    verb: &str,
    path: &str,
) -> String {
    let path = path.strip_prefix('/').unwrap_or(path);
    format!("arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/{verb}/{path}")
}

#[cfg(test)]
mod tests;
