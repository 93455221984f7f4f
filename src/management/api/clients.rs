//! The clients' endpoints: list, create (a confidential client's secret
//! shown once), read, change, remove.

use serde_json::json;

use super::{
    account_error, invalid, listing, no_content, parse_body, parse_grants, Api, ApiRequest,
    ClientPatch, NewClientBody,
};
use crate::respond::Reply;
use crate::store::{ClientType, ClientUpdate};

impl Api<'_> {
    pub(super) async fn list_clients(&self, request: &ApiRequest) -> Result<Reply, Reply> {
        let listing = listing(&request.query)?;
        let page = self
            .accounts
            .store
            .list_clients(&listing)
            .await
            .map_err(|e| account_error(e.into(), "clients"))?;
        Ok(Reply::json(200, &page))
    }

    pub(super) async fn create_client(&self, request: &ApiRequest) -> Result<Reply, Reply> {
        let body: NewClientBody = parse_body(&request.body)?;
        let client_type = ClientType::parse(&body.client_type)
            .ok_or_else(|| invalid("type", "type is `public` or `confidential`"))?;
        let grants = body.allowed_grants.map(parse_grants).transpose()?;
        let (client, secret) = self
            .accounts()
            .create_client(
                &body.name,
                client_type,
                grants,
                body.allowed_scopes,
                body.can_introspect,
            )
            .await
            .map_err(|e| account_error(e, "name"))?;
        self.audit(request, "client.create", &client.client_id);
        let mut value = serde_json::to_value(&client).expect("clients serialize");
        if let Some(secret) = secret {
            // Shown this once; only its hash is stored.
            value["client_secret"] = json!(secret);
        }
        Ok(Reply::json(201, &value))
    }

    pub(super) async fn get_client(&self, id: &str) -> Result<Reply, Reply> {
        match self.accounts.store.find_client(id).await {
            Ok(Some(client)) => Ok(Reply::json(200, &client)),
            Ok(None) => Err(crate::respond::not_found(&format!(
                "client `{id}` not found"
            ))),
            Err(e) => Err(account_error(e.into(), "client_id")),
        }
    }

    pub(super) async fn patch_client(
        &self,
        request: &ApiRequest,
        id: &str,
    ) -> Result<Reply, Reply> {
        let body: ClientPatch = parse_body(&request.body)?;
        let update = ClientUpdate {
            name: body.name,
            allowed_grants: body.allowed_grants.map(parse_grants).transpose()?,
            allowed_scopes: body.allowed_scopes,
            disabled: body.disabled,
            can_introspect: body.can_introspect,
        };
        let client = self
            .accounts()
            .update_client(id, update)
            .await
            .map_err(|e| account_error(e, "client_id"))?;
        self.audit(request, "client.update", id);
        Ok(Reply::json(200, &client))
    }

    pub(super) async fn delete_client(
        &self,
        request: &ApiRequest,
        id: &str,
    ) -> Result<Reply, Reply> {
        self.accounts()
            .remove_client(id)
            .await
            .map_err(|e| account_error(e, "client_id"))?;
        self.audit(request, "client.delete", id);
        Ok(no_content())
    }
}
