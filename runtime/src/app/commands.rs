//! The app's own commands beside the built-in ones: [`App::command`] and [`App::seed`], run as
//! `app NAME [ARGS…]` and listed in the binary's `--help`.

use super::*;

/// What an app command gets: the app's database, its settings, and the words after its name.
pub struct CommandContext {
    db: Option<DatabaseConnection>,
    /// The words after the command's name, as typed.
    pub args: Vec<String>,
}

impl CommandContext {
    /// The app's database, or an error saying the app has none ([`App::database`]).
    pub fn db(&self) -> Result<DatabaseConnection, crate::Error> {
        self.db
            .clone()
            .ok_or_else(|| crate::Error::internal("this app has no database (App::database)"))
    }

    /// The one argument the command takes, or an error naming what it expects.
    pub fn one_arg(&self, what: &str) -> Result<&str, crate::Error> {
        match self.args.as_slice() {
            [one] => Ok(one),
            _ => Err(crate::Error::bad_request(format!(
                "expected one argument: {what} (got {})",
                self.args.len()
            ))),
        }
    }
}

type CommandFn =
    Arc<dyn Fn(CommandContext) -> BoxFuture<'static, Result<(), crate::Error>> + Send + Sync>;

/// One command of the app's own.
#[derive(Clone)]
pub(super) struct AppCommand {
    pub(super) name: &'static str,
    pub(super) help: &'static str,
    pub(super) run: CommandFn,
}

/// The built-in commands' names, which an app command may not take.
pub(super) const BUILT_IN: &[&str] = &[
    "serve",
    "routes",
    "migrate",
    "createsuperuser",
    "changepassword",
    "settings",
    "jobs",
    "help",
];

impl App {
    /// Adds a command of the app's own: `app NAME [ARGS…]` runs `run` with the database and
    /// the words after the name; `--help` lists it with `help`. What it prints is up to it; an
    /// `Err` is printed as `error: …` with exit code 1.
    ///
    /// ```no_run
    /// # async fn ban(_db: ferrule::db::sea_orm::DatabaseConnection, _name: &str) -> Result<(), ferrule::Error> { Ok(()) }
    /// ferrule::App::new().command("ban", "Ban USER from their next request on", |cx| async move {
    ///     let user = cx.one_arg("USER")?;
    ///     ban(cx.db()?, user).await?;
    ///     println!("{user}: banned");
    ///     Ok(())
    /// });
    /// ```
    pub fn command<F, Fut>(mut self, name: &'static str, help: &'static str, run: F) -> Self
    where
        F: Fn(CommandContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), crate::Error>> + Send + 'static,
    {
        self.commands.push(AppCommand {
            name,
            help,
            run: Arc::new(move |cx| Box::pin(run(cx))),
        });
        self
    }

    /// The app's seed data: `app seed` runs `run` (after `migrate`), e.g. the rows a demo or a
    /// fresh development database needs.
    pub fn seed<F, Fut>(self, run: F) -> Self
    where
        F: Fn(CommandContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), crate::Error>> + Send + 'static,
    {
        self.command(
            "seed",
            "Fill the database with the app's seed data (run `migrate` first)",
            run,
        )
    }

    /// Checks the app's commands: no built-in name, none twice.
    pub(super) fn check_commands(&self) -> Result<(), String> {
        for (i, c) in self.commands.iter().enumerate() {
            if BUILT_IN.contains(&c.name) {
                return Err(format!(
                    "app command `{}` has a built-in command's name",
                    c.name
                ));
            }
            if self.commands[..i].iter().any(|o| o.name == c.name) {
                return Err(format!("app command `{}` is added twice", c.name));
            }
        }
        Ok(())
    }

    /// Runs app command `command` with `args`.
    pub(super) async fn run_command(&self, command: &AppCommand, args: Vec<String>) -> ExitCode {
        let cx = CommandContext {
            db: self.db.clone(),
            args,
        };
        match (command.run)(cx).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {}: {e}", command.name);
                ExitCode::FAILURE
            }
        }
    }
}
