//! `cargo xtask bench [--quick]`: what one event costs through Ferrule's bridge, side by side
//! with a bare socketioxide server measured in the same run. Figures are reported as ratios to
//! that baseline, since these machines are noisy. Results go to `target/bench/` as JSON and
//! markdown.
//!
//! The server's CPU time and allocations are its own counts over the measured window only
//! (`/bench/usage`, read by the load generator before and after it). With two cores or more,
//! the server runs on the first and the load generator on the second (`taskset`), so neither
//! takes the other's time. Idle memory is measured in a fresh server per size, as a slope.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

struct Config {
    key: &'static str,
    label: &'static str,
    args: Vec<String>,
    login: bool,
}

struct Server {
    child: Child,
    addr: String,
}

/// The CPU a bench process is pinned to (`taskset -c`), when this machine has two cores or
/// more and `taskset`: the server on the first, the load generator on the second.
fn pinned(bin: &Path, cpu: usize) -> Command {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let taskset = Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if cores >= 2 && taskset {
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", &cpu.to_string()]).arg(bin);
        cmd
    } else {
        Command::new(bin)
    }
}

impl Server {
    fn start(bin: &Path, args: &[String]) -> Result<Self> {
        let mut child = pinned(bin, 0)
            .args(args)
            .env("FERRULE_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(addr) = line.trim().strip_prefix("READY ") else {
            let _ = child.kill();
            bail!("server did not start: {line}");
        };
        Ok(Self {
            addr: addr.to_owned(),
            child,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    /// Stops the server as an operator would (SIGTERM), so it cleans up after itself (the
    /// PostgreSQL configuration drops its database); killed if it takes more than 15 s (its
    /// grace time is 10 s).
    fn drop(&mut self) {
        let asked = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if asked {
            for _ in 0..150 {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            eprintln!("!!! the bench server did not stop within 15 s of SIGTERM; killing it");
        }
        if let Err(e) = self.child.kill() {
            eprintln!("!!! could not kill the bench server: {e}");
        }
        if let Err(e) = self.child.wait() {
            eprintln!("!!! could not reap the bench server: {e}");
        }
    }
}

/// CPU seconds (user and system, at the kernel's tick) that the processes of this machine named
/// `redis-server` and `postgres` have used so far: the services configuration (d) puts to work.
fn services_cpu_secs() -> (f64, f64) {
    let (mut redis, mut postgres) = (0.0, 0.0);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return (0.0, 0.0);
    };
    for entry in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // Its own user and system time, and its reaped children's (PostgreSQL's backends that
        // ended during the run are counted in the postmaster's).
        let ticks: f64 = (11..=14)
            .map(|i| {
                fields
                    .get(i)
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            })
            .sum();
        if name == "redis-server" {
            redis += ticks / 100.0;
        } else if name == "postgres" {
            postgres += ticks / 100.0;
        }
    }
    (redis, postgres)
}

/// Resident memory in KiB from /proc.
fn rss_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn load(
    bin: &Path,
    server: &Server,
    conns: usize,
    events: usize,
    pipeline: usize,
    rate: u64,
    login: bool,
) -> Result<Value> {
    let mut cmd = pinned(bin, 1);
    cmd.args(["load", "--addr", &server.addr])
        .args([
            "--conns",
            &conns.to_string(),
            "--events",
            &events.to_string(),
        ])
        .args(["--pipeline", &pipeline.to_string()])
        .args(["--rate", &rate.to_string()]);
    if login {
        cmd.args(["--login", "bench:bench-password"]);
    }
    let services_before = services_cpu_secs();
    let out = cmd.stderr(Stdio::inherit()).output()?;
    let services_after = services_cpu_secs();
    if !out.status.success() {
        bail!("load generator failed against {}", server.addr);
    }
    let mut v: Value = serde_json::from_slice(&out.stdout).context("load output")?;
    // Around the whole load run (connecting and logging in too), from the kernel's counters:
    // the services' share, not the server's.
    let events = v["events"].as_f64().unwrap_or(1.0).max(1.0);
    v["redis_cpu_us_per_event"] = json!((services_after.0 - services_before.0) * 1e6 / events);
    v["postgres_cpu_us_per_event"] = json!((services_after.1 - services_before.1) * 1e6 / events);
    Ok(v)
}

/// How much the resident memory of `server` grows, in KiB, with `conns` idle connections.
fn idle_memory(bin: &Path, server: &Server, conns: usize) -> Result<f64> {
    let before = rss_kib(server.pid());
    let mut child = pinned(bin, 1)
        .args([
            "idle",
            "--addr",
            &server.addr,
            "--conns",
            &conns.to_string(),
            "--hold",
            "30",
        ])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("idle stdout")?).read_line(&mut line)?;
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib(server.pid());
    let _ = child.kill();
    let _ = child.wait();
    if !line.starts_with("CONNECTED") {
        bail!("idle connections failed: {line}");
    }
    Ok((after - before).max(0.0))
}

/// The idle memory of `args`'s server at each of `sizes` connections, each in a fresh server:
/// `[{conns, kib}]`, and the slope between the smallest and the largest, KiB per connection.
fn idle_slope(bin: &Path, args: &[String], sizes: &[usize]) -> Result<(Vec<Value>, f64)> {
    let mut points = Vec::new();
    for &n in sizes {
        let server = Server::start(bin, args)?;
        let kib = idle_memory(bin, &server, n)?;
        eprintln!("    {n:>6} idle conns, fresh server: +{kib:.0} KiB");
        points.push((n, kib));
    }
    let slope = match (points.first(), points.last()) {
        (Some(&(n0, k0)), Some(&(n1, k1))) if n1 > n0 => (k1 - k0) / (n1 - n0) as f64,
        (Some(&(n, k)), _) => k / n.max(1) as f64,
        _ => 0.0,
    };
    let points = points
        .into_iter()
        .map(|(conns, kib)| json!({"conns": conns, "kib": kib}))
        .collect();
    Ok((points, slope))
}

fn ratio(x: f64, base: f64) -> String {
    if base > 0.0 {
        format!("{:.2}×", x / base)
    } else {
        "-".into()
    }
}

/// The long chaos run (the quick one is part of `cargo xtask test`): the chaos test of the
/// runtime, optimised, sized by `FERRULE_CHAOS_CLIENTS` and `FERRULE_CHAOS_EVENTS` (default 500
/// tabs × 200 events), against the Redis on 127.0.0.1:6379 or `FERRULE_TEST_REDIS`.
pub(crate) fn chaos(root: &Path) -> Result<()> {
    let redis =
        std::env::var("FERRULE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let size = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let mut cmd = optimised_runtime_test("chaos", "testing,redis,client");
    cmd.env("FERRULE_TEST_REDIS", redis)
        .env(
            "FERRULE_CHAOS_CLIENTS",
            size("FERRULE_CHAOS_CLIENTS", "500"),
        )
        .env("FERRULE_CHAOS_EVENTS", size("FERRULE_CHAOS_EVENTS", "200"))
        .current_dir(root);
    if !cmd.status()?.success() {
        bail!("the chaos run failed");
    }
    Ok(())
}

/// `cargo test --release` of one test binary of the runtime, with its output shown.
pub(crate) fn optimised_runtime_test(test: &str, features: &str) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args([
        "test",
        "--release",
        "-p",
        "ferrule-web",
        "--features",
        features,
        "--test",
        test,
        "--",
        "--nocapture",
    ]);
    cmd
}

pub(crate) fn run(
    root: &Path,
    target_dir: &Path,
    quick: bool,
    postgres: Option<String>,
    redis: Option<String>,
) -> Result<()> {
    let profile = if quick { "debug" } else { "release" };
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build
        .args(["build", "-q", "-p", "ferrule-bench"])
        .current_dir(root);
    if !quick {
        build.arg("--release");
    }
    if !build.status()?.success() {
        bail!("building ferrule-bench failed");
    }
    let bin = target_dir.join(profile).join("ferrule-bench");
    let out_dir = root.join("target/bench");
    std::fs::create_dir_all(&out_dir)?;
    let sqlite = out_dir.join("bench.sqlite3");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", sqlite.display()));
    }

    // The full bridge on the SQLite file, with `extra` flags.
    let full_on_sqlite = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = vec![
            "serve-ferrule".into(),
            "--mode".into(),
            "full".into(),
            "--database".into(),
            format!("sqlite://{}?mode=rwc", sqlite.display()),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        args
    };
    let mut configs = vec![
        Config {
            key: "a",
            label: "(a) bare socketioxide echo",
            args: vec!["serve-echo".into()],
            login: false,
        },
        Config {
            key: "b",
            label: "(b) Ferrule, tier none",
            args: vec!["serve-ferrule".into(), "--mode".into(), "none".into()],
            login: false,
        },
        Config {
            key: "c",
            label: "(c) full bridge, SQLite",
            args: full_on_sqlite(&[]),
            login: true,
        },
        Config {
            key: "c=",
            label: "(c) as served: JSON log at the default filter, /metrics",
            args: full_on_sqlite(&["--default-log"]),
            login: true,
        },
        Config {
            key: "c+",
            label: "(c) observed: JSON log line per event, spans, /metrics",
            args: full_on_sqlite(&["--observe"]),
            login: true,
        },
    ];
    match (postgres, redis) {
        (Some(base), Some(redis)) => configs.push(Config {
            key: "d",
            label: "(d) full bridge, PostgreSQL + Redis",
            args: vec![
                "serve-ferrule".into(),
                "--mode".into(),
                "full".into(),
                "--database".into(),
                format!(
                    "{}/ferrule_bench_{}",
                    base.trim_end_matches('/'),
                    std::process::id()
                ),
                "--redis".into(),
                redis,
            ],
            login: true,
        }),
        _ => eprintln!("!!! PostgreSQL or Redis not reachable: configuration (d) is skipped"),
    }

    let levels: &[usize] = if quick { &[1, 10] } else { &[1, 100, 1000] };
    let total = if quick { 200 } else { 20_000 };
    // Each process holds a descriptor per socket, within this machine's limit (20,000 here).
    let idle_sizes: &[usize] = if quick { &[50, 200] } else { &[1000, 10_000] };
    let mut results = Vec::new();
    for c in &configs {
        eprintln!("==> {}", c.label);
        let server = Server::start(&bin, &c.args)?;
        let mut runs = Vec::new();
        for &n in levels {
            let events = (total / n).max(if quick { 5 } else { 20 });
            let mut v = load(&bin, &server, n, events, 1, 0, c.login)?;
            v["conns"] = json!(n);
            v["mode"] = json!("sequential");
            eprintln!(
                "    {n:>5} conns: {:>9.0} ev/s  p50 {:>6} µs  p99 {:>6} µs  cpu {:>7.1} µs/ev  {:>6.1} allocs/ev",
                v["events_per_sec"].as_f64().unwrap_or(0.0),
                v["p50_us"],
                v["p99_us"],
                v["server_cpu_us_per_event"].as_f64().unwrap_or(0.0),
                v["allocs_per_event"].as_f64().unwrap_or(0.0)
            );
            runs.push(v);
        }
        let (pc, pp) = if quick { (2, 4) } else { (10, 10) };
        let mut v = load(
            &bin,
            &server,
            pc,
            if quick { 20 } else { 1000 },
            pp,
            0,
            c.login,
        )?;
        v["conns"] = json!(pc);
        v["mode"] = json!(format!("pipelined x{pp}"));
        eprintln!(
            "    pipelined: {:>9.0} ev/s",
            v["events_per_sec"].as_f64().unwrap_or(0.0)
        );
        runs.push(v);
        // Paced: latency under a steady load below capacity, where closed-loop runs mostly
        // measure queueing behind the other connections; then many tabs at one event a second
        // each, as people click.
        let paced: &[(usize, u64, u64)] = if quick {
            &[(10, 200, 1), (20, 20, 1)]
        } else {
            &[(100, 5000, 5), (1000, 1000, 5)]
        };
        for &(rc, rate, secs) in paced {
            let mut v = load(
                &bin,
                &server,
                rc,
                (rate * secs / rc as u64) as usize,
                1,
                rate,
                c.login,
            )?;
            v["conns"] = json!(rc);
            v["mode"] = json!(format!("paced {rate}/s"));
            eprintln!(
                "    paced {rate}/s over {rc} conns: p50 {} µs  p99 {} µs  cpu {:.1} µs/ev",
                v["p50_us"],
                v["p99_us"],
                v["server_cpu_us_per_event"].as_f64().unwrap_or(0.0)
            );
            runs.push(v);
        }
        drop(server);
        let (idle, slope) = idle_slope(&bin, &c.args, idle_sizes)?;
        eprintln!("    idle memory: {slope:.2} KiB per connection");
        results.push(json!({"key": c.key, "label": c.label, "runs": runs, "idle": idle, "kib_per_idle_conn": slope}));
    }

    let md = render(&results, quick);
    println!("\n{md}");
    std::fs::write(
        out_dir.join("results.json"),
        serde_json::to_string_pretty(&json!({"quick": quick, "results": results}))?,
    )?;
    std::fs::write(out_dir.join("results.md"), &md)?;
    eprintln!("written: {}", out_dir.join("results.md").display());
    Ok(())
}

fn render(results: &[Value], quick: bool) -> String {
    let base = &results[0];
    let find = |r: &Value, mode: &str, conns: u64| -> Option<Value> {
        r["runs"]
            .as_array()?
            .iter()
            .find(|v| v["mode"] == mode && v["conns"].as_u64() == Some(conns))
            .cloned()
    };
    let mut md = String::new();
    if quick {
        md.push_str("_Quick mode: debug build and few events. These figures only show the harness works._\n\n");
    }
    md.push_str("| configuration | conns | events/s | vs (a) | p50 µs | p99 µs | vs (a) | server CPU µs/event | vs (a) | allocations/event | vs (a) |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in results {
        for run in r["runs"].as_array().into_iter().flatten() {
            let conns = run["conns"].as_u64().unwrap_or(0);
            let mode = run["mode"].as_str().unwrap_or("");
            let b = find(base, mode, conns).unwrap_or(Value::Null);
            let eps = run["events_per_sec"].as_f64().unwrap_or(0.0);
            let cpu = run["server_cpu_us_per_event"].as_f64().unwrap_or(0.0);
            let allocs = run["allocs_per_event"].as_f64().unwrap_or(0.0);
            let p99 = run["p99_us"].as_f64().unwrap_or(0.0);
            md.push_str(&format!(
                "| {} | {conns}{} | {eps:.0} | {} | {} | {p99:.0} | {} | {cpu:.1} | {} | {allocs:.1} | {} |\n",
                r["label"].as_str().unwrap_or(""),
                if mode == "sequential" {
                    String::new()
                } else {
                    format!(" ({mode})")
                },
                ratio(eps, b["events_per_sec"].as_f64().unwrap_or(0.0)),
                run["p50_us"],
                ratio(p99, b["p99_us"].as_f64().unwrap_or(0.0)),
                ratio(cpu, b["server_cpu_us_per_event"].as_f64().unwrap_or(0.0)),
                ratio(allocs, b["allocs_per_event"].as_f64().unwrap_or(0.0)),
            ));
        }
    }
    md.push_str("\nThe services' CPU per event, from the kernel's counters of every `redis-server` and `postgres` process of the machine around each load run (so with the run's connections and logins, at 10 ms resolution), and the server's and theirs together against the echo's:\n\n| configuration | conns | Redis µs/event | PostgreSQL µs/event | server + services µs/event | vs (a) |\n|---|---|---|---|---|---|\n");
    for r in results.iter().filter(|r| r["key"] == "d") {
        for run in r["runs"].as_array().into_iter().flatten() {
            let conns = run["conns"].as_u64().unwrap_or(0);
            let mode = run["mode"].as_str().unwrap_or("");
            let b = find(base, mode, conns).unwrap_or(Value::Null);
            let num = |k: &str| run[k].as_f64().unwrap_or(0.0);
            let total = num("server_cpu_us_per_event")
                + num("redis_cpu_us_per_event")
                + num("postgres_cpu_us_per_event");
            md.push_str(&format!(
                "| {} | {conns}{} | {:.1} | {:.1} | {total:.1} | {} |\n",
                r["label"].as_str().unwrap_or(""),
                if mode == "sequential" {
                    String::new()
                } else {
                    format!(" ({mode})")
                },
                num("redis_cpu_us_per_event"),
                num("postgres_cpu_us_per_event"),
                ratio(total, b["server_cpu_us_per_event"].as_f64().unwrap_or(0.0)),
            ));
        }
    }
    md.push_str(
        "\nIdle memory, each size in a fresh server; the slope is KiB per connection between the smallest and the largest:\n\n| configuration | growth at each size (KiB) | slope, KiB per connection | vs (a) |\n|---|---|---|---|\n",
    );
    let base_mem = base["kib_per_idle_conn"].as_f64().unwrap_or(0.0);
    for r in results {
        let m = r["kib_per_idle_conn"].as_f64().unwrap_or(0.0);
        let points: Vec<String> = r["idle"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| format!("{}: {:.0}", p["conns"], p["kib"].as_f64().unwrap_or(0.0)))
            .collect();
        md.push_str(&format!(
            "| {} | {} | {m:.2} | {} |\n",
            r["label"].as_str().unwrap_or(""),
            points.join(", "),
            ratio(m, base_mem)
        ));
    }
    // One column per phase, in the bridge's order (the first run that has them names them).
    let phases: Vec<String> = results
        .iter()
        .flat_map(|r| r["runs"].as_array().into_iter().flatten())
        .find_map(|run| {
            let names: Vec<String> = run["phases"]
                .as_array()?
                .iter()
                .filter_map(|p| p["phase"].as_str().map(str::to_owned))
                .collect();
            (!names.is_empty()).then_some(names)
        })
        .unwrap_or_default();
    md.push_str(&format!(
        "\nEach bridge phase, µs per event (the runtime's own counters), at each sequential load:\n\n| configuration | conns | {} |\n|---|---|{}\n",
        phases.join(" | "),
        "---|".repeat(phases.len())
    ));
    for r in results.iter().skip(1) {
        let sequential = r["runs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v["mode"] == "sequential");
        for run in sequential {
            let events = run["events"].as_f64().unwrap_or(1.0).max(1.0);
            let cells: Vec<String> = phases
                .iter()
                .map(|name| {
                    let nanos = run["phases"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|p| p["phase"] == name.as_str())
                        .and_then(|p| p["nanos"].as_f64())
                        .unwrap_or(0.0);
                    format!("{:.1}", nanos / 1000.0 / events)
                })
                .collect();
            md.push_str(&format!(
                "| {} | {} | {} |\n",
                r["label"].as_str().unwrap_or(""),
                run["conns"],
                cells.join(" | ")
            ));
        }
    }
    md
}

/// Where cargo puts builds: `CARGO_TARGET_DIR`, else `<root>/target`.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(conns: u64, eps: f64, cpu: f64, allocs: f64, lock_ns: f64) -> Value {
        json!({
            "conns": conns, "mode": "sequential", "events": 100, "events_per_sec": eps,
            "p50_us": 100, "p99_us": 200.0, "server_cpu_us_per_event": cpu,
            "allocs_per_event": allocs,
            "phases": [{"phase": "decode", "nanos": 1e6}, {"phase": "lock", "nanos": lock_ns}],
        })
    }

    #[test]
    fn the_report_gives_ratios_to_the_echo_allocations_and_phases_per_load() {
        let results = vec![
            json!({"label": "(a) echo", "runs": [run(1, 1000.0, 10.0, 25.0, 0.0)],
                   "idle": [{"conns": 10, "kib": 100.0}, {"conns": 110, "kib": 300.0}],
                   "kib_per_idle_conn": 2.0}),
            json!({"label": "(c) full", "runs": [run(1, 500.0, 25.0, 100.0, 5e6)],
                   "idle": [], "kib_per_idle_conn": 3.0}),
            json!({"key": "d", "label": "(d) services", "idle": [], "kib_per_idle_conn": 3.0,
                   "runs": [{"conns": 1, "mode": "sequential", "server_cpu_us_per_event": 20.0,
                             "redis_cpu_us_per_event": 5.0, "postgres_cpu_us_per_event": 15.0}]}),
        ];
        let md = render(&results, false);
        let full = md
            .lines()
            .find(|l| l.starts_with("| (c) full | 1 | 500 "))
            .unwrap_or_else(|| panic!("{md}"));
        for cell in [" 0.50× ", " 25.0 | 2.50× ", " 100.0 | 4.00× "] {
            assert!(full.contains(cell), "{cell} in {full}");
        }
        assert!(
            md.contains("| (a) echo | 10: 100, 110: 300 | 2.00 | 1.00× |"),
            "{md}"
        );
        assert!(md.contains("| (c) full | 1 | 10.0 | 50.0 |"), "{md}");
        assert!(
            md.contains("| configuration | conns | decode | lock |"),
            "{md}"
        );
        assert!(
            md.contains("| (d) services | 1 | 5.0 | 15.0 | 40.0 | 4.00× |"),
            "{md}"
        );
    }
}
