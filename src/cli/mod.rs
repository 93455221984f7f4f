//! The command line. `serve` is the default. The `user` and `client`
//! commands go through the running gateway's control socket when one
//! answers, so that revocations take effect there at once, and administer
//! the configured store directly otherwise ([`target`]). Passwords are read
//! from standard input, never from argv, where every user of the machine
//! could see them in `ps`.

mod commands;
mod reload;
mod target;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::config::{self, Config, ProcessEnvironment};
use crate::password::PasswordHasher;
use target::{Direct, Target};

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

    /// `text` (the default) or `json`: one JSON object per log line, for
    /// collectors. Wins over `logging.format` in the configuration.
    #[arg(long, global = true, env = "PORTCULLIS_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway (the default). SIGHUP re-reads the configuration.
    Serve {
        /// Take over the listening sockets of the gateway running on this
        /// data_dir (Pingora's graceful upgrade): start this, then send the
        /// old process SIGQUIT. No connection is refused meanwhile.
        #[arg(long)]
        upgrade: bool,
    },
    /// Ask the gateway running on this data_dir (found through
    /// `data_dir/portcullis.pid`) to re-read its configuration, after
    /// checking the file here. The gateway's log says what it applied.
    Reload {
        /// Signal without checking the file first: the gateway's
        /// environment may hold variables this shell does not.
        #[arg(long)]
        no_check: bool,
    },
    /// Check a configuration file; list every problem and exit non-zero if any.
    CheckConfig {
        /// The file to check (default: --config).
        file: Option<PathBuf>,
        /// Check that upstream servers are `host:port` without resolving
        /// them, for a file written for another network (a container's).
        /// Without it, a name that does not resolve here is a problem,
        /// although `serve` would start and keep looking it up.
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
    let json = match cli.log_format {
        Some(format) => format == LogFormat::Json,
        None => config::log_format(&cli.config) == config::LogFormatName::Json,
    };
    let _log_writer = init_logging(json);
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
fn init_logging(json: bool) -> crate::log_writer::FlushGuard {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = crate::log_writer::stderr();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if json {
        let _ = builder.event_format(crate::log_json::JsonLines).try_init();
    } else if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
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
    match cli.command.unwrap_or(Command::Serve { upgrade: false }) {
        Command::Serve { upgrade } => {
            let (config, config_hash) = config::load_hashed(&cli.config, &ProcessEnvironment)
                .map_err(|errors| anyhow::anyhow!("{}: {errors}", cli.config.display()))?;
            crate::app::serve(crate::app::Launch {
                config,
                config_hash,
                config_path: cli.config,
                upgrade,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Reload { no_check } => reload::reload(&cli.config, no_check),
        Command::CheckConfig { file, no_resolve } => {
            let path = file.unwrap_or(cli.config);
            let env: &dyn config::Environment = if no_resolve {
                &config::WithoutResolving
            } else {
                &ProcessEnvironment
            };
            match config::load(&path, env).and_then(|config| config.check_names_resolve(env)) {
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
            let password = commands::read_password()?;
            println!(
                "{}",
                bcrypt::hash(password, cost).context("cannot hash the password")?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::User(command) => admin(&cli.config, |target| commands::user(command, target)),
        Command::Client(command) => admin(&cli.config, |target| commands::client(command, target)),
    }
}

/// Runs an administrative command: through the gateway running on this
/// `data_dir` if one answers on its control socket, else on the
/// configured stores.
fn admin<F, Fut>(config_path: &Path, command: F) -> Result<ExitCode>
where
    F: FnOnce(Target) -> Fut,
    Fut: std::future::Future<Output = Result<ExitCode>>,
{
    let config = load_config(config_path)?;
    let socket = crate::control_socket::socket_path(&config.data_dir);
    let found = crate::control_socket::ControlClient::find(&socket).map_err(anyhow::Error::msg)?;
    let target = match found {
        Some(gateway) => Target::Running(gateway),
        None => {
            // Only the user store must be reachable; Redis only to revoke.
            crate::app::check_store(&config)?;
            Target::Direct(Box::new(Direct {
                store: crate::app::open_store(&config.store)?,
                tokens: crate::app::open_tokens(&config)?,
                hasher: PasswordHasher::new(config.oauth.bcrypt_cost, 1, 1),
                memory_tokens: matches!(config.tokens, config::TokenConfig::Memory { .. }),
            }))
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a runtime")?;
    runtime.block_on(command(target))
}
