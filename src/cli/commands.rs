//! The `user` and `client` commands: each reads its arguments, asks the
//! [`Target`] (the running gateway, or the stores), and prints the result,
//! as text for a person or as JSON with `--json`.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::target::{NewClientRequest, Target};
use super::{ClientCommand, UserCommand};
use crate::store::{ClientType, ClientUpdate};

pub(super) fn read_password() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        bail!("the password read from standard input is empty");
    }
    Ok(password)
}

fn require_password_stdin(flag: bool) -> Result<()> {
    if !flag {
        bail!("pass --password-stdin and write the password to standard input (example: echo pass | portcullis user add NAME --password-stdin)");
    }
    Ok(())
}

fn print_json(value: Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{value}")?;
    Ok(())
}

fn split_list(text: &str) -> Vec<String> {
    let mut items: Vec<String> = text
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    items.sort();
    items.dedup();
    items
}

fn text(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_default().to_string()
}

fn state(value: &Value) -> &'static str {
    if value["disabled"] == true {
        " (disabled)"
    } else {
        ""
    }
}

/// Prints the note a revoking change made without a running gateway needs.
fn note_revocation(target: &Target) {
    if let Some(note) = target.revocation_note() {
        eprintln!("{note}");
    }
}

pub async fn user(command: UserCommand, target: Target) -> Result<ExitCode> {
    match command {
        UserCommand::Add {
            username,
            password_stdin,
            json,
        } => {
            require_password_stdin(password_stdin)?;
            let password = read_password()?;
            let user = target.create_user(&username, &password).await?;
            if json {
                print_json(json!({"id": user["id"], "username": user["username"]}))?;
            } else {
                println!(
                    "created user {} (id {})",
                    text(&user, "username"),
                    text(&user, "id")
                );
            }
        }
        UserCommand::List { json } => {
            let users = target.list_users().await?;
            if json {
                print_json(Value::Array(users))?;
            } else {
                for user in users {
                    println!(
                        "{}  {}{}",
                        text(&user, "id"),
                        text(&user, "username"),
                        state(&user)
                    );
                }
            }
        }
        UserCommand::Remove { username } => {
            let id = target.user_id(&username).await?;
            target.remove_user(&id).await?;
            println!("removed user {username}");
            note_revocation(&target);
        }
        UserCommand::Passwd {
            username,
            password_stdin,
        } => {
            require_password_stdin(password_stdin)?;
            let password = read_password()?;
            let id = target.user_id(&username).await?;
            target.set_password(&id, &password).await?;
            println!("changed the password of {username}; their sessions are revoked");
            note_revocation(&target);
        }
        UserCommand::Disable { username } => {
            let id = target.user_id(&username).await?;
            target.set_disabled(&id, true).await?;
            println!("disabled {username}; their sessions are revoked");
            note_revocation(&target);
        }
        UserCommand::Enable { username } => {
            let id = target.user_id(&username).await?;
            target.set_disabled(&id, false).await?;
            println!("enabled {username}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn client(command: ClientCommand, target: Target) -> Result<ExitCode> {
    match command {
        ClientCommand::Add {
            name,
            confidential,
            grants,
            scopes,
            can_introspect,
            json,
        } => {
            let client_type = if confidential {
                ClientType::Confidential
            } else {
                ClientType::Public
            };
            let client = target
                .create_client(NewClientRequest {
                    name: &name,
                    client_type,
                    grants: grants.as_deref().map(split_list),
                    scopes: split_list(&scopes),
                    can_introspect,
                })
                .await?;
            if json {
                let mut value = json!({
                    "client_id": client["client_id"],
                    "name": client["name"],
                    "type": client["type"],
                    "allowed_grants": client["allowed_grants"],
                    "allowed_scopes": client["allowed_scopes"],
                    "can_introspect": client["can_introspect"],
                });
                if client["client_secret"].is_string() {
                    value["client_secret"] = client["client_secret"].clone();
                }
                print_json(value)?;
            } else {
                println!(
                    "created {} client {} ({})",
                    text(&client, "type"),
                    text(&client, "client_id"),
                    text(&client, "name")
                );
                if let Some(secret) = client["client_secret"].as_str() {
                    println!("client secret (shown once, store it now): {secret}");
                }
            }
        }
        ClientCommand::Update {
            client_id,
            grants,
            scopes,
            disable,
            enable,
            can_introspect,
        } => {
            let update = ClientUpdate {
                name: None,
                allowed_grants: None,
                allowed_scopes: scopes.as_deref().map(split_list),
                disabled: (disable || enable).then_some(disable),
                can_introspect,
            };
            let grants = grants.as_deref().map(split_list);
            let disabling = disable;
            let client = target.update_client(&client_id, grants, update).await?;
            print_json(client)?;
            if disabling {
                note_revocation(&target);
            }
        }
        ClientCommand::List { json } => {
            let clients = target.list_clients().await?;
            if json {
                print_json(Value::Array(clients))?;
            } else {
                for client in clients {
                    println!(
                        "{}  {}  {}{}",
                        text(&client, "client_id"),
                        text(&client, "type"),
                        text(&client, "name"),
                        state(&client)
                    );
                }
            }
        }
        ClientCommand::Remove { client_id } => {
            target.remove_client(&client_id).await?;
            println!("removed client {client_id}");
            note_revocation(&target);
        }
    }
    Ok(ExitCode::SUCCESS)
}
