//! New record ids, in the shapes existing data already has.
//!
//! Ids are made here rather than by a backend so that a user id looks the
//! same whichever backend stored it, and a client id looks like the ones
//! Flask-Sentinel handed out.

use rand::distributions::Alphanumeric;
use rand::Rng;

/// A new user id: 24 hex characters, the shape of a MongoDB ObjectId, so ids
/// look alike on both backends.
pub fn new_user_id() -> String {
    mongodb::bson::oid::ObjectId::new().to_hex()
}

/// A new client id: 40 alphanumerics, as Flask-Sentinel's `gen_salt(40)`.
pub fn new_client_id() -> String {
    rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect()
}

/// A new session (refresh-token family) id.
pub fn new_session_id() -> String {
    crate::tokens::RawToken::generate().digest().to_hex()[..32].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_their_documented_shape() {
        let user = new_user_id();
        assert_eq!(user.len(), 24);
        assert!(user.bytes().all(|b| b.is_ascii_hexdigit()));
        let client = new_client_id();
        assert_eq!(client.len(), 40);
        assert!(client.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(client, new_client_id());
    }
}
