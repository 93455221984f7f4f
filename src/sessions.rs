//! The session lifecycle in one place: ending a session with the access
//! tokens issued in it, and the pure steps of a refresh (rotation, and
//! whether a retired token is an honest retry). The token endpoint, the
//! revocation endpoint and account changes all end sessions through here.
//!
//! The steps take the clock as an argument (`now`, Unix seconds), so their
//! tests say what happens at a given time without sleeping.
//!
//! ## Revocation against work in flight
//!
//! A sign-in spends a bcrypt between reading the user and creating the
//! session; a refresh swaps the session before saving its access token. A
//! revocation (a new password, disabling, removal) that lands in between
//! must still win. One mechanism closes every such window, without a
//! second lookup on the proxy path:
//!
//! - every revoking change first raises the user's or client's
//!   `generation` in the store, then deletes their sessions and tokens;
//! - every issuance remembers the generations it read before its work,
//!   writes the session and the access token, and then checks
//!   ([`issuance_stands`]) that the generations are unchanged and the
//!   session still exists. If not, it deletes what it wrote and fails.
//!
//! Either the check ran before the raise, so the writes came before the
//! revocation's deletes and those deletes find them; or it ran after, and
//! the issuance undoes itself. No interleaving leaves a token alive.

use std::time::Duration;

use crate::store::{Client, Session, Store, StoreError, User, RETIRED_DIGESTS_KEPT};
use crate::tokens::{TokenDigest, TokenStore, TokenStoreError};

/// Access tokens a session lists at most. A refresh beyond it revokes the
/// oldest: the record stays small (it is rewritten on every refresh), and
/// a client holds only its latest few tokens.
pub const ACCESS_TOKENS_KEPT: usize = 4;

/// The access tokens listed in `sessions`.
pub fn access_digests(sessions: &[Session]) -> Vec<TokenDigest> {
    sessions
        .iter()
        .flat_map(|session| session.access_tokens.iter())
        .filter_map(|(hex, _)| TokenDigest::from_hex(hex))
        .collect()
}

/// Ends the session `session_id`: deletes it, then the access tokens
/// issued in it. Returns the session, or `None` if it was already gone.
pub async fn end_session<E>(
    store: &Store,
    tokens: &TokenStore,
    session_id: &str,
) -> Result<Option<Session>, E>
where
    E: From<StoreError> + From<TokenStoreError>,
{
    let Some(ended) = store.delete_session(session_id).await? else {
        return Ok(None);
    };
    end_access_tokens::<E>(tokens, std::slice::from_ref(&ended)).await?;
    Ok(Some(ended))
}

/// Deletes the access tokens of sessions already taken out of the store
/// (all of a user's, all of a client's).
pub async fn end_access_tokens<E>(tokens: &TokenStore, ended: &[Session]) -> Result<(), E>
where
    E: From<TokenStoreError>,
{
    tokens.delete_access(&access_digests(ended)).await?;
    Ok(())
}

/// What the issuance read before its work: the user's and the client's
/// generation. See the module comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generations {
    /// `None` for a client acting for itself (client_credentials).
    pub user: Option<u64>,
    pub client: u64,
}

impl Generations {
    pub fn of(user: Option<&User>, client: &Client) -> Self {
        Generations {
            user: user.map(|u| u.generation),
            client: client.generation,
        }
    }
}

/// The final check of an issuance: the user (if any) and the client still
/// exist, are enabled and have the generations read before, and the
/// session (if any) still exists. False means a revocation overtook the
/// issuance, which must then undo what it wrote.
pub async fn issuance_stands(
    store: &Store,
    user_id: Option<&str>,
    client_id: &str,
    read_before: Generations,
    session_id: Option<&str>,
) -> Result<bool, StoreError> {
    let user_now = match user_id {
        Some(id) => match store.find_user_by_id(id).await? {
            Some(user) if !user.disabled => Some(user.generation),
            _ => return Ok(false),
        },
        None => None,
    };
    let client_now = match store.find_client(client_id).await? {
        Some(client) if !client.disabled => client.generation,
        _ => return Ok(false),
    };
    if user_now != read_before.user || client_now != read_before.client {
        return Ok(false);
    }
    match session_id {
        Some(id) => Ok(store.find_session(id).await?.is_some()),
        None => Ok(true),
    }
}

/// When a session must end however often it refreshes: its sign-in plus
/// the absolute lifetime.
pub fn session_end(session: &Session, max_lifetime: Duration) -> u64 {
    session.created.saturating_add(max_lifetime.as_secs())
}

/// What a refresh issues, for [`rotated`].
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The clock, Unix seconds.
    pub now: u64,
    /// How long the new refresh token lives (sliding).
    pub refresh_lifetime: Duration,
    /// The absolute end of the session ([`session_end`]): the sliding
    /// lifetime never reaches past it.
    pub session_end: u64,
    /// The new refresh token's digest.
    pub refresh: TokenDigest,
    /// The new access token's digest and expiry.
    pub access: (TokenDigest, u64),
    /// The new pair, sealed under the old refresh token, for a retry.
    pub retry_pair: String,
}

/// The session after a refresh at `rotation.now`: the new refresh token is
/// current and the old one retired (the latest of at most
/// [`RETIRED_DIGESTS_KEPT`], so presenting it again is detected), the
/// lifetime slides up to the session's absolute end, expired access tokens
/// leave the list and the new one joins it, keeping the newest
/// [`ACCESS_TOKENS_KEPT`]. Returns the new session, which the store's
/// compare-and-swap puts in place of the old one, and the live access
/// tokens it dropped, which the caller revokes once the swap succeeded.
pub fn rotated(session: &Session, rotation: Rotation) -> (Session, Vec<TokenDigest>) {
    let now = rotation.now;
    let mut next = session.clone();
    next.previous_refresh_digest = Some(session.refresh_digest.clone());
    next.retired_refresh_digests
        .push(session.refresh_digest.clone());
    let excess = next
        .retired_refresh_digests
        .len()
        .saturating_sub(RETIRED_DIGESTS_KEPT);
    next.retired_refresh_digests.drain(..excess);
    next.refresh_digest = rotation.refresh.to_hex();
    next.refresh_expires_at = (now + rotation.refresh_lifetime.as_secs()).min(rotation.session_end);
    next.rotated_at = now;
    next.last_used = now;
    next.retry_pair = Some(rotation.retry_pair);
    next.access_tokens
        .retain(|(_, expires_at)| *expires_at > now);
    let (access, expires_at) = rotation.access;
    next.access_tokens.push((access.to_hex(), expires_at));
    let excess = next.access_tokens.len().saturating_sub(ACCESS_TOKENS_KEPT);
    let dropped = next
        .access_tokens
        .drain(..excess)
        .filter_map(|(hex, _)| TokenDigest::from_hex(&hex))
        .collect();
    (next, dropped)
}

/// True when `presented` (a retired refresh token of `session`) is the one
/// the last rotation replaced, presented again within `grace` of it: a
/// client retrying a refresh whose answer it lost, not a thief.
pub fn is_retry_within_grace(
    session: &Session,
    presented: &TokenDigest,
    now: u64,
    grace: Duration,
) -> bool {
    session.previous_refresh_digest.as_deref() == Some(presented.to_hex().as_str())
        && now.saturating_sub(session.rotated_at) <= grace.as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(text: &str) -> TokenDigest {
        TokenDigest::of(text)
    }

    fn session_at(now: u64) -> Session {
        Session {
            id: "s1".into(),
            user_id: "u1".into(),
            client_id: "c1".into(),
            scope: "read".into(),
            created: now,
            last_used: now,
            refresh_digest: digest("refresh-0").to_hex(),
            refresh_expires_at: now + 100,
            previous_refresh_digest: None,
            retired_refresh_digests: Vec::new(),
            rotated_at: now,
            retry_pair: None,
            access_tokens: vec![
                (digest("access-old").to_hex(), now + 10),
                (digest("access-live").to_hex(), now + 1000),
            ],
        }
    }

    fn rotation(now: u64, n: usize) -> Rotation {
        Rotation {
            now,
            refresh_lifetime: Duration::from_secs(100),
            session_end: u64::MAX,
            refresh: digest(&format!("refresh-{n}")),
            access: (digest(&format!("access-{n}")), now + 60),
            retry_pair: format!("pair-{n}"),
        }
    }

    #[test]
    fn a_rotation_retires_the_old_token_and_slides_the_lifetime() {
        let before = session_at(1_000);
        let (after, dropped) = rotated(&before, rotation(1_050, 1));
        assert_eq!(dropped, []);
        assert_eq!(after.refresh_digest, digest("refresh-1").to_hex());
        assert_eq!(
            after.previous_refresh_digest,
            Some(before.refresh_digest.clone())
        );
        assert_eq!(
            after.retired_refresh_digests,
            vec![before.refresh_digest.clone()]
        );
        assert_eq!(after.refresh_expires_at, 1_150);
        assert_eq!((after.rotated_at, after.last_used), (1_050, 1_050));
        assert_eq!(after.retry_pair.as_deref(), Some("pair-1"));
        // The token that expired at 1_010 is gone; the live one stays.
        assert_eq!(
            after.access_tokens,
            vec![
                (digest("access-live").to_hex(), 2_000),
                (digest("access-1").to_hex(), 1_110),
            ]
        );
        assert_eq!((after.id.as_str(), after.scope.as_str()), ("s1", "read"));
    }

    #[test]
    fn retired_tokens_are_bounded() {
        let mut session = session_at(0);
        for n in 1..=RETIRED_DIGESTS_KEPT + 5 {
            session = rotated(&session, rotation(n as u64, n)).0;
        }
        assert_eq!(session.retired_refresh_digests.len(), RETIRED_DIGESTS_KEPT);
        // The newest retired token is the one just replaced.
        assert_eq!(
            session.retired_refresh_digests.last(),
            session.previous_refresh_digest.as_ref()
        );
        assert!(!session
            .retired_refresh_digests
            .contains(&digest("refresh-0").to_hex()));
    }

    #[test]
    fn only_the_last_replaced_token_within_grace_is_a_retry() {
        let grace = Duration::from_secs(5);
        let first = rotated(&session_at(1_000), rotation(1_000, 1)).0;
        let second = rotated(&first, rotation(1_020, 2)).0;
        let cases = [
            ("just replaced, at once", "refresh-1", 1_020, true),
            ("just replaced, at the edge", "refresh-1", 1_025, true),
            ("just replaced, too late", "refresh-1", 1_026, false),
            ("an older one", "refresh-0", 1_020, false),
            ("the current one", "refresh-2", 1_020, false),
        ];
        for (name, presented, now, expected) in cases {
            assert_eq!(
                is_retry_within_grace(&second, &digest(presented), now, grace),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn a_session_lists_its_newest_access_tokens_and_drops_the_rest() {
        let mut session = session_at(0);
        session.access_tokens.clear();
        let mut dropped = Vec::new();
        for n in 1..=ACCESS_TOKENS_KEPT + 3 {
            let (next, gone) = rotated(&session, rotation(n as u64, n));
            session = next;
            dropped.extend(gone);
        }
        let kept: Vec<String> = (4..=ACCESS_TOKENS_KEPT + 3)
            .map(|n| digest(&format!("access-{n}")).to_hex())
            .collect();
        let listed: Vec<String> = session
            .access_tokens
            .iter()
            .map(|(h, _)| h.clone())
            .collect();
        assert_eq!(listed, kept);
        // What left the list is handed back to be revoked, oldest first.
        assert_eq!(
            dropped,
            (1..=3)
                .map(|n| digest(&format!("access-{n}")))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_sliding_lifetime_stops_at_the_session_end() {
        let session = session_at(1_000);
        let end = session_end(&session, Duration::from_secs(120));
        assert_eq!(end, 1_120);
        let cases = [
            (1_000, 1_100),
            (1_019, 1_119),
            (1_050, 1_120),
            (1_110, 1_120),
        ];
        for (now, expected) in cases {
            let mut rotation = rotation(now, 1);
            rotation.session_end = end;
            assert_eq!(
                rotated(&session, rotation).0.refresh_expires_at,
                expected,
                "{now}"
            );
        }
    }

    #[test]
    fn access_digests_skip_what_is_not_a_digest() {
        let mut session = session_at(0);
        session.access_tokens.push(("not hex".into(), 5));
        assert_eq!(access_digests(&[session]).len(), 2);
    }

    /// The interleavings of an issuance with a revocation, on a real
    /// embedded store: whichever side goes first, no issued token stands.
    #[tokio::test]
    async fn an_issuance_overtaken_by_a_revocation_does_not_stand() {
        use crate::store::embedded::EmbeddedStore;
        use crate::store::{ClientType, GrantType, NewClient, UserUpdate};

        let folder = tempfile::tempdir().unwrap();
        let store = Store::Embedded(EmbeddedStore::open(&folder.path().join("s.sqlite3")).unwrap());
        let user = store.create_user("jonas", "$2b$04$x").await.unwrap();
        let client = store
            .create_client(NewClient {
                name: "app".into(),
                client_type: ClientType::Public,
                secret_hash: None,
                allowed_grants: GrantType::defaults(ClientType::Public),
                allowed_scopes: Vec::new(),
                can_introspect: false,
            })
            .await
            .unwrap();
        let mut session = session_at(0);
        session.user_id = user.id.clone();
        session.client_id = client.client_id.clone();
        let stands = |read: Generations| {
            let store = &store;
            let (user_id, client_id, session_id) = (
                user.id.clone(),
                client.client_id.clone(),
                session.id.clone(),
            );
            async move {
                issuance_stands(store, Some(&user_id), &client_id, read, Some(&session_id))
                    .await
                    .unwrap()
            }
        };

        // Nothing happened in between: the issuance stands.
        let read = Generations::of(Some(&user), &client);
        store.insert_session(&session).await.unwrap();
        assert!(stands(read).await);

        // The user's sessions were revoked after the read: it does not.
        store.bump_user_generation(&user.id).await.unwrap();
        assert!(!stands(read).await);

        // The client's, likewise.
        let user = store.find_user_by_id(&user.id).await.unwrap().unwrap();
        let read = Generations::of(Some(&user), &client);
        store
            .bump_client_generation(&client.client_id)
            .await
            .unwrap();
        assert!(!stands(read).await);

        // Disabled, or the session deleted under it: it does not either.
        let client = store.find_client(&client.client_id).await.unwrap().unwrap();
        let read = Generations::of(Some(&user), &client);
        assert!(stands(read).await);
        store.delete_session(&session.id).await.unwrap();
        assert!(!stands(read).await);
        store.insert_session(&session).await.unwrap();
        let disable = UserUpdate {
            password_hash: None,
            disabled: Some(true),
        };
        store.update_user(&user.id, disable).await.unwrap();
        assert!(!stands(read).await);
    }
}
