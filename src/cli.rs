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

use crate::config::{self, Config, ProcessEnvironment};
use crate::password::PasswordHasher;
use crate::store::{Store, StoreError};

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
    /// Remove a user.
    Remove { username: String },
    /// Set a user's password, read from standard input.
    Passwd {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Create a public client.
    Add {
        name: String,
        #[arg(long)]
        json: bool,
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
    init_logging();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            // One line that says what to fix; the cause chain on the same line.
            eprintln!("portcullis: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
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
        Command::CheckConfig { file } => {
            let path = file.unwrap_or(cli.config);
            match config::load(&path, &ProcessEnvironment) {
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
        Command::User(command) => admin(&cli.config, |store, config| user(command, store, config)),
        Command::Client(command) => admin(&cli.config, |store, _| client(command, store)),
    }
}

/// Runs an administrative command against the configured store.
fn admin<F, Fut>(config_path: &Path, command: F) -> Result<ExitCode>
where
    F: FnOnce(Store, Config) -> Fut,
    Fut: std::future::Future<Output = Result<ExitCode>>,
{
    let config = load_config(config_path)?;
    if let config::StoreConfig::Mongodb { .. } = config.store {
        crate::app::check_backends(&config)?;
    }
    let store = crate::app::open_store(&config.store)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a runtime")?;
    runtime.block_on(command(store, config))
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

fn store_error(error: StoreError) -> anyhow::Error {
    anyhow::anyhow!("{error}")
}

async fn user(command: UserCommand, store: Store, config: Config) -> Result<ExitCode> {
    let hasher = PasswordHasher::new(config.oauth.bcrypt_cost, 1, 1);
    match command {
        UserCommand::Add {
            username,
            password_stdin,
            json,
        } => {
            require_password_stdin(password_stdin)?;
            let password = read_password()?;
            let hash = hasher.hash(&password).await?;
            let user = store
                .create_user(&username, &hash)
                .await
                .map_err(store_error)?;
            if json {
                print_json(json!({"id": user.id, "username": user.username}))?;
            } else {
                println!("created user {} (id {})", user.username, user.id);
            }
        }
        UserCommand::List { json } => {
            let users = store.list_users().await.map_err(store_error)?;
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
            if !store.remove_user(&username).await.map_err(store_error)? {
                bail!("no user named `{username}`");
            }
            println!("removed user {username}");
        }
        UserCommand::Passwd {
            username,
            password_stdin,
        } => {
            require_password_stdin(password_stdin)?;
            let password = read_password()?;
            let hash = hasher.hash(&password).await?;
            if !store
                .set_password(&username, &hash)
                .await
                .map_err(store_error)?
            {
                bail!("no user named `{username}`");
            }
            println!("changed the password of {username}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn client(command: ClientCommand, store: Store) -> Result<ExitCode> {
    match command {
        ClientCommand::Add { name, json } => {
            let client = store.create_client(&name).await.map_err(store_error)?;
            if json {
                print_json(
                    json!({"client_id": client.client_id, "name": client.name, "type": client.client_type}),
                )?;
            } else {
                println!("created client {} ({})", client.client_id, client.name);
            }
        }
        ClientCommand::List { json } => {
            let clients = store.list_clients().await.map_err(store_error)?;
            if json {
                print_json(serde_json::to_value(&clients)?)?;
            } else {
                for client in clients {
                    println!(
                        "{}  {}  {}",
                        client.client_id,
                        client.client_type.as_str(),
                        client.name
                    );
                }
            }
        }
        ClientCommand::Remove { client_id } => {
            if !store.remove_client(&client_id).await.map_err(store_error)? {
                bail!("no client with id `{client_id}`");
            }
            println!("removed client {client_id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
