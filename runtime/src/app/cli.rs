//! The app binary's command line: `serve`, `routes`, `migrate`, `createsuperuser`,
//! `changepassword`, `settings`, and the app's own commands.

use super::*;

impl App {
    /// An app binary's whole `main`: reads the settings ([`Layers::load`]), opens the database
    /// (`database_url` from them, else `default_url`, else the SQLite file
    /// [`crate::db::DEFAULT_SQLITE_FILE`]), builds the app on it with `build`, and runs the
    /// command line ([`App::run_cli`]). Settings that do not load are said on stderr with exit
    /// code 2; a database that cannot be opened, or a build that fails, with exit code 1.
    pub async fn main_on_database<F, Fut>(default_url: Option<&str>, build: F) -> ExitCode
    where
        F: FnOnce(DatabaseConnection) -> Fut,
        Fut: Future<Output = Result<Self, crate::Error>>,
    {
        let (layers, url) = match Layers::load().and_then(|l| Ok((l.settings()?.database_url, l))) {
            Ok((url, layers)) => (layers, url),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        // The app's default SQLite file lives in a dist directory's data/, wherever the
        // binary is started from; a URL the settings give is used as it is.
        let default_url = default_url.map(crate::db::at_home);
        let db = match crate::db::open(url.as_deref().or(default_url.as_deref())).await {
            Ok(db) => db,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        match build(db).await {
            Ok(mut app) => {
                app.layers = Some(layers);
                app.run_cli().await
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    }

    /// The app binary's command line: `serve`, `routes`, `migrate`, `createsuperuser`,
    /// `changepassword`, and the app's own ([`App::command`], [`App::seed`]), all in `--help`.
    pub async fn run_cli(mut self) -> ExitCode {
        use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
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
            /// Print the HTTP routes, reserved paths, states with their handlers, and middleware.
            Routes {
                /// As JSON, for scripts.
                #[arg(long)]
                json: bool,
            },
            /// Create or update the database tables (the runtime's, then the app's); `migrate
            /// status`, `migrate down [N]`, `migrate fresh --yes`.
            Migrate {
                #[command(subcommand)]
                action: Option<MigrateAction>,
            },
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
            /// Durable jobs: `jobs list [--state STATE]`, `jobs retry ID…|--dead`, `jobs purge
            /// [--state done|dead] [--older-than-hours H]`, `jobs work [--concurrency N]` (a
            /// worker process, no HTTP).
            Jobs {
                #[command(subcommand)]
                action: super::jobs::JobsAction,
            },
            /// Print every setting with the layer it came from (default, Ferrule.toml,
            /// Ferrule.<env>.toml, .env, FERRULE_*), secrets masked.
            Settings {
                /// As JSON, for scripts.
                #[arg(long)]
                json: bool,
            },
        }
        #[derive(Subcommand)]
        enum MigrateAction {
            /// List every migration, the runtime's then the app's, applied or pending.
            Status,
            /// Roll back the app's last N migrations (default 1); Ferrule's own tables stay.
            Down {
                /// How many.
                #[arg(default_value_t = 1)]
                steps: u32,
            },
            /// Roll back every migration and apply them again: every table starts empty.
            Fresh {
                /// Yes, drop everything.
                #[arg(long)]
                yes: bool,
            },
        }
        if let Err(e) = self.check_commands() {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        let mut command = Cli::command();
        for c in &self.commands {
            command = command.subcommand(
                clap::Command::new(c.name).about(c.help).arg(
                    clap::Arg::new("args")
                        .num_args(0..)
                        .trailing_var_arg(true)
                        .allow_hyphen_values(true),
                ),
            );
        }
        let matches = command.get_matches();
        match self.resolved_settings() {
            Ok(settings) => crate::logging::init(settings.log_format),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
        if let Some((name, sub)) = matches.subcommand()
            && let Some(own) = self.commands.iter().find(|c| c.name == name).cloned()
        {
            let args = sub
                .get_many::<String>("args")
                .map(|words| words.cloned().collect())
                .unwrap_or_default();
            return self.run_command(&own, args).await;
        }
        let cli = match Cli::from_arg_matches(&matches) {
            Ok(cli) => cli,
            Err(e) => e.exit(),
        };
        match cli.command {
            Command::Serve => match self.serve().await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            },
            Command::Migrate { action } => {
                let done = match action {
                    None => self
                        .migrate()
                        .await
                        .map(|()| "migrations applied\n".to_owned()),
                    Some(MigrateAction::Status) => self
                        .migration_status()
                        .await
                        .map(|rows| migrate::status_table(&rows)),
                    Some(MigrateAction::Down { steps }) => self
                        .migrate_down(steps)
                        .await
                        .map(|()| format!("rolled back the app's last {steps} migration(s)\n")),
                    Some(MigrateAction::Fresh { yes: false }) => {
                        eprintln!(
                            "error: `migrate fresh` empties every table, all data is lost: add --yes"
                        );
                        return ExitCode::from(2);
                    }
                    Some(MigrateAction::Fresh { yes: true }) => {
                        self.migrate_fresh().await.map(|()| {
                            "rolled every migration back and applied them again\n".to_owned()
                        })
                    }
                };
                match done {
                    Ok(said) => {
                        print!("{said}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: migrate failed: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
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
            Command::Jobs { action } => self.jobs_command(action).await,
            Command::Settings { json } => self.settings_command(json),
            Command::Routes { json } => match self.registry() {
                Ok(registry) => {
                    let doc = self.routes_doc(&registry);
                    if json {
                        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
                    } else {
                        print!("{}", routes_table(&doc));
                    }
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
    /// `app settings`: the merged settings with their sources, as a table or as JSON.
    fn settings_command(&self, json: bool) -> ExitCode {
        // Settings the app gave itself (`App::settings`) are not the layers' to explain.
        let layers = self
            .layers
            .as_ref()
            .filter(|layers| layers.settings().ok().as_ref() == self.settings.as_ref());
        let (entries, report) = match layers {
            Some(layers) => match layers.entries().and_then(|e| Ok((e, layers.report()?))) {
                Ok(done) => done,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            },
            None => {
                let entries = self
                    .settings
                    .as_ref()
                    .map(Settings::entries)
                    .unwrap_or_default();
                let text = entries
                    .iter()
                    .map(|e| format!("  {}  {}  {}\n", e.key, e.value, e.source))
                    .collect();
                (entries, text)
            }
        };
        if json {
            let env = layers.and_then(Layers::environment);
            let doc = json!({
                "environment": env.map(|e| &e.name),
                "files": layers.map(Layers::files).unwrap_or_default(),
                "settings": entries,
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        } else {
            print!("{report}");
        }
        ExitCode::SUCCESS
    }

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

/// The routes document as a person reads it: one section per kind, one line per entry.
fn routes_table(doc: &serde_json::Value) -> String {
    let words = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = String::new();
    let mut section = |title: &str, lines: Vec<String>| {
        out.push_str(title);
        out.push('\n');
        if lines.is_empty() {
            out.push_str("  (none)\n");
        }
        for line in lines {
            out.push_str("  ");
            out.push_str(&line);
            out.push('\n');
        }
        out.push('\n');
    };
    section("HTTP routes (behind the middleware)", words(&doc["http"]));
    section("Reserved paths (Ferrule's own)", words(&doc["reserved"]));
    let states = doc["states"].as_object().cloned().unwrap_or_default();
    let width = states.keys().map(String::len).max().unwrap_or(0);
    section(
        "States and their handlers (events are `state.handler`)",
        states
            .iter()
            .map(|(name, handlers)| format!("{name:width$}  {}", words(handlers).join(", ")))
            .collect(),
    );
    section("Middleware (outermost first)", words(&doc["middleware"]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_routes_table_has_a_line_per_entry_and_says_when_a_section_is_empty() {
        let doc = json!({
            "http": [],
            "reserved": ["/_event", "/_health"],
            "states": {"counter_state": ["add", "reset"], "auth_state": ["refresh"]},
            "middleware": ["session", "timing"],
        });
        let table = routes_table(&doc);
        assert!(
            table.contains("HTTP routes (behind the middleware)\n  (none)\n"),
            "{table}"
        );
        assert!(table.contains("  /_health\n"), "{table}");
        assert!(table.contains("  counter_state  add, reset\n"), "{table}");
        assert!(table.contains("  auth_state     refresh\n"), "{table}");
        assert!(
            table.contains("Middleware (outermost first)\n  session\n  timing\n"),
            "{table}"
        );
    }
}
