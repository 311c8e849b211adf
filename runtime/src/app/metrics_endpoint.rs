//! `GET /metrics` in the Prometheus text format, on `metrics_addr`: a listener of its own, so
//! the numbers are never on the public port unless someone puts them there.
//!
//! The runtime records through the `metrics` facade ([`crate::metrics`] names the series);
//! `metrics-exporter-prometheus` is the recorder. A facade has one recorder per process: the
//! first server with a `metrics_addr` installs it, and later servers of the same process (tests
//! start several) share it, so their numbers add up. An app that installed a recorder of its
//! own keeps it, and `serve` says it cannot offer `/metrics` too.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::bridge::EventBridge;
use crate::metrics::{EVENT_ERRORS_TOTAL, EVENTS_TOTAL, PHASE_SECONDS, QUEUED_EVENTS, SOCKETS};

/// Gauge of the tabs (keys) the state store holds, where it keeps count.
const TABS: &str = "ferrule_tabs";
/// Gauge of the bytes of the states' JSON in the store, where it keeps count.
const STATE_BYTES: &str = "ferrule_state_store_bytes";
/// Gauge of the password checks and hashes waiting for a hashing thread.
const HASHING_QUEUE: &str = "ferrule_password_hashing_queue";

/// Bucket bounds of the phase histograms, in seconds: a phase takes microseconds (decode,
/// commit) to the tens of milliseconds of a slow handler or database.
const PHASE_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5,
];

/// How often histograms are compacted between scrapes (the exporter leaves it to its user).
const UPKEEP: Duration = Duration::from_secs(5);

/// The process's recorder, installed at the first call.
fn recorder() -> Result<PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(PHASE_SECONDS.to_owned()), PHASE_BUCKETS)
                .and_then(PrometheusBuilder::install_recorder)
                .map_err(|e| {
                    format!("metrics_addr: cannot install the Prometheus recorder ({e}); the app may have installed a metrics recorder of its own")
                })?;
            describe();
            Ok(handle)
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        PHASE_SECONDS,
        metrics::Unit::Seconds,
        "Time of each phase of an event in the bridge"
    );
    describe_counter!(
        EVENTS_TOTAL,
        "Events answered, by outcome (ok, refused, invalid, failed)"
    );
    describe_counter!(EVENT_ERRORS_TOTAL, "What went wrong in events, by kind");
    describe_gauge!(SOCKETS, "Sockets connected to this process");
    describe_gauge!(
        QUEUED_EVENTS,
        "Events waiting in this process's socket queues"
    );
    describe_gauge!(TABS, "Tabs the state store holds states for");
    describe_gauge!(STATE_BYTES, "Bytes of state JSON the state store holds");
    describe_gauge!(
        HASHING_QUEUE,
        "Password checks waiting for a hashing thread"
    );
}

/// Binds `addr` and serves `/metrics` there until `stop` is cancelled; the gauges that are
/// read rather than counted (the state store of `bridge`, in a server, and the hashing queue)
/// are read at each scrape.
pub(super) async fn start(
    addr: SocketAddr,
    bridge: Option<Arc<EventBridge>>,
    header_read_timeout: Duration,
    stop: tokio_util::sync::CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let handle = recorder().map_err(std::io::Error::other)?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on metrics_addr {addr}: {e}"),
        )
    })?;
    tracing::info!("metrics on http://{}/metrics", listener.local_addr()?);
    let scrape = {
        let handle = handle.clone();
        move || {
            let (handle, bridge) = (handle.clone(), bridge.clone());
            async move {
                if let Some(size) = bridge.as_ref().and_then(|b| b.states_size()) {
                    metrics::gauge!(TABS).set(size.tabs as f64);
                    metrics::gauge!(STATE_BYTES).set(size.bytes as f64);
                }
                metrics::gauge!(HASHING_QUEUE).set(crate::auth::hashing_queue() as f64);
                handle.run_upkeep();
                (
                    [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    handle.render(),
                )
            }
        }
    };
    let router = Router::new().route("/metrics", get(scrape));
    let upkeep = {
        let stop = stop.clone();
        async move {
            crate::lifespan::every(UPKEEP, stop, move || {
                handle.run_upkeep();
                async { true }
            })
            .await;
        }
    };
    let served =
        super::serve::serve_connections(listener, router, header_read_timeout, async move {
            stop.cancelled().await;
        });
    Ok(tokio::spawn(async move { tokio::join!(upkeep, served).1 }))
}
