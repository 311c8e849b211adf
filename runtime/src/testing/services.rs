//! The services a test talks to: where PostgreSQL and Redis are, what a test does without them
//! (it says so, loudly on stderr and in the file `FERRULE_TEST_SKIPS` names, so `cargo xtask
//! test` reports it as skipped instead of passed), and clearing what it left in Redis.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// The variable naming the file where skips are recorded, one `<test binary> <test>` a line.
pub const SKIPS_FILE_VAR: &str = "FERRULE_TEST_SKIPS";

/// Says that the running test skips all or part of what it checks, and why. Call it from the
/// test's own thread (its body, not a spawned task): the test is named by that thread's name.
pub fn skipped(why: &str) {
    eprintln!("SKIPPED: {why}");
    if let Ok(path) = std::env::var(SKIPS_FILE_VAR) {
        record(&path);
    }
}

/// Appends the running test's line to the skips file at `path`.
fn record(path: &str) {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_default();
    // One test per thread, named after the test, except with one test thread ("main"): there
    // each skip counts apart.
    static UNNAMED: AtomicU64 = AtomicU64::new(0);
    let test = match std::thread::current().name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => format!("main#{}", UNNAMED.fetch_add(1, Ordering::Relaxed)),
    };
    let recorded = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| writeln!(file, "{binary} {test}"));
    if let Err(e) = recorded {
        eprintln!("could not record the skip in {path}: {e}");
    }
}

/// The URL of a test service from variable `var` (`FERRULE_TEST_POSTGRES`,
/// `FERRULE_TEST_REDIS`: `cargo xtask test` sets them when the servers are reachable). Without
/// it the test is [`skipped`] and this is `None`; under `CI=true` its absence fails the test.
pub fn service_url(var: &str, what: &str) -> Option<String> {
    if let Ok(url) = std::env::var(var) {
        return Some(url);
    }
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true" || v == "1"),
        "CI=true but {var} is not set: {what} cannot run"
    );
    skipped(&format!(
        "{what} (no {var}; run through `cargo xtask test`)"
    ));
    None
}

/// Deletes every key a [`RedisStateManager`](crate::redis_state::RedisStateManager) (and the
/// runtime's other Redis parts) with `prefix` keep on the Redis server at `url`: what a test's
/// nodes left behind. Give each test its own prefix.
#[cfg(feature = "redis")]
pub async fn clear_redis_prefix(url: &str, prefix: &str) -> Result<(), redis::RedisError> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let pattern = format!("{}*", crate::redis_conn::key_prefix(prefix));
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(pattern)
        .query_async(&mut conn)
        .await?;
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<()>(&mut conn)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_is_recorded_with_the_test_that_skipped() {
        let path = std::env::temp_dir().join(format!("ferrule-skips-{}", std::process::id()));
        record(&path.to_string_lossy());
        record(&path.to_string_lossy());
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].ends_with(
                " testing::services::tests::a_skip_is_recorded_with_the_test_that_skipped"
            ),
            "{text}"
        );
    }
}
