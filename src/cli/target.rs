//! Where an administrative command runs: through the running gateway's
//! control socket when one answers, so that revocations reach the tokens
//! it holds in memory at once, or on the stores directly when no gateway
//! runs (see [`crate::control_socket`]). Both give the same records, as
//! the management API shows them.

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

use crate::accounts::Accounts;
use crate::control_socket::ControlClient;
use crate::password::PasswordHasher;
use crate::store::{parse_grants, ClientType, ClientUpdate, Listing, Store};
use crate::tokens::TokenStore;

pub enum Target {
    /// No gateway answered: the CLI opens the stores itself.
    Direct(Box<Direct>),
    /// A gateway answered on its control socket: it does the work.
    Running(ControlClient),
}

pub struct Direct {
    pub store: Store,
    pub tokens: TokenStore,
    pub hasher: PasswordHasher,
    pub memory_tokens: bool,
}

/// What a new client is made with.
pub struct NewClientRequest<'a> {
    pub name: &'a str,
    pub client_type: ClientType,
    pub grants: Option<Vec<String>>,
    pub scopes: Vec<String>,
    pub can_introspect: bool,
}

/// A page of the management API's listings holds at most this many.
const PAGE: usize = 500;

impl Direct {
    fn accounts(&self) -> Accounts<'_> {
        // The operator at the console may choose a short password; only an
        // empty one is refused. The management API enforces a minimum.
        Accounts {
            store: &self.store,
            tokens: &self.tokens,
            hasher: &self.hasher,
            min_password_length: 1,
        }
    }
}

impl Target {
    /// Said after a revoking change made without a running gateway.
    pub fn revocation_note(&self) -> Option<&'static str> {
        match self {
            Target::Direct(direct) if direct.memory_tokens => Some(
                "note: no gateway answered on the control socket, so the change was made in the store; \
                 a gateway elsewhere that shares this store with memory tokens keeps the access tokens it \
                 issued until they expire",
            ),
            _ => None,
        }
    }

    /// The management API's answer, or an error with its description.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let Target::Running(gateway) = self else {
            unreachable!("only the running gateway is called");
        };
        let answer = gateway
            .request(method, path, body.as_ref())
            .map_err(|e| anyhow!(e))?;
        if !(200..300).contains(&answer.status) {
            let description = answer.body["error_description"]
                .as_str()
                .unwrap_or("the gateway refused the request");
            bail!("{description}");
        }
        Ok(answer.body)
    }

    /// Every item of a listing, page by page.
    fn list_all(&self, path: &str) -> Result<Vec<Value>> {
        let mut items = Vec::new();
        loop {
            let page = self.call(
                "GET",
                &format!("{path}?limit={PAGE}&offset={}", items.len()),
                None,
            )?;
            let batch = page["items"].as_array().cloned().unwrap_or_default();
            let done = batch.len() < PAGE;
            items.extend(batch);
            if done {
                return Ok(items);
            }
        }
    }

    pub async fn create_user(&self, username: &str, password: &str) -> Result<Value> {
        match self {
            Target::Direct(direct) => {
                let user = direct.accounts().create_user(username, password).await?;
                Ok(serde_json::to_value(user)?)
            }
            Target::Running(_) => self.call(
                "POST",
                "/users",
                Some(json!({"username": username, "password": password})),
            ),
        }
    }

    pub async fn list_users(&self) -> Result<Vec<Value>> {
        match self {
            Target::Direct(direct) => {
                let users = direct.store.list_users(&Listing::everything()).await?.items;
                Ok(users
                    .into_iter()
                    .map(serde_json::to_value)
                    .collect::<Result<_, _>>()?)
            }
            Target::Running(_) => self.list_all("/users"),
        }
    }

    /// The user's id, by username.
    pub async fn user_id(&self, username: &str) -> Result<String> {
        let id = match self {
            Target::Direct(direct) => Some(direct.accounts().user_by_username(username).await?.id),
            Target::Running(_) => {
                let search =
                    form_urlencoded::byte_serialize(username.as_bytes()).collect::<String>();
                let page =
                    self.call("GET", &format!("/users?search={search}&limit={PAGE}"), None)?;
                page["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|user| user["username"] == username)
                    .and_then(|user| user["id"].as_str().map(String::from))
            }
        };
        id.ok_or_else(|| anyhow!("user `{username}` not found"))
    }

    pub async fn set_password(&self, user_id: &str, password: &str) -> Result<()> {
        match self {
            Target::Direct(direct) => {
                direct.accounts().set_password(user_id, password).await?;
            }
            Target::Running(_) => {
                self.call(
                    "PATCH",
                    &format!("/users/{user_id}"),
                    Some(json!({"password": password})),
                )?;
            }
        }
        Ok(())
    }

    pub async fn set_disabled(&self, user_id: &str, disabled: bool) -> Result<()> {
        match self {
            Target::Direct(direct) => {
                direct.accounts().set_disabled(user_id, disabled).await?;
            }
            Target::Running(_) => {
                self.call(
                    "PATCH",
                    &format!("/users/{user_id}"),
                    Some(json!({"disabled": disabled})),
                )?;
            }
        }
        Ok(())
    }

    pub async fn remove_user(&self, user_id: &str) -> Result<()> {
        match self {
            Target::Direct(direct) => {
                direct.accounts().remove_user(user_id).await?;
            }
            Target::Running(_) => {
                self.call("DELETE", &format!("/users/{user_id}"), None)?;
            }
        }
        Ok(())
    }

    /// The new client, with `client_secret` for a confidential one.
    pub async fn create_client(&self, new: NewClientRequest<'_>) -> Result<Value> {
        match self {
            Target::Direct(direct) => {
                let grants = new
                    .grants
                    .map(|names| parse_grants(&names.join(",")))
                    .transpose()
                    .map_err(anyhow::Error::msg)?;
                let (client, secret) = direct
                    .accounts()
                    .create_client(
                        new.name,
                        new.client_type,
                        grants,
                        new.scopes,
                        new.can_introspect,
                    )
                    .await?;
                let mut value = serde_json::to_value(client)?;
                if let Some(secret) = secret {
                    value["client_secret"] = json!(secret);
                }
                Ok(value)
            }
            Target::Running(_) => {
                let mut body = json!({
                    "name": new.name,
                    "type": new.client_type.as_str(),
                    "allowed_scopes": new.scopes,
                    "can_introspect": new.can_introspect,
                });
                if let Some(grants) = new.grants {
                    body["allowed_grants"] = json!(grants);
                }
                self.call("POST", "/clients", Some(body))
            }
        }
    }

    /// Applies `update` (`None` fields unchanged); the client afterwards.
    pub async fn update_client(
        &self,
        client_id: &str,
        grants: Option<Vec<String>>,
        update: ClientUpdate,
    ) -> Result<Value> {
        match self {
            Target::Direct(direct) => {
                let update = ClientUpdate {
                    allowed_grants: grants
                        .map(|names| parse_grants(&names.join(",")))
                        .transpose()
                        .map_err(anyhow::Error::msg)?,
                    ..update
                };
                let client = direct.accounts().update_client(client_id, update).await?;
                Ok(serde_json::to_value(client)?)
            }
            Target::Running(_) => {
                let mut body = json!({});
                if let Some(grants) = grants {
                    body["allowed_grants"] = json!(grants);
                }
                if let Some(scopes) = update.allowed_scopes {
                    body["allowed_scopes"] = json!(scopes);
                }
                if let Some(disabled) = update.disabled {
                    body["disabled"] = json!(disabled);
                }
                if let Some(can_introspect) = update.can_introspect {
                    body["can_introspect"] = json!(can_introspect);
                }
                self.call("PATCH", &format!("/clients/{client_id}"), Some(body))
            }
        }
    }

    pub async fn list_clients(&self) -> Result<Vec<Value>> {
        match self {
            Target::Direct(direct) => {
                let clients = direct
                    .store
                    .list_clients(&Listing::everything())
                    .await?
                    .items;
                Ok(clients
                    .into_iter()
                    .map(serde_json::to_value)
                    .collect::<Result<_, _>>()?)
            }
            Target::Running(_) => self.list_all("/clients"),
        }
    }

    pub async fn remove_client(&self, client_id: &str) -> Result<()> {
        match self {
            Target::Direct(direct) => {
                direct.accounts().remove_client(client_id).await?;
            }
            Target::Running(_) => {
                self.call("DELETE", &format!("/clients/{client_id}"), None)?;
            }
        }
        Ok(())
    }
}
