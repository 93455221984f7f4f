//! `management`: the administrator of the management API, whose
//! credentials come from the file or the environment (never half from
//! each), and the API's optional own listener.

use super::{parse_address, Problems};
use crate::config::{
    AdminCredentials, AdminSecret, Environment, FileManagement, ManagementConfig,
    ENV_ADMIN_PASSWORD, ENV_ADMIN_USERNAME,
};

/// `management`: the administrator (from the file or the environment) and
/// the optional own listener.
pub(super) fn check_management(
    problems: &mut Problems,
    management: FileManagement,
    env: &dyn Environment,
) -> ManagementConfig {
    let admin = match (
        env.var(ENV_ADMIN_USERNAME).or(management.username),
        env.var(ENV_ADMIN_PASSWORD),
        management.password_hash,
    ) {
        (None, None, None) => None,
        (Some(username), Some(password), _) => Some(AdminCredentials {
            username,
            secret: AdminSecret::Plain(password),
        }),
        (Some(username), None, Some(hash)) => {
            if !(hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$")) {
                problems.add(
                    "management.password_hash",
                    "must be a bcrypt hash ($2b$…); generate one with `portcullis hash-password`",
                );
            }
            Some(AdminCredentials {
                username,
                secret: AdminSecret::BcryptHash(hash),
            })
        }
        _ => {
            problems.add(
                    "management",
                    format!(
                        "set both username and password_hash (or {ENV_ADMIN_USERNAME} and {ENV_ADMIN_PASSWORD})"
                    ),
                );
            None
        }
    };
    let management_address = management
        .address
        .as_deref()
        .and_then(|address| parse_address(problems, "management.address", address));
    let csrf_secret = match &management.csrf_secret_env {
        None => None,
        Some(name) => match env.var(name) {
            Some(secret) if secret.len() >= 32 => Some(secret),
            Some(_) => {
                problems.add(
                    "management.csrf_secret_env",
                    format!("`{name}` must hold at least 32 characters (for example 32 random bytes in hex)"),
                );
                None
            }
            None => {
                problems.add(
                    "management.csrf_secret_env",
                    format!("the environment variable `{name}` is not set"),
                );
                None
            }
        },
    };
    ManagementConfig {
        admin,
        address: management_address,
        min_password_length: management.min_password_length.max(1),
        csrf_secret,
    }
}
