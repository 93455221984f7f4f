//! JSON bodies of the management API's user and client changes
//! (`POST /users`, `PATCH /users/{id}`, `POST /clients`,
//! `PATCH /clients/{id}`), and the checks the API runs on their fields.
//!
//! The body types (`NewUser`, `UserPatch`, `NewClientBody`, `ClientPatch`)
//! and `parse_body` are private to `portcullis::management::api`, so this
//! parses a `serde_json::Value`, reads the same fields from it, and runs
//! every public check the API applies to them: `validate_username`,
//! `check_password_strength`, `ClientType::parse`, `parse_grants` (as the
//! API calls it, on the names joined with `,`), `validate_scopes`, the
//! serde forms of `GrantType` and `ClientType`, and `ClientUpdate::apply`.
//! Checks, besides "never panics": what these accept is what their
//! contracts say.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::accounts::check_password_strength;
use portcullis::store::{
    parse_grants, validate_scopes, validate_username, Client, ClientType, ClientUpdate, GrantType,
};
use serde_json::Value;

fn strings(value: &Value) -> Option<Vec<String>> {
    serde_json::from_value(value.clone()).ok()
}

fn client() -> Client {
    Client {
        client_id: "c1".into(),
        name: "app".into(),
        client_type: ClientType::Confidential,
        secret_hash: None,
        allowed_grants: GrantType::defaults(ClientType::Confidential),
        allowed_scopes: vec!["read".into()],
        disabled: false,
        created: 0,
        can_introspect: false,
        generation: 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Some(fields) = body.as_object() else {
        return;
    };

    if let Some(username) = fields.get("username").and_then(Value::as_str) {
        if validate_username(username).is_ok() {
            assert!(
                !username.is_empty() && username.len() <= 128,
                "{username:?}"
            );
            assert!(
                !username
                    .chars()
                    .any(|c| c.is_control() || c.is_whitespace()),
                "{username:?}"
            );
        }
    }
    if let Some(password) = fields.get("password").and_then(Value::as_str) {
        for min_length in [0, 1, 8, 72, 73] {
            if check_password_strength(password, min_length).is_ok() {
                assert!(!password.is_empty() && password.len() <= 72, "{password:?}");
                assert!(password.chars().count() >= min_length);
            }
        }
    }

    // The API reads `type` as a string (default `public`) and parses it.
    let client_type = match fields.get("type") {
        Some(Value::String(text)) => {
            let parsed = ClientType::parse(text);
            let via_serde = serde_json::from_value::<ClientType>(Value::String(text.clone())).ok();
            assert_eq!(
                parsed, via_serde,
                "ClientType::parse and serde disagree on {text:?}"
            );
            if let Some(parsed) = parsed {
                assert_eq!(parsed.as_str(), text);
            }
            parsed
        }
        Some(other) => {
            let _ = serde_json::from_value::<ClientType>(other.clone());
            None
        }
        None => Some(ClientType::Public),
    };

    let mut grants = None;
    if let Some(value) = fields.get("allowed_grants") {
        if let Some(names) = strings(value) {
            if let Ok(parsed) = parse_grants(&names.join(",")) {
                assert!(parsed.windows(2).all(|w| w[0] < w[1]), "{parsed:?}");
                for grant in &parsed {
                    assert_eq!(GrantType::parse(grant.as_str()), Some(*grant));
                }
                grants = Some(parsed);
            }
        }
        let _ = serde_json::from_value::<Vec<GrantType>>(value.clone());
    }
    if let Some(client_type) = client_type {
        let grants = grants
            .clone()
            .unwrap_or_else(|| GrantType::defaults(client_type));
        let _ = grants.contains(&GrantType::ClientCredentials);
    }

    let mut scopes = None;
    if let Some(names) = fields.get("allowed_scopes").and_then(strings) {
        if validate_scopes(&names).is_ok() {
            for scope in &names {
                assert!(
                    !scope.is_empty()
                        && scope
                            .bytes()
                            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'),
                    "{scope:?}"
                );
            }
            scopes = Some(names);
        }
    }

    let update = ClientUpdate {
        name: fields
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string),
        allowed_grants: grants,
        allowed_scopes: scopes,
        disabled: fields.get("disabled").and_then(Value::as_bool),
        can_introspect: fields.get("can_introspect").and_then(Value::as_bool),
    };
    let mut record = client();
    update.clone().apply(&mut record);
    if let Some(name) = &update.name {
        assert_eq!(&record.name, name);
    }
    if let Some(disabled) = update.disabled {
        assert_eq!(record.disabled, disabled);
    }
    let _ = serde_json::to_vec(&record);
});
