//! The narrow views of the state that the gateway's own endpoints get:
//! each sees only what it uses, and neither imports the state.

use crate::management::Management;
use crate::oauth::OAuthEndpoints;
use crate::state::AppState;

/// What the OAuth endpoints see of the state.
pub(super) fn oauth_endpoints(state: &AppState) -> OAuthEndpoints<'_> {
    OAuthEndpoints {
        store: &state.store,
        tokens: &state.tokens,
        hasher: &state.hasher,
        lockout: &state.lockout,
        rate_limiter: &state.rate_limiter,
        config: &state.config.oauth,
        max_body_bytes: state.config.server.max_token_request_bytes,
        route_scopes: &state.route_scopes,
    }
}

/// What the control socket's management API sees: the same, but the
/// operator at the console may choose any non-empty password, as the
/// CLI always allowed.
pub(super) fn control_view(state: &AppState) -> Management<'_> {
    let mut view = management_view(state);
    view.accounts.min_password_length = 1;
    view
}

/// What management sees of the state.
pub(super) fn management_view(state: &AppState) -> Management<'_> {
    Management {
        admin: state.admin.as_deref(),
        base_path: state
            .config
            .oauth
            .management_path
            .as_deref()
            .unwrap_or_default(),
        accounts: state.accounts(),
        lockout: &state.lockout,
        lockout_policies: [
            &state.config.oauth.lockout,
            &state.config.oauth.address_lockout,
        ],
    }
}
