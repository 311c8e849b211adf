//! The app binary's command line: `serve`, `routes`, `migrate`, `createsuperuser`,
//! `changepassword`.

use super::*;

impl App {
    /// An app binary's whole `main`: opens the database ([`crate::db::connect_from_env`] with
    /// `default_url`), builds the app on it with `build`, and runs the command line
    /// ([`App::run_cli`]). A database that cannot be opened, or a build that fails, is said on
    /// stderr with exit code 1.
    pub async fn main_on_database<F, Fut>(default_url: Option<&str>, build: F) -> ExitCode
    where
        F: FnOnce(DatabaseConnection) -> Fut,
        Fut: Future<Output = Result<Self, crate::Error>>,
    {
        let db = match crate::db::connect_from_env(default_url).await {
            Ok(db) => db,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        match build(db).await {
            Ok(app) => app.run_cli().await,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    }

    /// The app binary's command line: `serve`, `routes`, `migrate`, `createsuperuser`,
    /// `changepassword`.
    pub async fn run_cli(mut self) -> ExitCode {
        use clap::{Parser, Subcommand};
        #[derive(Parser)]
        #[command(about = "A Ferrule app")]
        struct Cli {
            #[command(subcommand)]
            command: Command,
        }
        #[derive(Subcommand)]
        enum Command {
            /// Serve HTTP and events on FERRULE_ADDR (default 127.0.0.1:3000).
            Serve,
            /// Print the HTTP routes, states and handlers as JSON.
            Routes,
            /// Create or update the database tables (the runtime's, then the app's).
            Migrate,
            /// Create a superuser; the password is asked twice without echo at a terminal, or
            /// comes from FERRULE_SUPERUSER_PASSWORD or the first line of a piped stdin.
            Createsuperuser {
                /// Login name.
                #[arg(long)]
                username: String,
                /// E-mail address.
                #[arg(long)]
                email: Option<String>,
            },
            /// Set a user's password; asked for like createsuperuser's.
            Changepassword {
                /// Login name.
                username: String,
            },
        }
        crate::init_tracing();
        let cli = Cli::parse();
        if let Err(e) = self.resolved_settings() {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        match cli.command {
            Command::Serve => match self.serve().await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            },
            Command::Migrate => match self.migrate().await {
                Ok(()) => {
                    println!("migrations applied");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: migrate failed: {e}");
                    ExitCode::FAILURE
                }
            },
            Command::Createsuperuser { username, email } => {
                self.account_command(|auth, password| async move {
                    auth.create_user(crate::auth::NewUser {
                        username: username.clone(),
                        email,
                        password,
                        is_staff: true,
                        is_superuser: true,
                    })
                    .await
                    .map(|u| format!("superuser `{}` created", u.username))
                })
                .await
            }
            Command::Changepassword { username } => {
                self.account_command(|auth, password| async move {
                    auth.set_password(&username, &password)
                        .await
                        .map(|()| format!("password of `{username}` changed"))
                })
                .await
            }
            Command::Routes => match self.registry() {
                Ok(registry) => {
                    let doc = self.routes_doc(&registry);
                    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            },
        }
    }
}

impl App {
    async fn account_command<F, Fut>(&self, f: F) -> ExitCode
    where
        F: FnOnce(Auth, String) -> Fut,
        Fut: Future<Output = Result<String, crate::auth::AuthError>>,
    {
        let Some(db) = self.db.clone() else {
            eprintln!("error: this app has no database (App::database)");
            return ExitCode::from(2);
        };
        let password = match crate::password_prompt::read_password() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        match f(Auth::new(db), password).await {
            Ok(msg) => {
                println!("{msg}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    }
}
