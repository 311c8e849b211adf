//! Password hashing with argon2 on a fixed pool of threads, each reusing one preallocated block
//! of argon2 memory, behind one bounded queue that every caller shares: login, registration,
//! password changes and [`Auth`](super::Auth)'s own methods.
//!
//! Why not `spawn_blocking` behind a semaphore: the semaphore bounds the hashes that run at once,
//! not the memory. Each hash allocates 19 MiB; freed on whichever of tokio's up to 512 blocking
//! threads ran it, it stays in that thread's allocator arena, so a flood of registrations left
//! the process at over a gigabyte. Here the memory is the pool's, allocated once per thread, and
//! nothing is allocated per hash.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{mpsc, oneshot};

use super::errors::AuthError;

/// How many argon2 hashes run at once: the pool's threads. Each holds 19 MiB for the life of
/// the process; more threads than cores would not check passwords faster.
pub(crate) const HASHES_AT_ONCE: usize = 4;

/// How many password checks and hashes may wait for a thread of the pool; past that (after
/// [`QUEUE_PATIENCE`]) the caller is turned away with [`AuthError::Busy`] (HTTP 503 with
/// `Retry-After`) instead of queueing without bound.
pub const LOGINS_WAITING: usize = 64;

/// How long a caller waits for a place in a full queue before it is turned away.
pub const QUEUE_PATIENCE: Duration = Duration::from_millis(500);

/// Seconds a client turned away is told to wait (`Retry-After`).
pub const RETRY_AFTER_SECONDS: u64 = 2;

/// One piece of work for a hashing thread, given that thread's argon2 memory.
type Job = Box<dyn FnOnce(&mut [Block]) + Send>;

/// A bounded queue read by a fixed number of hashing threads.
pub(crate) struct Pool {
    jobs: mpsc::Sender<Job>,
    patience: Duration,
}

impl Pool {
    /// Starts `threads` hashing threads behind a queue of `waiting` places; a caller waits up
    /// to `patience` for a place.
    pub(crate) fn start(threads: usize, waiting: usize, patience: Duration) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>(waiting);
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("ferrule-hash-{n}"))
                .spawn(move || {
                    let mut memory = vec![Block::default(); Params::DEFAULT.block_count()];
                    loop {
                        // One thread waits on the queue at a time; the others wait for the lock.
                        let job = queue
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .blocking_recv();
                        let Some(job) = job else { return };
                        job(&mut memory);
                    }
                });
            if let Err(e) = spawned {
                // Fewer threads still serve the queue; none at all and every caller is Busy.
                tracing::error!(error = %e, "could not start a password hashing thread");
            }
        }
        Self { jobs, patience }
    }

    /// Runs `work` on a hashing thread with that thread's argon2 memory, waiting at most the
    /// pool's patience for a place in the queue.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            // The caller may have given up (its request was dropped): nothing waits for this.
            drop(done.send(work(memory)));
        });
        if self.jobs.send_timeout(job, self.patience).await.is_err() {
            tracing::warn!("a password check was turned away: the hashing queue is full");
            return Err(AuthError::Busy);
        }
        // A job that panicked dropped its sender: say busy rather than hang or claim a result.
        result.await.map_err(|_| AuthError::Busy)
    }
}

static POOL: OnceLock<Pool> = OnceLock::new();

/// The process's pool, started on first use.
fn pool() -> &'static Pool {
    POOL.get_or_init(|| Pool::start(HASHES_AT_ONCE, LOGINS_WAITING, QUEUE_PATIENCE))
}

/// How many password checks and hashes wait for a hashing thread now (0 before the first).
pub(crate) fn hashing_queue() -> usize {
    POOL.get()
        .map_or(0, |p| p.jobs.max_capacity() - p.jobs.capacity())
}

/// The parameters new hashes use: argon2id, 19 MiB, two passes (OWASP's first choice).
fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT)
}

/// Hashes `password` in the pool's memory; the PHC string (`$argon2id$v=19$m=19456,...`).
fn hash_in(password: &str, memory: &mut [Block]) -> Result<String, argon2::Error> {
    use rand::Rng;
    let salt_bytes: [u8; 16] = rand::rng().random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|_| argon2::Error::SaltTooShort)?;
    let mut out = [0u8; 32];
    let params = Params::DEFAULT;
    let blocks = &mut memory[..params.block_count()];
    hasher().hash_password_into_with_memory(password.as_bytes(), &salt_bytes, &mut out, blocks)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|_| argon2::Error::AlgorithmInvalid)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|_| argon2::Error::OutputTooShort)?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the argon2 PHC string `hash`, in the pool's memory (a hash made
/// with more memory than the pool holds gets its own, once).
fn verify_in(password: &str, hash: &str, memory: &mut [Block]) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = parsed
        .version
        .map_or(Ok(Version::V0x13), Version::try_from)
        .unwrap_or(Version::V0x13);
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params.clone());
    let needed = params.block_count();
    let computed = if needed <= memory.len() {
        argon.hash_password_into_with_memory(
            password.as_bytes(),
            salt,
            &mut out,
            &mut memory[..needed],
        )
    } else {
        argon.hash_password_into(password.as_bytes(), salt, &mut out)
    };
    // `Output`'s equality is constant-time.
    computed.is_ok() && Output::new(&out).is_ok_and(|o| o == expected)
}

/// Hashes `password` with argon2id in the shared pool; [`AuthError::Busy`] under a flood.
pub async fn hash_password(password: &str) -> Result<String, AuthError> {
    let password = password.to_owned();
    pool()
        .run(move |memory| hash_in(&password, memory))
        .await?
        .map_err(|e| AuthError::Invalid(format!("password could not be hashed: {e}")))
}

/// Checks `password` against `hash` in the shared pool; [`AuthError::Busy`] under a flood.
pub async fn verify_password(password: &str, hash: &str) -> Result<bool, AuthError> {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    pool()
        .run(move |memory| verify_in(&password, &hash, memory))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashes_verify_and_interoperate_with_the_phc_format() {
        let hash = hash_password("correct horse battery").await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            verify_password("correct horse battery", &hash)
                .await
                .unwrap()
        );
        assert!(
            !verify_password("correct horse batterY", &hash)
                .await
                .unwrap()
        );
        assert!(!verify_password("x", "not a hash").await.unwrap());
        // A hash made elsewhere with other parameters (more memory than the pool's blocks).
        let other = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(32 * 1024, 1, 1, None).unwrap(),
        );
        use argon2::PasswordHasher;
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let foreign = other
            .hash_password(b"tr0ub4dor&3", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("tr0ub4dor&3", &foreign).await.unwrap());
        assert!(!verify_password("tr0ub4dor&4", &foreign).await.unwrap());
    }

    #[test]
    fn busy_is_a_503_and_throttled_a_429() {
        let busy = crate::Error::from(AuthError::Busy);
        assert_eq!(busy.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.public_message(), crate::UNAVAILABLE_MESSAGE);
        assert_eq!(
            crate::Error::from(AuthError::Throttled).status(),
            http::StatusCode::TOO_MANY_REQUESTS
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_the_pool_runs_at_once_and_a_full_queue_turns_away() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static RUNNING: AtomicUsize = AtomicUsize::new(0);
        static PEAK: AtomicUsize = AtomicUsize::new(0);
        let (threads, waiting) = (2, 3);
        let patience = Duration::from_millis(200);
        let pool = Arc::new(Pool::start(threads, waiting, patience));
        // Hold every thread and fill the queue exactly: all of those are accepted...
        let (release, gate) = tokio::sync::watch::channel(false);
        let mut all = tokio::task::JoinSet::new();
        for _ in 0..threads + waiting {
            let (pool, gate) = (pool.clone(), gate.clone());
            all.spawn(async move {
                pool.run(move |_| {
                    let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
                    PEAK.fetch_max(now, Ordering::SeqCst);
                    while !*gate.borrow() {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    RUNNING.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            });
        }
        // ...once the threads hold theirs and the rest are queued...
        while RUNNING.load(Ordering::SeqCst) < threads || pool.jobs.capacity() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // ...one more is turned away after its patience.
        let started = std::time::Instant::now();
        assert!(matches!(pool.run(|_| ()).await, Err(AuthError::Busy)));
        assert!(started.elapsed() >= patience);
        release.send(true).unwrap();
        while let Some(done) = all.join_next().await {
            assert!(done.unwrap().is_ok(), "every accepted job ran");
        }
        assert_eq!(PEAK.load(Ordering::SeqCst), threads);
        assert!(pool.run(|_| ()).await.is_ok(), "places come back");
    }
}
