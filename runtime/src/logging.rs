//! Where logs and spans go: stderr as text or as JSON lines (`log_format`), filtered by
//! `FERRULE_LOG` (or `RUST_LOG`), and with the `otel` feature, spans to an OpenTelemetry
//! collector over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::settings::LogFormat;

/// The environment variable that picks the log format before settings are read (it is also
/// the `log_format` setting's).
pub(crate) const LOG_FORMAT_ENV: &str = "FERRULE_LOG_FORMAT";

/// The filter of `FERRULE_LOG`, else `RUST_LOG`, else `info`.
pub(crate) fn env_filter() -> String {
    std::env::var("FERRULE_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_owned())
}

/// The format `FERRULE_LOG_FORMAT` names, text when unset or unknown (settings then say why).
pub(crate) fn env_format() -> LogFormat {
    std::env::var(LOG_FORMAT_ENV)
        .ok()
        .and_then(|f| f.parse().ok())
        .unwrap_or_default()
}

/// Installs the process's subscriber: `filter`, lines in `format` to `writer` and, with the
/// `otel` feature, spans to OTLP. `false` when the process already had one (the first wins).
pub(crate) fn install<W>(format: LogFormat, filter: &str, writer: W, ansi: bool) -> bool
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let lines = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(writer)
            .boxed(),
        // The event's span and every span around it, so a line carries the event's state,
        // handler, tab and user, and the request id of its socket's handshake.
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(writer)
            .boxed(),
    };
    let registry = tracing_subscriber::registry()
        .with(EnvFilter::new(filter))
        .with(lines);
    #[cfg(feature = "otel")]
    let registry = registry.with(crate::otel::layer());
    registry.try_init().is_ok()
}

/// Exports what spans are still waiting (feature `otel`); nothing otherwise.
pub(crate) fn flush() {
    #[cfg(feature = "otel")]
    crate::otel::flush();
}

/// Installs logging to stderr in `format`, with the filter of the environment.
pub(crate) fn init(format: LogFormat) {
    let ansi = format == LogFormat::Text && std::io::IsTerminal::is_terminal(&std::io::stderr());
    // A second call keeps the first subscriber (an app may install its own before run_cli).
    let _first = install(format, &env_filter(), std::io::stderr, ansi);
}

/// A log written to memory, for tests that read what a server logged.
#[cfg(feature = "testing")]
#[derive(Clone, Default)]
pub(crate) struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(feature = "testing")]
impl Captured {
    /// Everything written so far, as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

#[cfg(feature = "testing")]
impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "testing")]
impl<'w> MakeWriter<'w> for Captured {
    type Writer = Self;
    fn make_writer(&'w self) -> Self::Writer {
        self.clone()
    }
}
