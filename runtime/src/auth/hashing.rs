//! Password hashing with argon2 on blocking threads: a few at once, so a flood of logins waits
//! its turn (bounded, then turned away) instead of taking every thread and all memory.

use super::errors::AuthError;

/// How many argon2 hashes run at once. Each takes 19 MiB and tens of milliseconds of a core, so
/// a flood of logins waits its turn here instead of running on every blocking thread at once
/// (512 × 19 MiB).
pub(crate) const HASHES_AT_ONCE: usize = 4;

/// How many password checks of logins may wait for a place; past that a login is turned away
/// at once ([`AuthError::Busy`], HTTP 503) instead of queueing without bound.
pub const LOGINS_WAITING: usize = 64;

pub(crate) static HASHING: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(HASHES_AT_ONCE);

pub(crate) static WAITING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Runs `work` on a blocking thread once one of the `HASHES_AT_ONCE` places is free.
pub(crate) async fn hashing<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let _place = HASHING.acquire().await.ok()?;
    tokio::task::spawn_blocking(work).await.ok()
}

/// One place in the login queue, given back when dropped.
pub(crate) struct Waiting;

impl Waiting {
    fn take() -> Result<Self, AuthError> {
        use std::sync::atomic::Ordering;
        if WAITING.fetch_add(1, Ordering::SeqCst) >= LOGINS_WAITING + HASHES_AT_ONCE {
            WAITING.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!("a login was turned away: too many password checks waiting");
            return Err(AuthError::Busy);
        }
        Ok(Self)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITING.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// [`verify_password`] for a login: turned away when the queue is full.
pub(crate) async fn verify_for_login(password: &str, hash: &str) -> Result<bool, AuthError> {
    let _place = Waiting::take()?;
    Ok(verify_password(password, hash).await)
}

/// Hashes `password` with argon2 on a blocking thread (it takes tens of milliseconds).
pub async fn hash_password(password: &str) -> String {
    let password = password.to_owned();
    hashing(move || password_auth::generate_hash(password))
        .await
        .expect("hashing does not panic and the semaphore is never closed")
}

/// Checks `password` against `hash` on a blocking thread.
pub async fn verify_password(password: &str, hash: &str) -> bool {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    hashing(move || password_auth::verify_password(password, &hash).is_ok())
        .await
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_login_queue_holds_its_limit_and_turns_away_one_more() {
        let places: Vec<Waiting> = (0..LOGINS_WAITING + HASHES_AT_ONCE)
            .map(|_| Waiting::take().expect("room up to the limit"))
            .collect();
        assert!(matches!(Waiting::take(), Err(AuthError::Busy)));
        drop(places);
        assert!(Waiting::take().is_ok(), "places come back");
        let busy = crate::Error::from(AuthError::Busy);
        assert_eq!(busy.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.public_message(), crate::UNAVAILABLE_MESSAGE);
        assert_eq!(
            crate::Error::from(AuthError::Throttled).status(),
            http::StatusCode::TOO_MANY_REQUESTS
        );
    }

    #[tokio::test]
    async fn no_more_than_a_few_hashes_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static RUNNING: AtomicUsize = AtomicUsize::new(0);
        static PEAK: AtomicUsize = AtomicUsize::new(0);
        let mut all = tokio::task::JoinSet::new();
        for _ in 0..4 * HASHES_AT_ONCE {
            all.spawn(hashing(|| {
                let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
                PEAK.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(20));
                RUNNING.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        while let Some(done) = all.join_next().await {
            assert!(done.unwrap().is_some());
        }
        let peak = PEAK.load(Ordering::SeqCst);
        assert!((2..=HASHES_AT_ONCE).contains(&peak), "peak {peak}");
    }
}
