//! The command line. `serve` is the default; the other commands administer
//! the configured store directly, so they work with or without a running
//! gateway. Passwords are read from standard input, never from argv, where
//! every user of the machine could see them in `ps`.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use serde_json::json;

use crate::accounts::Accounts;
use crate::config::{self, Config, ProcessEnvironment};
use crate::password::PasswordHasher;
use crate::store::{parse_grants, ClientType, ClientUpdate, Listing, Store};
use crate::tokens::TokenStore;

#[derive(Parser, Debug)]
#[command(
    name = "portcullis",
    version,
    about = "An authenticating reverse-proxy gateway"
)]
pub struct Cli {
    /// The configuration file.
    #[arg(
        short,
        long,
        global = true,
        env = "PORTCULLIS_CONFIG",
        default_value = "gateway.yaml"
    )]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway (the default).
    Serve,
    /// Check a configuration file; list every problem and exit non-zero if any.
    CheckConfig {
        /// The file to check (default: --config).
        file: Option<PathBuf>,
        /// Check that upstream servers are `host:port` without resolving
        /// them, for a file written for another network (a container's).
        #[arg(long)]
        no_resolve: bool,
    },
    /// Read a password from standard input and print its bcrypt hash, for
    /// management.password_hash.
    HashPassword {
        /// bcrypt cost (default: oauth.bcrypt_cost of the configuration, else 12).
        #[arg(long)]
        cost: Option<u32>,
    },
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage clients.
    #[command(subcommand)]
    Client(ClientCommand),
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input.
    Add {
        username: String,
        /// Read the password from standard input (required: never pass it as an argument).
        #[arg(long)]
        password_stdin: bool,
        /// Print the created user as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List users (never their password hashes).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a user and revoke all of their sessions.
    Remove { username: String },
    /// Set a user's password, read from standard input; revokes all of
    /// their sessions.
    Passwd {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user: sign-in refused, all sessions revoked.
    Disable { username: String },
    /// Enable a disabled user.
    Enable { username: String },
}

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Create a client: public (client_id only) unless --confidential, which
    /// prints its secret once.
    Add {
        name: String,
        /// A client with a secret (servers, not apps on users' devices).
        #[arg(long)]
        confidential: bool,
        /// Allowed grant types, comma-separated (default: password,refresh_token;
        /// confidential clients also client_credentials).
        #[arg(long)]
        grants: Option<String>,
        /// Allowed scopes, comma-separated (default: none).
        #[arg(long, default_value = "")]
        scopes: String,
        /// May call the introspection endpoint (RFC 7662).
        #[arg(long)]
        can_introspect: bool,
        #[arg(long)]
        json: bool,
    },
    /// Change a client's grants, scopes or state.
    Update {
        client_id: String,
        #[arg(long)]
        grants: Option<String>,
        #[arg(long)]
        scopes: Option<String>,
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        #[arg(long)]
        enable: bool,
        /// Whether it may call the introspection endpoint: true or false.
        #[arg(long)]
        can_introspect: Option<bool>,
    },
    /// List clients.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a client.
    Remove { client_id: String },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let _log_writer = init_logging();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            // One line that says what to fix; the cause chain on the same line.
            eprintln!("portcullis: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr in batches (see `log_writer`): a proxy worker formats
/// its access line, appends it to a buffer and moves on. The returned guard
/// writes what is left on drop.
fn init_logging() -> crate::log_writer::FlushGuard {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = crate::log_writer::stderr();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        // A person is reading: the default format, in colour.
        let _ = builder.with_ansi(true).try_init();
    } else {
        let _ = builder
            .event_format(crate::log_format::PlainLines)
            .try_init();
    }
    guard
}

fn load_config(path: &Path) -> Result<Config> {
    config::load(path, &ProcessEnvironment)
        .map_err(|errors| anyhow::anyhow!("{}: {errors}", path.display()))
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let config = load_config(&cli.config)?;
            crate::app::serve(config)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { file, no_resolve } => {
            let path = file.unwrap_or(cli.config);
            let env: &dyn config::Environment = if no_resolve {
                &config::WithoutResolving
            } else {
                &ProcessEnvironment
            };
            match config::load(&path, env) {
                Ok(_) => {
                    println!("{}: ok", path.display());
                    Ok(ExitCode::SUCCESS)
                }
                Err(errors) => {
                    eprint!("{}: {errors}", path.display());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::HashPassword { cost } => {
            let cost = match cost {
                Some(cost) => cost,
                None if cli.config.exists() => load_config(&cli.config)?.oauth.bcrypt_cost,
                None => 12,
            };
            let password = read_password()?;
            println!(
                "{}",
                bcrypt::hash(password, cost).context("cannot hash the password")?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::User(command) => admin(&cli.config, |context| user(command, context)),
        Command::Client(command) => admin(&cli.config, |context| client(command, context)),
    }
}

/// Runs an administrative command against the configured stores.
fn admin<F, Fut>(config_path: &Path, command: F) -> Result<ExitCode>
where
    F: FnOnce(AdminContext) -> Fut,
    Fut: std::future::Future<Output = Result<ExitCode>>,
{
    let config = load_config(config_path)?;
    // Only the user store must be reachable; Redis is needed only to revoke.
    crate::app::check_store(&config)?;
    let context = AdminContext {
        store: crate::app::open_store(&config.store)?,
        tokens: crate::app::open_tokens(&config)?,
        hasher: PasswordHasher::new(config.oauth.bcrypt_cost, 1, 1),
        memory_tokens: matches!(config.tokens, config::TokenConfig::Memory { .. }),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a runtime")?;
    runtime.block_on(command(context))
}

pub struct AdminContext {
    store: Store,
    tokens: TokenStore,
    hasher: PasswordHasher,
    memory_tokens: bool,
}

impl AdminContext {
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

    /// With memory tokens, the running gateway's access tokens are out of
    /// this process's reach; say so instead of implying they were revoked.
    fn note_revocation(&self) {
        if self.memory_tokens {
            eprintln!(
                "note: sessions were revoked; access tokens already issued by a running gateway with the memory \
                 token store stay valid until they expire (use Redis, or the management API, to revoke them at once)"
            );
        }
    }
}

fn read_password() -> Result<String> {
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

fn print_json(value: serde_json::Value) -> Result<()> {
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

async fn user(command: UserCommand, context: AdminContext) -> Result<ExitCode> {
    let accounts = context.accounts();
    match command {
        UserCommand::Add {
            username,
            password_stdin,
            json,
        } => {
            require_password_stdin(password_stdin)?;
            let password = read_password()?;
            let user = accounts.create_user(&username, &password).await?;
            if json {
                print_json(json!({"id": user.id, "username": user.username}))?;
            } else {
                println!("created user {} (id {})", user.username, user.id);
            }
        }
        UserCommand::List { json } => {
            let users = context
                .store
                .list_users(&Listing::everything())
                .await?
                .items;
            if json {
                print_json(serde_json::to_value(&users)?)?;
            } else {
                for user in users {
                    let state = if user.disabled { " (disabled)" } else { "" };
                    println!("{}  {}{state}", user.id, user.username);
                }
            }
        }
        UserCommand::Remove { username } => {
            let user = accounts.user_by_username(&username).await?;
            accounts.remove_user(&user.id).await?;
            println!("removed user {username}");
            context.note_revocation();
        }
        UserCommand::Passwd {
            username,
            password_stdin,
        } => {
            require_password_stdin(password_stdin)?;
            let password = read_password()?;
            let user = accounts.user_by_username(&username).await?;
            accounts.set_password(&user.id, &password).await?;
            println!("changed the password of {username}; their sessions are revoked");
            context.note_revocation();
        }
        UserCommand::Disable { username } => {
            let user = accounts.user_by_username(&username).await?;
            accounts.set_disabled(&user.id, true).await?;
            println!("disabled {username}; their sessions are revoked");
            context.note_revocation();
        }
        UserCommand::Enable { username } => {
            let user = accounts.user_by_username(&username).await?;
            accounts.set_disabled(&user.id, false).await?;
            println!("enabled {username}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn client(command: ClientCommand, context: AdminContext) -> Result<ExitCode> {
    let accounts = context.accounts();
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
            let grants = grants
                .as_deref()
                .map(parse_grants)
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let (client, secret) = accounts
                .create_client(
                    &name,
                    client_type,
                    grants,
                    split_list(&scopes),
                    can_introspect,
                )
                .await?;
            if json {
                let mut value = json!({
                    "client_id": client.client_id,
                    "name": client.name,
                    "type": client.client_type,
                    "allowed_grants": client.allowed_grants,
                    "allowed_scopes": client.allowed_scopes,
                });
                if let Some(secret) = &secret {
                    value["client_secret"] = json!(secret);
                }
                print_json(value)?;
            } else {
                println!(
                    "created {} client {} ({})",
                    client.client_type.as_str(),
                    client.client_id,
                    client.name
                );
                if let Some(secret) = secret {
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
                allowed_grants: grants
                    .as_deref()
                    .map(parse_grants)
                    .transpose()
                    .map_err(anyhow::Error::msg)?,
                allowed_scopes: scopes.as_deref().map(split_list),
                disabled: (disable || enable).then_some(disable),
                can_introspect,
            };
            let client = accounts.update_client(&client_id, update).await?;
            print_json(serde_json::to_value(&client)?)?;
        }
        ClientCommand::List { json } => {
            let clients = context
                .store
                .list_clients(&Listing::everything())
                .await?
                .items;
            if json {
                print_json(serde_json::to_value(&clients)?)?;
            } else {
                for client in clients {
                    let state = if client.disabled { " (disabled)" } else { "" };
                    println!(
                        "{}  {}  {}{state}",
                        client.client_id,
                        client.client_type.as_str(),
                        client.name
                    );
                }
            }
        }
        ClientCommand::Remove { client_id } => {
            accounts.remove_client(&client_id).await?;
            println!("removed client {client_id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
