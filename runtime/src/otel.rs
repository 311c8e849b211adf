//! Spans to an OpenTelemetry collector (feature `otel`): when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! names one (`http://collector:4318`), every span (`ferrule.event` and its phases,
//! `http.request`) is exported over OTLP/HTTP in batches, from a thread of the exporter's own.
//! The standard `OTEL_*` variables (service name, headers, timeouts) apply.

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetryLayer;

/// The variable that turns the export on and names the collector.
pub(crate) const ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The layer that exports spans, when [`ENDPOINT_ENV`] is set and the exporter could be made.
pub(crate) fn layer<S>() -> Option<OpenTelemetryLayer<S, SdkTracer>>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    std::env::var_os(ENDPOINT_ENV)?;
    if PROVIDER.get().is_some() {
        // A process exports through one provider: the first subscriber's (the one that stays).
        return None;
    }
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
    {
        Ok(exporter) => exporter,
        Err(e) => {
            // Logging is not set up yet: this is all there is to say it.
            eprintln!("warning: {ENDPOINT_ENV} is set but spans cannot be exported: {e}");
            return None;
        }
    };
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .build();
    let tracer = provider.tracer("ferrule");
    if PROVIDER.set(provider).is_err() {
        // Another thread installed one meanwhile; its subscriber is the one that stays.
        return None;
    }
    Some(tracing_opentelemetry::layer().with_tracer(tracer))
}

/// Sends the spans still in the batch, so a stopping server loses none.
pub(crate) fn flush() {
    if let Some(provider) = PROVIDER.get()
        && let Err(e) = provider.force_flush()
    {
        tracing::warn!(error = %e, "could not export the last spans");
    }
}
