use super::*;

fn create_user(name: &str, id: &str) -> IamOp {
    IamOp::CreateUser {
        user_name: name.into(),
        path: "/".into(),
        user_id: id.into(),
        account_id: DEFAULT_ACCOUNT_ID.into(),
        create_date: 7,
    }
}

fn key(id: &str, user: &str) -> IamOp {
    IamOp::CreateAccessKey {
        key: IamAccessKey {
            access_key_id: id.into(),
            user_name: user.into(),
            status: AccessKeyStatus::Active,
            create_date: 8,
            nonce: vec![1; 12],
            sealed_secret: vec![2; 56],
        },
    }
}

fn policy(user: &str, name: &str, document: &str) -> IamOp {
    IamOp::PutUserPolicy {
        user_name: user.into(),
        policy_name: name.into(),
        policy_document: document.into(),
    }
}

const ALLOW: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"*"}]}"#;

fn no_admin(_: &str) -> bool {
    false
}

/// Applies `op` and checks that a refusal leaves the state (revision included) unchanged.
fn run(state: &mut IamState, op: IamOp) -> Result<(), IamErrorCode> {
    let before = state.clone();
    let result = state.apply(&op, &no_admin);
    match &result {
        Ok(()) => assert_eq!(state.revision, before.revision + 1),
        Err(_) => assert_eq!(*state, before, "a refused op changed the state"),
    }
    result.map_err(|error| error.code)
}

#[test]
fn users_are_created_with_their_arn_and_names_are_unique_regardless_of_case() {
    let mut state = IamState::default();
    run(&mut state, create_user("alice", "AIDAAAAAAAAAAAAAAAAA1")).unwrap();
    let alice = state.user("alice").unwrap();
    assert_eq!(alice.arn, "arn:aws:iam::000000000000:user/alice");
    assert_eq!(
        run(&mut state, create_user("Alice", "AIDAAAAAAAAAAAAAAAAA2")),
        Err(IamErrorCode::EntityAlreadyExists)
    );
    let mut op = create_user("bob", "AIDAAAAAAAAAAAAAAAAA3");
    if let IamOp::CreateUser { path, .. } = &mut op {
        *path = "/team/".into();
    }
    run(&mut state, op).unwrap();
    assert_eq!(
        state.user("bob").unwrap().arn,
        "arn:aws:iam::000000000000:user/team/bob"
    );
    for bad_path in ["", "team", "/team", "team/", "/te am/"] {
        let mut op = create_user("carol", "AIDAAAAAAAAAAAAAAAAA4");
        if let IamOp::CreateUser { path, .. } = &mut op {
            *path = bad_path.into();
        }
        assert_eq!(run(&mut state, op), Err(IamErrorCode::InvalidInput));
    }
    for bad_name in ["", "a b", "x/y", &"n".repeat(65)] {
        assert_eq!(
            run(&mut state, create_user(bad_name, "AIDAAAAAAAAAAAAAAAAA5")),
            Err(IamErrorCode::InvalidInput)
        );
    }
}

#[test]
fn two_keys_per_user_and_keys_belong_to_their_user() {
    let mut state = IamState::default();
    assert_eq!(
        run(&mut state, key("AKIA0000000000000001", "alice")),
        Err(IamErrorCode::NoSuchEntity)
    );
    run(&mut state, create_user("alice", "AIDA1")).unwrap();
    run(&mut state, create_user("bob", "AIDA2")).unwrap();
    run(&mut state, key("AKIA0000000000000001", "alice")).unwrap();
    run(&mut state, key("AKIA0000000000000002", "alice")).unwrap();
    assert_eq!(
        run(&mut state, key("AKIA0000000000000003", "alice")),
        Err(IamErrorCode::LimitExceeded)
    );
    // One id names one secret, IAM's or the management API's.
    assert_eq!(
        run(&mut state, key("AKIA0000000000000001", "bob")),
        Err(IamErrorCode::EntityAlreadyExists)
    );
    let before = state.clone();
    assert_eq!(
        state
            .apply(&key("AKIAADMIN00000000000", "bob"), &|id| id
                == "AKIAADMIN00000000000")
            .map_err(|e| e.code),
        Err(IamErrorCode::EntityAlreadyExists)
    );
    assert_eq!(state, before);

    let update = |user: &str, id: &str, status| IamOp::UpdateAccessKey {
        user_name: user.into(),
        access_key_id: id.into(),
        status,
    };
    assert_eq!(
        run(
            &mut state,
            update("bob", "AKIA0000000000000001", AccessKeyStatus::Inactive)
        ),
        Err(IamErrorCode::NoSuchEntity)
    );
    run(
        &mut state,
        update("alice", "AKIA0000000000000001", AccessKeyStatus::Inactive),
    )
    .unwrap();
    assert_eq!(
        state.access_keys["AKIA0000000000000001"].status,
        AccessKeyStatus::Inactive
    );
    let delete = |user: &str, id: &str| IamOp::DeleteAccessKey {
        user_name: user.into(),
        access_key_id: id.into(),
    };
    assert_eq!(
        run(&mut state, delete("bob", "AKIA0000000000000002")),
        Err(IamErrorCode::NoSuchEntity)
    );
    assert_eq!(
        run(&mut state, delete("nobody", "AKIA0000000000000002")),
        Err(IamErrorCode::NoSuchEntity)
    );
    run(&mut state, delete("alice", "AKIA0000000000000002")).unwrap();
    // Room again for a second key.
    run(&mut state, key("AKIA0000000000000003", "alice")).unwrap();
}

#[test]
fn a_user_with_keys_or_policies_cannot_be_deleted() {
    let mut state = IamState::default();
    run(&mut state, create_user("alice", "AIDA1")).unwrap();
    run(&mut state, key("AKIA0000000000000001", "alice")).unwrap();
    run(&mut state, policy("alice", "invoke", ALLOW)).unwrap();
    let delete_user = IamOp::DeleteUser {
        user_name: "alice".into(),
    };
    assert_eq!(
        run(&mut state, delete_user.clone()),
        Err(IamErrorCode::DeleteConflict)
    );
    run(
        &mut state,
        IamOp::DeleteAccessKey {
            user_name: "alice".into(),
            access_key_id: "AKIA0000000000000001".into(),
        },
    )
    .unwrap();
    assert_eq!(
        run(&mut state, delete_user.clone()),
        Err(IamErrorCode::DeleteConflict)
    );
    run(
        &mut state,
        IamOp::DeleteUserPolicy {
            user_name: "alice".into(),
            policy_name: "invoke".into(),
        },
    )
    .unwrap();
    run(&mut state, delete_user.clone()).unwrap();
    assert!(state.users.is_empty());
    assert_eq!(
        run(&mut state, delete_user),
        Err(IamErrorCode::NoSuchEntity)
    );
}

#[test]
fn policies_are_checked_replaced_and_bounded() {
    let mut state = IamState::default();
    assert_eq!(
        run(&mut state, policy("alice", "p", ALLOW)),
        Err(IamErrorCode::NoSuchEntity)
    );
    run(&mut state, create_user("alice", "AIDA1")).unwrap();
    for malformed in [
        "",
        "{",
        "[]",
        "{}",
        r#"{"Statement":[]}"#,
        r#"{"Statement":"x"}"#,
    ] {
        assert_eq!(
            run(&mut state, policy("alice", "p", malformed)),
            Err(IamErrorCode::MalformedPolicyDocument),
            "{malformed}"
        );
    }
    assert_eq!(
        run(&mut state, policy("alice", "bad name", ALLOW)),
        Err(IamErrorCode::InvalidInput)
    );
    run(&mut state, policy("alice", "p", ALLOW)).unwrap();
    let deny = ALLOW.replace("Allow", "Deny");
    run(&mut state, policy("alice", "p", &deny)).unwrap();
    assert_eq!(state.user("alice").unwrap().policies["p"], deny);
    // 2,048 characters for all of a user's inline policies, whitespace not counted.
    let padded = format!(
        r#"{{"Statement":[{{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"{}"}}]}}"#,
        "a".repeat(1900)
    );
    assert_eq!(
        run(&mut state, policy("alice", "q", &padded)),
        Err(IamErrorCode::LimitExceeded)
    );
    let spaced = format!("{}{ALLOW}", " ".repeat(4000));
    run(&mut state, policy("alice", "q", &spaced)).unwrap();
    assert_eq!(
        run(
            &mut state,
            IamOp::DeleteUserPolicy {
                user_name: "alice".into(),
                policy_name: "nope".into(),
            }
        ),
        Err(IamErrorCode::NoSuchEntity)
    );
}

#[test]
fn secrets_never_show_in_debug_output() {
    let IamOp::CreateAccessKey { key } = key("AKIA0000000000000001", "alice") else {
        unreachable!()
    };
    let text = format!("{key:?}");
    assert!(!text.contains("[2, 2"), "{text}");
    let derived = DerivedSigningKey {
        access_key_id: "AKIA".into(),
        date: "20260101".into(),
        region: "us-east-1".into(),
        key: vec![0xab; 32],
    };
    let text = format!("{derived:?}");
    assert!(!text.contains("171"), "{text}");
}
