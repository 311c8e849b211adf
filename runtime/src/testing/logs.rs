//! What a test's servers logged, read back: the process's subscriber writes to memory.

use serde_json::Value;

use super::TestError;
use crate::logging::Captured;
use crate::settings::LogFormat;

/// The log lines of this test process, written as `format` and kept in memory.
#[derive(Clone)]
pub struct CapturedLogs(Captured);

/// Sends this process's logs and spans, filtered by `filter` (`info,ferrule::event=debug`), to
/// memory as `format`, for every server the test starts. A process has one subscriber: call it
/// once, first, in a test binary of its own (`tests/<name>.rs` with one test).
pub fn capture_logs(format: LogFormat, filter: &str) -> Result<CapturedLogs, TestError> {
    let captured = Captured::default();
    if !crate::logging::install(format, filter, captured.clone(), false) {
        return Err(TestError::Protocol(
            "this process already has a tracing subscriber: capture logs in a test binary of its own"
                .to_owned(),
        ));
    }
    Ok(CapturedLogs(captured))
}

impl CapturedLogs {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        self.0.text()
    }

    /// The lines logged so far that are JSON objects (all of them with `LogFormat::Json`).
    pub fn json_lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}
