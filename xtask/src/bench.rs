//! `cargo xtask bench [--quick]`: what one event costs through Ferrule's bridge, side by side
//! with a bare socketioxide server measured in the same run. Figures are reported as ratios to
//! that baseline, since these machines are noisy. Results go to `target/bench/` as JSON and
//! markdown.

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

impl Server {
    fn start(bin: &Path, args: &[String]) -> Result<Self> {
        let mut child = Command::new(bin)
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

/// Server CPU seconds (user + system) from /proc.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
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
    let mut cmd = Command::new(bin);
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
    let cpu_before = cpu_secs(server.pid());
    let out = cmd.stderr(Stdio::inherit()).output()?;
    let cpu = cpu_secs(server.pid()) - cpu_before;
    if !out.status.success() {
        bail!("load generator failed against {}", server.addr);
    }
    let mut v: Value = serde_json::from_slice(&out.stdout).context("load output")?;
    let n = v["events"].as_f64().unwrap_or(1.0).max(1.0);
    v["server_cpu_us_per_event"] = json!(cpu * 1e6 / n);
    Ok(v)
}

fn idle_memory(bin: &Path, server: &Server, conns: usize) -> Result<f64> {
    let before = rss_kib(server.pid());
    let mut child = Command::new(bin)
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
    Ok((after - before).max(0.0) / conns as f64)
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
    let idle = if quick { 100 } else { 10_000 };
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
                "    {n:>5} conns: {:>9.0} ev/s  p50 {:>6} µs  p99 {:>6} µs  cpu {:>7.1} µs/ev",
                v["events_per_sec"].as_f64().unwrap_or(0.0),
                v["p50_us"],
                v["p99_us"],
                v["server_cpu_us_per_event"].as_f64().unwrap_or(0.0)
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
        // measure queueing behind the other connections.
        let (rc, rate, secs) = if quick { (10, 200, 1) } else { (100, 5000, 5) };
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
            "    paced {rate}/s over {rc} conns: p50 {} µs  p99 {} µs",
            v["p50_us"], v["p99_us"]
        );
        runs.push(v);
        let per_conn = idle_memory(&bin, &server, idle)?;
        eprintln!("    {idle} idle conns: {per_conn:.1} KiB each");
        results.push(json!({"key": c.key, "label": c.label, "runs": runs, "idle_conns": idle, "kib_per_idle_conn": per_conn}));
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
    md.push_str("| configuration | conns | events/s | vs (a) | p50 µs | p99 µs | server CPU µs/event | vs (a) |\n|---|---|---|---|---|---|---|---|\n");
    for r in results {
        for run in r["runs"].as_array().into_iter().flatten() {
            let conns = run["conns"].as_u64().unwrap_or(0);
            let mode = run["mode"].as_str().unwrap_or("");
            let b = find(base, mode, conns).unwrap_or(Value::Null);
            let eps = run["events_per_sec"].as_f64().unwrap_or(0.0);
            let cpu = run["server_cpu_us_per_event"].as_f64().unwrap_or(0.0);
            md.push_str(&format!(
                "| {} | {conns}{} | {eps:.0} | {} | {} | {} | {cpu:.1} | {} |\n",
                r["label"].as_str().unwrap_or(""),
                if mode == "sequential" {
                    String::new()
                } else {
                    format!(" ({mode})")
                },
                ratio(eps, b["events_per_sec"].as_f64().unwrap_or(0.0)),
                run["p50_us"],
                run["p99_us"],
                ratio(cpu, b["server_cpu_us_per_event"].as_f64().unwrap_or(0.0)),
            ));
        }
    }
    md.push_str(
        "\n| configuration | idle conns | KiB per connection | vs (a) |\n|---|---|---|---|\n",
    );
    let base_mem = base["kib_per_idle_conn"].as_f64().unwrap_or(0.0);
    for r in results {
        let m = r["kib_per_idle_conn"].as_f64().unwrap_or(0.0);
        md.push_str(&format!(
            "| {} | {} | {m:.1} | {} |\n",
            r["label"].as_str().unwrap_or(""),
            r["idle_conns"],
            ratio(m, base_mem)
        ));
    }
    md.push_str("\nPer-event cost of each bridge phase (µs, from the runtime's counters, at the highest sequential load):\n\n| configuration | phase | µs/event |\n|---|---|---|\n");
    for r in results.iter().skip(1) {
        let Some(run) = r["runs"]
            .as_array()
            .and_then(|runs| runs.iter().rev().find(|v| v["mode"] == "sequential"))
        else {
            continue;
        };
        let events = run["events"].as_f64().unwrap_or(1.0).max(1.0);
        for p in run["phases"].as_array().into_iter().flatten() {
            let nanos = p["nanos"].as_f64().unwrap_or(0.0);
            if nanos > 0.0 {
                md.push_str(&format!(
                    "| {} | {} | {:.1} |\n",
                    r["label"].as_str().unwrap_or(""),
                    p["phase"].as_str().unwrap_or(""),
                    nanos / 1000.0 / events
                ));
            }
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
