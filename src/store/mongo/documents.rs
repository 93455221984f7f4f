//! Records to MongoDB documents and back, in Flask-Sentinel's field names.
//!
//! Reading is lenient on purpose: a field Flask-Sentinel never wrote takes
//! the value that matches its behaviour, and a document that cannot be
//! made sense of is skipped (`None`) rather than failing a whole listing.

use mongodb::bson::{doc, Bson, DateTime, Document};

use crate::store::{Client, ClientType, GrantType, Session, StoreError, User};

pub(super) fn user_from_document(document: &Document) -> Option<User> {
    let id = match document.get("_id")? {
        Bson::ObjectId(oid) => oid.to_hex(),
        Bson::String(id) => id.clone(),
        _ => return None,
    };
    let created = match document.get("created") {
        Some(Bson::DateTime(at)) => (at.timestamp_millis().max(0) / 1000) as u64,
        _ => 0,
    };
    Some(User {
        id,
        username: document.get_str("username").ok()?.to_string(),
        // Flask-Sentinel on Python 3 may have stored the hash as bytes.
        password_hash: match document.get("hashpw")? {
            Bson::String(hash) => hash.clone(),
            Bson::Binary(binary) => String::from_utf8(binary.bytes.clone()).ok()?,
            _ => return None,
        },
        created,
        disabled: document.get_bool("disabled").unwrap_or(false),
        generation: generation_of(document),
    })
}

/// Our own field beside Flask-Sentinel's: absent (0) until the first
/// revoking change, which raises it with `$inc`.
pub(super) const GENERATION: &str = "portcullis_generation";

fn generation_of(document: &Document) -> u64 {
    match document.get(GENERATION) {
        Some(Bson::Int64(n)) => (*n).max(0) as u64,
        Some(Bson::Int32(n)) => (*n).max(0) as u64,
        _ => 0,
    }
}

pub(super) fn client_from_document(document: &Document) -> Option<Client> {
    let created = match document.get("created") {
        Some(Bson::DateTime(at)) => (at.timestamp_millis().max(0) / 1000) as u64,
        _ => 0,
    };
    // An unknown type is treated as confidential: it then needs a secret,
    // which fails closed.
    let client_type = ClientType::parse(document.get_str("client_type").unwrap_or("public"))
        .unwrap_or(ClientType::Confidential);
    let strings = |key: &str| -> Option<Vec<String>> {
        document.get_array(key).ok().map(|items| {
            items
                .iter()
                .filter_map(|b| b.as_str().map(String::from))
                .collect()
        })
    };
    let allowed_grants = match strings("allowed_grant_types") {
        Some(names) => names.iter().filter_map(|n| GrantType::parse(n)).collect(),
        None => GrantType::defaults(ClientType::Public),
    };
    Some(Client {
        client_id: document.get_str("client_id").ok()?.to_string(),
        name: document.get_str("name").unwrap_or("").to_string(),
        client_type,
        secret_hash: document
            .get_str("client_secret_hash")
            .ok()
            .map(String::from),
        allowed_grants,
        allowed_scopes: strings("allowed_scopes").unwrap_or_default(),
        disabled: document.get_bool("disabled").unwrap_or(false),
        created,
        can_introspect: document.get_bool("can_introspect").unwrap_or(false),
        generation: generation_of(document),
    })
}

pub(super) fn client_document(client: &Client) -> Document {
    let mut document = doc! {
        "client_id": &client.client_id,
        "client_type": client.client_type.as_str(),
        "name": &client.name,
        "created": DateTime::from_millis((client.created * 1000) as i64),
        "allowed_grant_types": client.allowed_grants.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "allowed_scopes": &client.allowed_scopes,
        "disabled": client.disabled,
        "can_introspect": client.can_introspect,
    };
    if let Some(hash) = &client.secret_hash {
        document.insert("client_secret_hash", hash);
    }
    document
}

pub(super) fn session_document(session: &Session) -> Result<Document, StoreError> {
    let mut document = mongodb::bson::to_document(session)
        .map_err(|e| StoreError::Unavailable(format!("cannot encode a session: {e}")))?;
    document.insert("_id", &session.id);
    Ok(document)
}

pub(super) fn session_from_document(mut document: Document) -> Option<Session> {
    document.remove("_id");
    mongodb::bson::from_document(document).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    use mongodb::bson::oid::ObjectId;

    #[test]
    fn flask_sentinel_documents_are_read() {
        let oid = ObjectId::new();
        let user = user_from_document(&doc! {
            "_id": oid, "username": "alice", "hashpw": "$2b$12$abc"
        })
        .unwrap();
        assert_eq!(user.id, oid.to_hex());
        assert_eq!(user.password_hash, "$2b$12$abc");
        assert!(!user.disabled);
        assert_eq!(user.created, 0);

        let client =
            client_from_document(&doc! {"client_id": "abc", "client_type": "public"}).unwrap();
        assert_eq!(client.client_id, "abc");
        assert_eq!(client.client_type, ClientType::Public);

        assert!(user_from_document(&doc! {"_id": oid, "username": "no-hash"}).is_none());
        let bytes = mongodb::bson::Binary {
            subtype: mongodb::bson::spec::BinarySubtype::Generic,
            bytes: b"$2b$12$bytes".to_vec(),
        };
        let user =
            user_from_document(&doc! {"_id": oid, "username": "py3", "hashpw": bytes}).unwrap();
        assert_eq!(user.password_hash, "$2b$12$bytes");
    }
}
