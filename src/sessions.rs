//! The session lifecycle in one place: ending a session with the access
//! tokens issued in it, and the pure steps of a refresh (rotation, and
//! whether a retired token is an honest retry). The token endpoint, the
//! revocation endpoint and account changes all end sessions through here.
//!
//! The steps take the clock as an argument (`now`, Unix seconds), so their
//! tests say what happens at a given time without sleeping.

use std::time::Duration;

use crate::store::{Session, Store, StoreError, RETIRED_DIGESTS_KEPT};
use crate::tokens::{TokenDigest, TokenStore, TokenStoreError};

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

/// What a refresh issues, for [`rotated`].
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The clock, Unix seconds.
    pub now: u64,
    /// How long the new refresh token lives (sliding).
    pub refresh_lifetime: Duration,
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
/// lifetime slides, expired access tokens leave the list and the new one
/// joins it. The old session is what the store's compare-and-swap checks.
pub fn rotated(session: &Session, rotation: Rotation) -> Session {
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
    next.refresh_expires_at = now + rotation.refresh_lifetime.as_secs();
    next.rotated_at = now;
    next.last_used = now;
    next.retry_pair = Some(rotation.retry_pair);
    next.access_tokens
        .retain(|(_, expires_at)| *expires_at > now);
    let (access, expires_at) = rotation.access;
    next.access_tokens.push((access.to_hex(), expires_at));
    next
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
            refresh: digest(&format!("refresh-{n}")),
            access: (digest(&format!("access-{n}")), now + 60),
            retry_pair: format!("pair-{n}"),
        }
    }

    #[test]
    fn a_rotation_retires_the_old_token_and_slides_the_lifetime() {
        let before = session_at(1_000);
        let after = rotated(&before, rotation(1_050, 1));
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
            session = rotated(&session, rotation(n as u64, n));
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
        let first = rotated(&session_at(1_000), rotation(1_000, 1));
        let second = rotated(&first, rotation(1_020, 2));
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
    fn access_digests_skip_what_is_not_a_digest() {
        let mut session = session_at(0);
        session.access_tokens.push(("not hex".into(), 5));
        assert_eq!(access_digests(&[session]).len(), 2);
    }
}
