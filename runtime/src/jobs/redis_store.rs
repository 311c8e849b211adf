//! The job queue in Redis, for apps whose nodes share a Redis rather than a database that can
//! take the polling. Every change of a job is one Lua script, so it is atomic as the database's
//! statements are, and carries the same fence: a worker's writes name its claim (worker and
//! attempt), so a worker whose lease ran out cannot overwrite what the next one wrote.
//!
//! Under `ferrule:<prefix>:jobs:` a job is a hash (`job:<id>`, its fields named as the
//! database's columns); `due:<name>` orders a kind's waiting jobs by time, `lease:<name>` its
//! running ones by lease end; `in:<state>` holds each state's ids (for lists and counts),
//! `ended:<state>` the done and dead ones by end time (for purges); `key:<name>:<key>` is the
//! live job holding a uniqueness key; `schedule:<name>` a recurring job's next firing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;

use super::enqueue::{Enqueued, NewJob, OnDuplicate};
use super::store::{Claim, JobRow, JobState, now_ms};
use crate::Error;
use crate::redis_conn::{key_prefix, redis_err};

/// What every script starts with: the key prefix (`ARGV[1]`) and the moves they share.
const PRELUDE: &str = r#"
local P = ARGV[1]
local function job_key(id) return P .. 'job:' .. id end
-- Moves job `id` from state `from` to state `to` in the state sets and its hash.
local function move(id, from, to)
  redis.call('ZREM', P .. 'in:' .. from, id)
  redis.call('ZADD', P .. 'in:' .. to, id, id)
  redis.call('HSET', job_key(id), 'state', to)
end
-- Frees the job's uniqueness key if the job holds it.
local function unkey(id)
  local f = redis.call('HMGET', job_key(id), 'name', 'unique_key')
  if f[2] then
    local k = P .. 'key:' .. f[1] .. ':' .. f[2]
    if redis.call('GET', k) == tostring(id) then redis.call('DEL', k) end
  end
end
-- The job's name when worker `node` holds it with attempt `attempts`, else nil.
local function fenced(id, node, attempts)
  local f = redis.call('HMGET', job_key(id), 'state', 'locked_by', 'attempts', 'name')
  if f[1] == 'running' and f[2] == node and f[3] == attempts then return f[4] end
  return nil
end
-- Ends the lease of running job `id` of kind `name`.
local function unlease(id, name)
  redis.call('ZREM', P .. 'lease:' .. name, id)
  redis.call('HDEL', job_key(id), 'locked_by', 'locked_until')
end
-- Stores a new job; returns {'new', id} or, for a live job holding the key, {'duplicate', id}
-- or {'replaced', id}.
local function enqueue(name, payload, max_attempts, run_at, now, has_key, key, replace)
  local k = P .. 'key:' .. name .. ':' .. key
  if has_key == '1' then
    local held = redis.call('GET', k)
    if held then
      local state = redis.call('HGET', job_key(held), 'state')
      if state == 'pending' and replace == '1' then
        redis.call('HSET', job_key(held), 'payload', payload, 'run_at', run_at,
          'max_attempts', max_attempts)
        redis.call('ZADD', P .. 'due:' .. name, run_at, held)
        return {'replaced', tonumber(held)}
      elseif state == 'pending' or state == 'running' then
        return {'duplicate', tonumber(held)}
      end
    end
  end
  local id = redis.call('INCR', P .. 'seq')
  redis.call('HSET', job_key(id), 'id', id, 'name', name, 'payload', payload,
    'state', 'pending', 'attempts', 0, 'max_attempts', max_attempts, 'run_at', run_at,
    'created_at', now)
  if has_key == '1' then
    redis.call('HSET', job_key(id), 'unique_key', key)
    redis.call('SET', k, id)
  end
  redis.call('ZADD', P .. 'due:' .. name, run_at, id)
  redis.call('ZADD', P .. 'in:pending', id, id)
  return {'new', id}
end
"#;

/// ARGV: prefix, name, payload, max_attempts, run_at, now, has_key, key, replace.
const ENQUEUE: &str = r#"
return enqueue(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9])
"#;

/// ARGV: prefix, now, lease end, node, limit, names... Claims the due jobs, oldest first:
/// waiting ones whose time has come and running ones whose lease ran out.
const CLAIM: &str = r#"
local now, lease_end, node, limit = tonumber(ARGV[2]), ARGV[3], ARGV[4], tonumber(ARGV[5])
local found = {}
for i = 6, #ARGV do
  local name = ARGV[i]
  for _, from in ipairs({'lease', 'due'}) do
    local ids = redis.call('ZRANGEBYSCORE', P .. from .. ':' .. name, '-inf', now,
      'LIMIT', 0, limit)
    for _, id in ipairs(ids) do
      local run_at = tonumber(redis.call('HGET', job_key(id), 'run_at'))
      table.insert(found, {tonumber(id), name, from, run_at})
    end
  end
end
table.sort(found, function(a, b)
  if a[4] ~= b[4] then return a[4] < b[4] end
  return a[1] < b[1]
end)
local out = {}
for i = 1, math.min(limit, #found) do
  local id, name, from = found[i][1], found[i][2], found[i][3]
  redis.call('ZREM', P .. from .. ':' .. name, id)
  local state = redis.call('HGET', job_key(id), 'state')
  local attempts = redis.call('HINCRBY', job_key(id), 'attempts', 1)
  redis.call('HSET', job_key(id), 'locked_by', node, 'locked_until', lease_end)
  move(id, state, 'running')
  redis.call('ZADD', P .. 'lease:' .. name, lease_end, id)
  local f = redis.call('HMGET', job_key(id), 'payload', 'max_attempts')
  table.insert(out, {id, name, f[1], attempts, tonumber(f[2])})
end
return out
"#;

/// ARGV: prefix, id, node, attempts, lease end.
const RENEW: &str = r#"
local name = fenced(ARGV[2], ARGV[3], ARGV[4])
if not name then return 0 end
redis.call('HSET', job_key(ARGV[2]), 'locked_until', ARGV[5])
redis.call('ZADD', P .. 'lease:' .. name, ARGV[5], ARGV[2])
return 1
"#;

/// ARGV: prefix, id, node, attempts, now.
const FINISH: &str = r#"
local id = ARGV[2]
local name = fenced(id, ARGV[3], ARGV[4])
if not name then return 0 end
unlease(id, name)
redis.call('HSET', job_key(id), 'finished_at', ARGV[5])
move(id, 'running', 'done')
redis.call('ZADD', P .. 'ended:done', ARGV[5], id)
unkey(id)
return 1
"#;

/// ARGV: prefix, id, node, attempts, now, error, retry time ("" for none: dead).
const FAIL: &str = r#"
local id = ARGV[2]
local name = fenced(id, ARGV[3], ARGV[4])
if not name then return 0 end
unlease(id, name)
redis.call('HSET', job_key(id), 'last_error', ARGV[6])
if ARGV[7] ~= '' then
  redis.call('HSET', job_key(id), 'run_at', ARGV[7])
  move(id, 'running', 'pending')
  redis.call('ZADD', P .. 'due:' .. name, ARGV[7], id)
else
  redis.call('HSET', job_key(id), 'finished_at', ARGV[5])
  move(id, 'running', 'dead')
  redis.call('ZADD', P .. 'ended:dead', ARGV[5], id)
  unkey(id)
end
return 1
"#;

/// ARGV: prefix, id, node, attempts.
const RELEASE: &str = r#"
local id = ARGV[2]
local name = fenced(id, ARGV[3], ARGV[4])
if not name then return 0 end
unlease(id, name)
redis.call('HINCRBY', job_key(id), 'attempts', -1)
move(id, 'running', 'pending')
redis.call('ZADD', P .. 'due:' .. name, redis.call('HGET', job_key(id), 'run_at'), id)
return 1
"#;

/// ARGV: prefix, now, ids... (none: every dead job). A job whose key another live job took
/// meanwhile goes back without it.
const RETRY: &str = r#"
local now = ARGV[2]
local ids = {}
if #ARGV > 2 then
  for i = 3, #ARGV do table.insert(ids, ARGV[i]) end
else
  ids = redis.call('ZRANGE', P .. 'in:dead', 0, -1)
end
local n = 0
for _, id in ipairs(ids) do
  if redis.call('HGET', job_key(id), 'state') == 'dead' then
    local f = redis.call('HMGET', job_key(id), 'name', 'unique_key')
    if f[2] then
      local k = P .. 'key:' .. f[1] .. ':' .. f[2]
      local held = redis.call('GET', k)
      local other = held and redis.call('HGET', job_key(held), 'state')
      if other == 'pending' or other == 'running' then
        redis.call('HDEL', job_key(id), 'unique_key')
      else
        redis.call('SET', k, id)
      end
    end
    redis.call('HSET', job_key(id), 'attempts', 0, 'run_at', now)
    redis.call('HDEL', job_key(id), 'finished_at')
    redis.call('ZREM', P .. 'ended:dead', id)
    move(id, 'dead', 'pending')
    redis.call('ZADD', P .. 'due:' .. f[1], now, id)
    n = n + 1
  end
end
return n
"#;

/// ARGV: prefix, state, ended before, batch. Deletes up to a batch; how many.
const PURGE: &str = r#"
local state = ARGV[2]
local ids = redis.call('ZRANGEBYSCORE', P .. 'ended:' .. state, '-inf', ARGV[3],
  'LIMIT', 0, tonumber(ARGV[4]))
for _, id in ipairs(ids) do
  redis.call('DEL', job_key(id))
  redis.call('ZREM', P .. 'in:' .. state, id)
  redis.call('ZREM', P .. 'ended:' .. state, id)
end
return #ids
"#;

/// ARGV: prefix, schedule name, first firing. The schedule's next firing, set to the first
/// when it has none.
const SCHEDULE_DUE: &str = r#"
local k = P .. 'schedule:' .. ARGV[2]
redis.call('SET', k, ARGV[3], 'NX')
return tonumber(redis.call('GET', k))
"#;

/// ARGV: prefix, schedule name, due, next, then (optional) the job as for ENQUEUE (name,
/// payload, max_attempts, run_at, now, has_key, key, replace). Moves the schedule from due to
/// next and enqueues the job, or does nothing when another node moved it first.
const SCHEDULE_MOVE: &str = r#"
local k = P .. 'schedule:' .. ARGV[2]
if redis.call('GET', k) ~= ARGV[3] then return 0 end
redis.call('SET', k, ARGV[4])
if #ARGV > 4 then
  enqueue(ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12])
end
return 1
"#;

/// How many done or dead jobs one purge script deletes, so a large purge does not hold Redis.
const PURGE_BATCH: usize = 500;

struct Scripts {
    enqueue: redis::Script,
    claim: redis::Script,
    renew: redis::Script,
    finish: redis::Script,
    fail: redis::Script,
    release: redis::Script,
    retry: redis::Script,
    purge: redis::Script,
    schedule_due: redis::Script,
    schedule_move: redis::Script,
}

impl Scripts {
    fn new() -> Self {
        // Hashed once here, not per call.
        let script = |body: &str| redis::Script::new(&format!("{PRELUDE}{body}"));
        Self {
            enqueue: script(ENQUEUE),
            claim: script(CLAIM),
            renew: script(RENEW),
            finish: script(FINISH),
            fail: script(FAIL),
            release: script(RELEASE),
            retry: script(RETRY),
            purge: script(PURGE),
            schedule_due: script(SCHEDULE_DUE),
            schedule_move: script(SCHEDULE_MOVE),
        }
    }
}

/// Durable jobs kept in Redis under `ferrule:<prefix>:jobs:` ([`App::jobs_in`](crate::App::jobs_in)
/// with [`Queue::redis`](super::Queue::redis)). Redis must keep its data: run it with
/// persistence (AOF) and without an eviction policy that drops keys.
#[derive(Clone)]
pub struct RedisJobs {
    conn: ConnectionManager,
    prefix: String,
    scripts: Arc<Scripts>,
}

impl RedisJobs {
    /// Connects to `url`; keys go under `ferrule:<prefix>:jobs:` (one prefix per app).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, Error> {
        Ok(Self {
            conn: crate::redis_conn::connect(url).await?,
            prefix: format!("{}jobs:", key_prefix(prefix)),
            scripts: Arc::new(Scripts::new()),
        })
    }

    /// Runs `script` with the prefix then `args`.
    async fn run<T: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        args: impl IntoIterator<Item = String>,
    ) -> Result<T, Error> {
        let mut invocation = script.prepare_invoke();
        invocation.arg(&self.prefix);
        for arg in args {
            invocation.arg(arg);
        }
        invocation
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(redis_err)
    }

    /// The arguments the enqueue step of a script takes for `job`.
    fn job_args(job: NewJob) -> [String; 8] {
        let (has_key, key) = match job.unique_key {
            Some(key) => ("1", key),
            None => ("0", String::new()),
        };
        let replace = job.on_duplicate == OnDuplicate::Replace;
        [
            job.name.to_owned(),
            job.payload,
            job.max_attempts.to_string(),
            job.run_at.to_string(),
            now_ms().to_string(),
            has_key.to_owned(),
            key,
            if replace { "1" } else { "0" }.to_owned(),
        ]
    }

    pub(super) async fn enqueue(&self, job: NewJob) -> Result<Enqueued, Error> {
        let (what, id): (String, i64) =
            self.run(&self.scripts.enqueue, Self::job_args(job)).await?;
        Ok(match what.as_str() {
            "duplicate" => Enqueued::Duplicate(id),
            "replaced" => Enqueued::Replaced(id),
            _ => Enqueued::New(id),
        })
    }

    pub(super) async fn claim(
        &self,
        names: &[&str],
        node: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claim>, Error> {
        let now = now_ms();
        let mut args = vec![
            now.to_string(),
            (now + lease.as_millis() as i64).to_string(),
            node.to_owned(),
            limit.to_string(),
        ];
        args.extend(names.iter().map(|n| (*n).to_owned()));
        let rows: Vec<(i64, String, String, i64, i64)> =
            self.run(&self.scripts.claim, args).await?;
        Ok(rows
            .into_iter()
            .map(|(id, name, payload, attempts, max_attempts)| Claim {
                id,
                name,
                payload,
                attempts,
                max_attempts,
            })
            .collect())
    }

    fn fence(claim: &Claim, node: &str) -> [String; 3] {
        [
            claim.id.to_string(),
            node.to_owned(),
            claim.attempts.to_string(),
        ]
    }

    pub(super) async fn renew(
        &self,
        claim: &Claim,
        node: &str,
        lease: Duration,
    ) -> Result<bool, Error> {
        let until = now_ms() + lease.as_millis() as i64;
        let args = Self::fence(claim, node)
            .into_iter()
            .chain([until.to_string()]);
        let held: i64 = self.run(&self.scripts.renew, args).await?;
        Ok(held == 1)
    }

    pub(super) async fn finish(&self, claim: &Claim, node: &str) -> Result<bool, Error> {
        let args = Self::fence(claim, node)
            .into_iter()
            .chain([now_ms().to_string()]);
        let held: i64 = self.run(&self.scripts.finish, args).await?;
        Ok(held == 1)
    }

    pub(super) async fn fail(
        &self,
        claim: &Claim,
        node: &str,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<bool, Error> {
        let retry = retry_at.map(|t| t.to_string()).unwrap_or_default();
        let args = Self::fence(claim, node).into_iter().chain([
            now_ms().to_string(),
            error.to_owned(),
            retry,
        ]);
        let held: i64 = self.run(&self.scripts.fail, args).await?;
        Ok(held == 1)
    }

    pub(super) async fn release(&self, claim: &Claim, node: &str) -> Result<bool, Error> {
        let held: i64 = self
            .run(&self.scripts.release, Self::fence(claim, node))
            .await?;
        Ok(held == 1)
    }

    /// Dead job `id` (every dead job without one) back in the queue; how many.
    pub(super) async fn retry(&self, id: Option<i64>) -> Result<u64, Error> {
        let args = std::iter::once(now_ms().to_string()).chain(id.map(|id| id.to_string()));
        self.run(&self.scripts.retry, args).await
    }

    pub(super) async fn purge(&self, state: JobState, older_than: Duration) -> Result<u64, Error> {
        let before = now_ms() - older_than.as_millis() as i64;
        let mut total = 0;
        loop {
            let args = [
                state.as_str().to_owned(),
                before.to_string(),
                PURGE_BATCH.to_string(),
            ];
            let n: u64 = self.run(&self.scripts.purge, args).await?;
            total += n;
            if n < PURGE_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    pub(super) async fn find(&self, id: i64) -> Result<Option<JobRow>, Error> {
        let mut conn = self.conn.clone();
        let fields: BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(format!("{}job:{id}", self.prefix))
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        if fields.is_empty() {
            return Ok(None);
        }
        row_of(fields).map(Some)
    }

    pub(super) async fn list(
        &self,
        state: Option<JobState>,
        limit: u64,
    ) -> Result<Vec<JobRow>, Error> {
        let states = match state {
            Some(s) => vec![s],
            None => vec![
                JobState::Pending,
                JobState::Running,
                JobState::Done,
                JobState::Dead,
            ],
        };
        let last = limit.min(i64::MAX as u64) as i64 - 1;
        if last < 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let mut ids: Vec<i64> = Vec::new();
        for s in states {
            let some: Vec<i64> = redis::cmd("ZRANGE")
                .arg(format!("{}in:{}", self.prefix, s.as_str()))
                .arg(0)
                .arg(last)
                .query_async(&mut conn)
                .await
                .map_err(redis_err)?;
            ids.extend(some);
        }
        ids.sort_unstable();
        ids.truncate(limit as usize);
        let mut rows = Vec::with_capacity(ids.len());
        for id in ids {
            // A job purged between the two reads is left out.
            if let Some(row) = self.find(id).await? {
                rows.push(row);
            }
        }
        Ok(rows)
    }

    pub(super) async fn counts(&self) -> Result<BTreeMap<JobState, u64>, Error> {
        let mut conn = self.conn.clone();
        let mut out = BTreeMap::new();
        for s in [
            JobState::Pending,
            JobState::Running,
            JobState::Done,
            JobState::Dead,
        ] {
            let n: u64 = redis::cmd("ZCARD")
                .arg(format!("{}in:{}", self.prefix, s.as_str()))
                .query_async(&mut conn)
                .await
                .map_err(redis_err)?;
            if n > 0 {
                out.insert(s, n);
            }
        }
        Ok(out)
    }

    pub(super) async fn schedule_due(&self, name: &str, first: i64) -> Result<i64, Error> {
        self.run(
            &self.scripts.schedule_due,
            [name.to_owned(), first.to_string()],
        )
        .await
    }

    pub(super) async fn schedule_move(
        &self,
        name: &str,
        due: i64,
        next: i64,
        job: Option<NewJob>,
    ) -> Result<bool, Error> {
        let args = [name.to_owned(), due.to_string(), next.to_string()]
            .into_iter()
            .chain(job.into_iter().flat_map(Self::job_args));
        let moved: i64 = self.run(&self.scripts.schedule_move, args).await?;
        Ok(moved == 1)
    }
}

/// A job's hash as a row.
fn row_of(mut fields: BTreeMap<String, String>) -> Result<JobRow, Error> {
    let bad = |what: &str| Error::internal(format!("a job in Redis has no valid `{what}`"));
    let number = |name: &str| -> Result<i64, Error> {
        fields
            .get(name)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad(name))
    };
    let id = number("id")?;
    let attempts = number("attempts")?.max(0) as u32;
    let max_attempts = number("max_attempts")?.max(0) as u32;
    let run_at = number("run_at")?;
    let state = fields
        .get("state")
        .and_then(|s| JobState::parse(s))
        .ok_or_else(|| bad("state"))?;
    Ok(JobRow {
        id,
        name: fields.remove("name").ok_or_else(|| bad("name"))?,
        payload: fields.remove("payload").ok_or_else(|| bad("payload"))?,
        state,
        attempts,
        max_attempts,
        run_at,
        last_error: fields.remove("last_error"),
        unique_key: fields.remove("unique_key"),
    })
}
