//! Typed settings, layered: defaults, `Ferrule.toml`, `Ferrule.<environment>.toml`, `.env`,
//! then the environment (`FERRULE_*`, `DATABASE_URL`, `REDIS_URL`), each layer over the one
//! before; the app's own keys live beside them (`[app]`, `APP_*`).
//!
//! The names mirror reflex-django's (`event_middleware_skip`, `auto_redirect_from_middleware`,
//! `event_post_from_payload`, `run_middleware_chain`). An unknown key in a file or an unknown
//! `FERRULE_*` variable is an error at startup that names the key and where it was written: a
//! typo must not silently fall back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod app_settings;
mod home;
mod ip_net;
mod layers;
mod list;
mod optional;
mod report;
mod sources;
mod vars;

#[cfg(test)]
mod layering_tests;

pub use app_settings::AppSettings;
pub use home::{data_dir, dist_dir};
pub(crate) use ip_net::IpNet;
pub use layers::{Environment, Layers, Lookup};
pub use report::Entry;

/// How much of the bridge an event goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// The whole middleware chain (minus `event_middleware_skip`).
    #[default]
    Full,
    /// Only the middleware registered for the auth tier (session and user).
    AuthOnly,
    /// No middleware chain at all: the handler runs with an anonymous user. Written `none` in
    /// settings (the variant is not called `None`: `Some(Tier::None)` read like `Option`'s).
    #[serde(rename = "none", alias = "no_chain")]
    NoChain,
}

impl std::str::FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "full" => Ok(Self::Full),
            "auth_only" => Ok(Self::AuthOnly),
            "none" | "no_chain" => Ok(Self::NoChain),
            other => Err(format!(
                "unknown tier `{other}` (expected full, auth_only or none)"
            )),
        }
    }
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One readable line per message, coloured on a terminal.
    #[default]
    Text,
    /// One JSON object per line, with the fields of the current span and of every span
    /// around it (an event's `ferrule.event`, a request's `http.request`).
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!(
                "unknown log format `{other}` (expected text or json)"
            )),
        }
    }
}

/// Every setting of a Ferrule app, with the defaults a new app gets.
///
/// A list can also be written as one comma-separated string (`FERRULE_LANGUAGES=en,fr`), and a
/// number or a boolean as a string (`"yes"`, `"on"`, `"1"` are true): environment variables are
/// strings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address `serve` listens on.
    pub addr: SocketAddr,
    /// Names of middleware that do not run on socket events (default: `["csrf"]`).
    #[serde(deserialize_with = "list::deserialize")]
    pub event_middleware_skip: Vec<String>,
    /// A 3xx from middleware on an event becomes a client-side `_redirect` and the handler is
    /// skipped; when `false` the handler runs and sees the response as `ctx.response()`.
    pub auto_redirect_from_middleware: bool,
    /// Expose the event payload to middleware as form data of a POST request.
    pub event_post_from_payload: bool,
    /// `false` turns the chain off for every event: handlers see an anonymous user.
    pub run_middleware_chain: bool,
    /// Tier of states that do not choose one.
    pub default_tier: Tier,
    /// Peers whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed (IPs or CIDR blocks).
    #[serde(deserialize_with = "list::deserialize")]
    pub trusted_proxies: Vec<String>,
    /// Largest socket message in bytes.
    pub max_event_bytes: usize,
    /// Milliseconds between the server's heartbeat pings (Engine.IO `pingInterval`). Lower it
    /// when a proxy drops idle connections sooner than every 25 s.
    pub ping_interval_ms: u64,
    /// Milliseconds the server waits for a pong before dropping the socket (`pingTimeout`).
    pub ping_timeout_ms: u64,
    /// Milliseconds a stopping server (SIGTERM) gives events already accepted, running or
    /// queued, to finish and be answered; what is left then is resent by the clients to the
    /// next server. Background tasks get as long again.
    pub shutdown_grace_ms: u64,
    /// Origins (`https://shop.example`) allowed to open the socket; empty means same origin
    /// only (the `Origin` header must match `Host`).
    #[serde(deserialize_with = "list::deserialize")]
    pub allowed_origins: Vec<String>,
    /// Where guards send anonymous users (`?next=` is added).
    pub login_url: String,
    /// Where the admin's pages are (feature `admin`).
    pub admin_path: String,
    /// The languages the app's pages come in (language tags, `en`, `fr`, `pt-BR`), the default
    /// first; each has a catalogue under `locales/<tag>/` (see `ferrule::i18n`).
    #[serde(deserialize_with = "list::deserialize")]
    pub languages: Vec<String>,
    /// Name of the session cookie.
    pub session_cookie: String,
    /// Mark the session and CSRF cookies `Secure` (serve over HTTPS).
    pub secure_cookies: bool,
    /// Whether `POST /_auth/register` creates accounts.
    pub allow_register: bool,
    /// Whether registering with an e-mail another account has says so (400). Off (the
    /// default), the account is made without the e-mail and the answer is the same as for a
    /// free one, so registration does not tell who has an account here.
    pub register_reveals_taken_email: bool,
    /// Milliseconds a loaded session and user may be reused for later events (0: read them on
    /// every event). Changes made by this process apply at once; another process's changes
    /// (a second node, SQL by hand) can go unseen this long.
    pub auth_cache_ms: u64,
    /// Largest uploaded file in bytes.
    pub upload_max_file_bytes: u64,
    /// Largest upload request (all files) in bytes.
    pub upload_max_request_bytes: u64,
    /// Where uploads are spooled while their handler runs (default: the system temp dir).
    #[serde(deserialize_with = "optional::deserialize")]
    pub upload_dir: Option<PathBuf>,
    /// Most files (multipart parts) in one upload request.
    pub upload_max_files: usize,
    /// Most Socket.IO transports open at once from one client address (as `trusted_proxies`
    /// resolves it), counted from the first Engine.IO request, connected or not; more are
    /// refused with 429. 0: no limit.
    pub max_sockets_per_client: usize,
    /// Most tabs one session keeps states for; past it the states of its longest-idle tab
    /// without a socket are dropped (that tab starts afresh if it comes back). 0: no limit.
    pub max_tabs_per_session: usize,
    /// Most tabs one client address keeps states for, sessions or not; as above. 0: no limit.
    pub max_tabs_per_client: usize,
    /// Largest state, in bytes of its JSON: a handler's change that makes one larger is not
    /// kept (the state stays as it was and the tab is told). 0: no limit.
    pub max_state_bytes: usize,
    /// Milliseconds a transport may stay open without sending its Socket.IO CONNECT.
    pub connect_timeout_ms: u64,
    /// How many leading bits of an IPv6 address make one client address for the per-address
    /// limits (socket cap, login throttle): 64, a customer's network, by default; 128 counts
    /// each address alone.
    pub ipv6_prefix_len: u8,
    /// Milliseconds a client has to send a request's head, and the most a kept-alive
    /// connection may sit idle before its next request; then it is closed.
    pub header_read_timeout_ms: u64,
    /// Milliseconds a request body (a form, JSON) may take to arrive in whole; a body that
    /// sends nothing for this long is given up as well, uploads included.
    pub body_timeout_ms: u64,
    /// Milliseconds an upload's body may take in whole.
    pub upload_timeout_ms: u64,
    /// Most bytes of answers a socket may have sent that its client has not confirmed reading
    /// (the client acks a marker as it reads it); past it, answers wait for the client, and a
    /// client that confirms nothing for the heartbeat's time is disconnected. A push may be a
    /// 1,024th of it at most (a larger state push goes as `_resync`). 0: no limit.
    pub max_unread_bytes: u64,
    /// The `Content-Security-Policy` of HTML answers, `{nonce}` standing for the request's nonce
    /// (the page's scripts carry it). Empty: none. `frame-ancestors 'none'` is added with
    /// `header_frame_deny`.
    pub content_security_policy: String,
    /// Send `X-Content-Type-Options: nosniff` on every answer.
    pub header_nosniff: bool,
    /// Forbid framing the site (`X-Frame-Options: DENY`, CSP `frame-ancestors 'none'`):
    /// clickjacking protection.
    pub header_frame_deny: bool,
    /// The `Referrer-Policy` header (empty: none).
    pub referrer_policy: String,
    /// `Strict-Transport-Security` max-age in seconds, sent when `secure_cookies` is on (0: none).
    pub hsts_seconds: u64,
    /// Host names the server answers to besides the address it listens on and the loopback
    /// names (`localhost`, `127.0.0.1`, `::1`): `shop.example`, `.example.org` for a domain and
    /// its subdomains, `*` for any. A request or socket with another `Host` gets 400, which
    /// stops DNS-rebinding pages from talking to the app with its users' cookies.
    #[serde(deserialize_with = "list::deserialize")]
    pub allowed_hosts: Vec<String>,
    /// Production mode: `/_all_routes` is off and errors do not list a state's handlers.
    /// Unset: on in builds without debug assertions (`--release`), off otherwise.
    pub production: Option<bool>,
    /// The app's database (`DATABASE_URL`); unset, the SQLite file `ferrule.sqlite3` in the
    /// working directory (or the app's own default, [`App::main_on_database`](crate::App::main_on_database)).
    #[serde(deserialize_with = "optional::deserialize")]
    pub database_url: Option<String>,
    /// The Redis server of an app that keeps states or broadcasts there (`REDIS_URL`); Ferrule
    /// connects to none by itself, the app reads it.
    #[serde(deserialize_with = "optional::deserialize")]
    pub redis_url: Option<String>,
    /// How log lines are written: `text` or `json` (one object per line, with span fields).
    pub log_format: LogFormat,
    /// Where `serve` offers Prometheus metrics (`GET /metrics`), an address of its own that
    /// only the scraper should reach; unset (the default): no metrics endpoint.
    #[serde(deserialize_with = "optional::deserialize")]
    pub metrics_addr: Option<SocketAddr>,
    /// The browser logs each event it sends, its answer and its round trip to the console.
    /// For development: `ferrule dev` turns it on.
    pub browser_log: bool,
    /// Durable jobs this process runs at once ([`App::job`](crate::App::job)); 0: this process
    /// runs none (it only enqueues, another process works, `app jobs work`).
    pub jobs_concurrency: usize,
    /// Milliseconds an idle worker waits before looking for due jobs again (jobs enqueued by
    /// this process wake it at once).
    pub jobs_poll_ms: u64,
    /// Milliseconds a worker's claim on a job lasts unless renewed (it is, every third of it,
    /// while the job runs): how soon a job whose process died is run again.
    pub jobs_lease_ms: u64,
    /// Milliseconds a done job is kept (for `jobs list`) before the workers delete it; 0: kept
    /// until purged. Dead jobs are kept until retried or purged.
    pub jobs_keep_done_ms: u64,
    /// Where the durable jobs are kept: `database` (the app's, the default: a job can be
    /// enqueued in a transaction) or `redis` (the `redis_url` one, through
    /// [`App::with_redis_from_settings`](crate::App::with_redis_from_settings)).
    pub jobs_store: JobsStore,
    /// Where the app's mail goes ([`crate::mail`]): `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS), `smtps://user:pass@host:465` (TLS from the start), `smtp://localhost:1025`
    /// (no TLS: a relay on this machine), `console` (printed: development), `file:DIR` (one JSON
    /// file per message: browser tests), `memory`. Unset: `console`, and in production a
    /// warning at startup that no mail leaves.
    #[serde(deserialize_with = "optional::deserialize")]
    pub mail_url: Option<String>,
    /// The sender of the app's mail: `noreply@shop.example` or `Shop <noreply@shop.example>`.
    pub mail_from: String,
    /// The site's address in the links of its mail (`https://shop.example`); unset, the
    /// address the request came to (its `Host`, which `allowed_hosts` checked).
    #[serde(deserialize_with = "optional::deserialize")]
    pub site_url: Option<String>,
    /// The app's page with the new-password form, which a password-reset link opens with
    /// `?token=…` (`ferrule::ui::PasswordResetForm`).
    pub password_reset_url: String,
    /// E-mail confirmation of new accounts: `off`, `optional` (a link is sent; the account
    /// works before it is followed) or `required` (no login until it is).
    pub email_verification: EmailVerification,
    /// Milliseconds the links of account mail (password reset, e-mail confirmation) work.
    pub account_link_ttl_ms: u64,
}

/// Where the durable jobs are kept ([`Settings::jobs_store`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobsStore {
    /// The app's database (`ferrule_jobs`).
    #[default]
    Database,
    /// Redis, at `redis_url`.
    Redis,
}

/// Whether new accounts confirm their e-mail address ([`Settings::email_verification`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailVerification {
    /// No confirmation mail.
    Off,
    /// A confirmation link is sent at registration; the account works without it.
    #[default]
    Optional,
    /// A confirmation link is sent, and logging in waits for it to be followed.
    Required,
}

/// The Content-Security-Policy Ferrule's pages satisfy (`{nonce}`: the request's nonce):
/// scripts only with the nonce and what they load (`strict-dynamic`), WebAssembly compiled,
/// everything else from this site, inline styles allowed (components set `style` attributes),
/// no plugins, no `<base>`, forms posted only here.
pub const DEFAULT_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; \
    script-src 'nonce-{nonce}' 'strict-dynamic' 'wasm-unsafe-eval'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; \
    base-uri 'none'; form-action 'self'";

impl Default for Settings {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            event_middleware_skip: vec!["csrf".to_owned()],
            auto_redirect_from_middleware: true,
            event_post_from_payload: false,
            run_middleware_chain: true,
            default_tier: Tier::Full,
            trusted_proxies: Vec::new(),
            max_event_bytes: 1 << 20,
            ping_interval_ms: 25_000,
            ping_timeout_ms: 20_000,
            shutdown_grace_ms: 10_000,
            allowed_origins: Vec::new(),
            login_url: "/login".to_owned(),
            admin_path: "/admin".to_owned(),
            languages: vec!["en".to_owned()],
            session_cookie: "ferrule_session".to_owned(),
            secure_cookies: false,
            allow_register: true,
            register_reveals_taken_email: false,
            auth_cache_ms: 1000,
            upload_max_file_bytes: 10 << 20,
            upload_max_request_bytes: 50 << 20,
            upload_dir: None,
            upload_max_files: 16,
            max_sockets_per_client: 256,
            max_tabs_per_session: 64,
            max_tabs_per_client: 1024,
            max_state_bytes: 1 << 20,
            connect_timeout_ms: 5_000,
            ipv6_prefix_len: 64,
            header_read_timeout_ms: 15_000,
            body_timeout_ms: 30_000,
            upload_timeout_ms: 600_000,
            max_unread_bytes: 8 << 20,
            content_security_policy: DEFAULT_CONTENT_SECURITY_POLICY.to_owned(),
            header_nosniff: true,
            header_frame_deny: true,
            referrer_policy: "same-origin".to_owned(),
            hsts_seconds: 365 * 24 * 3600,
            allowed_hosts: Vec::new(),
            production: None,
            database_url: None,
            redis_url: None,
            log_format: LogFormat::Text,
            metrics_addr: None,
            browser_log: false,
            jobs_concurrency: 4,
            jobs_poll_ms: 1000,
            jobs_lease_ms: 60_000,
            jobs_keep_done_ms: 7 * 24 * 3600 * 1000,
            mail_url: None,
            mail_from: "webmaster@localhost".to_owned(),
            site_url: None,
            password_reset_url: "/reset-password".to_owned(),
            email_verification: EmailVerification::Optional,
            jobs_store: JobsStore::Database,
            account_link_ttl_ms: 24 * 3600 * 1000,
        }
    }
}

/// Whether `url` names one of the mail transports (`crate::mail::Transport::parse` reads the
/// rest of it when the app is built).
fn is_mail_url(url: &str) -> bool {
    matches!(url, "console" | "memory")
        || url.starts_with("smtp://")
        || url.starts_with("smtps://")
        || url
            .strip_prefix("file:")
            .is_some_and(|dir| !dir.trim_start_matches('/').is_empty())
}

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A settings file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A settings file (or `.env`) is not valid: not TOML, an unknown key, a wrong type; the
    /// message names the key (or the variable, in `.env`).
    #[error("invalid {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A `FERRULE_*` (or `APP_*`, `DATABASE_URL`, `REDIS_URL`) variable is unknown or its
    /// value does not parse.
    #[error("invalid environment variable {name}: {message}")]
    Env {
        /// The variable.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A value parses but cannot work, or a key is missing; `key` is its name in the files.
    #[error("invalid setting {key}: {message}")]
    Invalid {
        /// The key (`languages`, `app.mail.host`).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A trusted proxy entry is neither an IP nor a CIDR block.
    #[error(
        "invalid trusted_proxies entry `{0}`: expected an IP address or a CIDR block like 10.0.0.0/8"
    )]
    Proxy(String),
}

impl Settings {
    /// Loads the layers ([`Layers::load`]: `Ferrule.toml`, `Ferrule.<environment>.toml`,
    /// `.env`, the environment) and makes Ferrule's settings of them.
    pub fn load() -> Result<Self, SettingsError> {
        Layers::load()?.settings()
    }

    /// Parses a settings file alone (no other layer); unknown keys are errors, an `[app]`
    /// table is left to the app.
    pub fn from_file(path: &Path) -> Result<Self, SettingsError> {
        Layers::of_file(path)?.settings()
    }

    /// Parses settings from TOML text alone; the error message names the offending key. An
    /// `[app]` table is left to the app.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        Layers::of_toml(text)
            .and_then(|layers| layers.settings())
            .map_err(|e| match e {
                SettingsError::File { message, .. } => message,
                other => other.to_string(),
            })
    }

    /// Applies `FERRULE_<KEY>` (and `DATABASE_URL`, `REDIS_URL`) variables from `vars` over
    /// these settings; unknown `FERRULE_*` names are errors.
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), SettingsError> {
        *self = Layers::over(self, vars.into_iter().collect())?.settings()?;
        Ok(())
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |key: &str, message: &str| SettingsError::Invalid {
            key: key.to_owned(),
            message: message.to_owned(),
        };
        if !self
            .content_security_policy
            .bytes()
            .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
        {
            return Err(invalid(
                "content_security_policy",
                "must be printable ASCII (it is sent as a header)",
            ));
        }
        for (name, ms) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("body_timeout_ms", self.body_timeout_ms),
            ("upload_timeout_ms", self.upload_timeout_ms),
            ("ping_interval_ms", self.ping_interval_ms),
            ("ping_timeout_ms", self.ping_timeout_ms),
            ("jobs_poll_ms", self.jobs_poll_ms),
            ("jobs_lease_ms", self.jobs_lease_ms),
            ("account_link_ttl_ms", self.account_link_ttl_ms),
        ] {
            if ms == 0 {
                return Err(invalid(name, "must be more than 0 milliseconds"));
            }
        }
        if self.languages.is_empty() {
            return Err(invalid(
                "languages",
                "must name at least one language (the default first)",
            ));
        }
        if let Some(bad) = self
            .languages
            .iter()
            .find(|l| l.parse::<unic_langid::LanguageIdentifier>().is_err())
        {
            return Err(invalid(
                "languages",
                &format!("`{bad}` is not a language tag (`en`, `fr`, `pt-BR`)"),
            ));
        }
        if !self.admin_path.starts_with('/') || self.admin_path.contains(['?', '#']) {
            return Err(invalid(
                "admin_path",
                "must be a path starting with `/`, without `?` or `#`",
            ));
        }
        if !self.password_reset_url.starts_with('/') || self.password_reset_url.contains(['?', '#'])
        {
            return Err(invalid(
                "password_reset_url",
                "must be a path starting with `/`, without `?` or `#`",
            ));
        }
        if let Some(site) = &self.site_url
            && !(site.starts_with("https://") || site.starts_with("http://"))
        {
            return Err(invalid(
                "site_url",
                "must start with https:// (or http://), like https://shop.example",
            ));
        }
        if let Err(e) = self.mail_from.parse::<lettre::message::Mailbox>() {
            return Err(invalid(
                "mail_from",
                &format!("is not an address like noreply@shop.example: {e}"),
            ));
        }
        if let Some(url) = &self.mail_url
            && !is_mail_url(url)
        {
            return Err(invalid(
                "mail_url",
                &format!(
                    "`{}` is not a mail transport: expected smtp://…, smtps://…, console, \
                     file:DIR or memory",
                    crate::db::redact(url)
                ),
            ));
        }
        if self.ipv6_prefix_len > 128 {
            return Err(invalid("ipv6_prefix_len", "must be 0 to 128"));
        }
        if self.metrics_addr.is_some_and(|m| m == self.addr) {
            return Err(SettingsError::Env {
                name: "metrics_addr".to_owned(),
                message: "must not be the app's own address: metrics get a port of their own"
                    .to_owned(),
            });
        }
        self.proxies().map(|_| ())
    }

    /// Whether production mode is on (see [`Settings::production`]).
    pub fn is_production(&self) -> bool {
        self.production.unwrap_or(!cfg!(debug_assertions))
    }

    pub(crate) fn proxies(&self) -> Result<Vec<IpNet>, SettingsError> {
        self.trusted_proxies
            .iter()
            .map(|s| IpNet::parse(s).ok_or_else(|| SettingsError::Proxy(s.clone())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_the_reference() {
        let s = Settings::default();
        assert_eq!(s.event_middleware_skip, vec!["csrf"]);
        assert!(s.auto_redirect_from_middleware);
        assert!(!s.event_post_from_payload);
        assert!(s.run_middleware_chain);
        assert_eq!(s.addr.to_string(), "127.0.0.1:3000");
    }

    #[test]
    fn unknown_file_key_is_named() {
        let err = Settings::from_toml("run_midleware_chain = false").unwrap_err();
        assert!(err.contains("run_midleware_chain"), "{err}");
    }

    #[test]
    fn file_values_parse() {
        let s = Settings::from_toml(
            "event_middleware_skip = [\"csrf\", \"audit\"]\nrun_middleware_chain = false\ndefault_tier = \"auth_only\"",
        )
        .unwrap();
        assert_eq!(s.event_middleware_skip, vec!["csrf", "audit"]);
        assert!(!s.run_middleware_chain);
        assert_eq!(s.default_tier, Tier::AuthOnly);
    }

    #[test]
    fn env_overrides_and_unknown_env_is_named() {
        let mut s = Settings::default();
        s.apply_env(env(&[
            ("FERRULE_ADDR", "127.0.0.1:4000"),
            ("FERRULE_EVENT_MIDDLEWARE_SKIP", "csrf, audit"),
            ("FERRULE_AUTO_REDIRECT_FROM_MIDDLEWARE", "false"),
            ("PATH", "/bin"),
        ]))
        .unwrap();
        assert_eq!(s.addr.port(), 4000);
        assert_eq!(s.event_middleware_skip, vec!["csrf", "audit"]);
        assert!(!s.auto_redirect_from_middleware);

        let err = s.apply_env(env(&[("FERRULE_RUN_CHAIN", "1")])).unwrap_err();
        assert!(err.to_string().contains("FERRULE_RUN_CHAIN"), "{err}");
        let err = s
            .apply_env(env(&[("FERRULE_RUN_MIDDLEWARE_CHAIN", "maybe")]))
            .unwrap_err();
        assert!(err.to_string().contains("maybe"), "{err}");
    }

    #[test]
    fn observability_settings_parse_and_metrics_keep_off_the_app_port() {
        let mut s = Settings::default();
        assert_eq!(
            (s.log_format, s.metrics_addr, s.browser_log),
            (LogFormat::Text, None, false)
        );
        s.apply_env(env(&[
            ("FERRULE_LOG_FORMAT", "json"),
            ("FERRULE_METRICS_ADDR", "127.0.0.1:9100"),
            ("FERRULE_BROWSER_LOG", "1"),
        ]))
        .unwrap();
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.metrics_addr.map(|a| a.port()), Some(9100));
        assert!(s.browser_log);
        // An empty variable turns the endpoint off, as a `.env` line or a compose file writes it.
        s.apply_env(env(&[("FERRULE_METRICS_ADDR", "")])).unwrap();
        assert_eq!(s.metrics_addr, None);
        let err = s
            .apply_env(env(&[("FERRULE_LOG_FORMAT", "xml")]))
            .unwrap_err();
        assert!(err.to_string().contains("xml"), "{err}");
        s.metrics_addr = Some(s.addr);
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("metrics_addr"), "{err}");
    }

    #[test]
    fn untrusted_proxies_and_unsendable_policies_are_refused() {
        let s = Settings {
            trusted_proxies: vec!["nope".into()],
            ..Settings::default()
        };
        assert!(s.validate().unwrap_err().to_string().contains("nope"));
        let s = Settings {
            content_security_policy: "default-src 'self'\n".into(),
            ..Settings::default()
        };
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("content_security_policy"), "{err}");
        assert!(Settings::default().validate().is_ok());
    }
}
