//! Counting what the test runners report into the one line CI reads: libtest's `test result:`
//! lines, node's summary, the tests that said they skipped for want of a service, and the whole
//! suites that could not run here (each one skip, with its reason on the line).

use crate::*;

/// Tests counted: those that ran and passed or failed, and those that did not run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) passed: u64,
    pub(crate) failed: u64,
    /// Ignored tests, tests that skipped all or part of what they check, and whole suites that
    /// did not run (one each).
    pub(crate) skipped: u64,
    /// Why something was skipped, `suite: reason`, in the order it happened.
    pub(crate) reasons: Vec<String>,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Self) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.reasons.extend(other.reasons);
    }
}

/// Whether this run is CI (`CI=true`, as `.ci/run` sets): there everything a suite needs is
/// installed or started, so a suite that cannot run is a failure, not a skip.
pub(crate) fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

impl Tally {
    /// The summary line CI reads: `tests: N passed, N failed, N skipped`, then why things were
    /// skipped, if they were.
    pub(crate) fn line(&self) -> String {
        let count = format!(
            "tests: {} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        );
        // CI's reader wants the count alone on the last line: the reasons go on the one before.
        if self.reasons.is_empty() {
            count
        } else {
            format!("skipped suites: {}\n{count}", self.reasons.join("; "))
        }
    }

    /// Records that the whole suite `suite` did not run because `reason` (something missing
    /// that `cargo xtask setup` or the machine should provide): one skip, named on the line. In
    /// CI it is an error instead.
    pub(crate) fn skip_suite(&mut self, suite: &str, reason: &str) -> Result<()> {
        self.skip_suite_in(is_ci(), suite, reason)
    }

    /// [`Tally::skip_suite`], failing only when `ci`; `false` for a suite that even CI cannot
    /// run (the reason says why).
    pub(crate) fn skip_suite_in(&mut self, ci: bool, suite: &str, reason: &str) -> Result<()> {
        if ci {
            bail!("CI=true but {suite} cannot run: {reason}");
        }
        eprintln!("\n!!! {suite} SKIPS: {reason}\n");
        self.skipped += 1;
        self.reasons.push(format!("{suite}: {reason}"));
        Ok(())
    }

    /// Names why some tests will skip one by one (each counted when it records its skip), for
    /// the summary line. In CI it is an error instead.
    pub(crate) fn skips_ahead_in(&mut self, ci: bool, tests: &str, reason: &str) -> Result<()> {
        if ci {
            bail!("CI=true but {reason}: {tests} cannot run");
        }
        eprintln!("\n!!! {reason}: {tests} will SKIP\n");
        self.reasons.push(format!("{tests}: {reason}"));
        Ok(())
    }
}

/// Runs test command `cmd`, echoing its output, and reads each line with `read` into the run's
/// tally. Returns the tally whatever happened, and whether the command and its tests passed.
pub(crate) fn run_tallying(
    what: &str,
    cmd: &mut Command,
    mut read: impl FnMut(&str, &mut Tally),
) -> (Tally, Result<()>) {
    use std::io::{BufRead, BufReader};
    eprintln!("==> {what}");
    let started = Instant::now();
    let mut tally = Tally::default();
    let outcome = (|| -> Result<()> {
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("could not start: {what}"))?;
        let out = child.stdout.take().context("test output")?;
        for line in BufReader::new(out).lines() {
            let line = line?;
            println!("{line}");
            read(&line, &mut tally);
        }
        let status = child.wait()?;
        if !status.success() || tally.failed > 0 {
            bail!("{what} failed ({status})");
        }
        Ok(())
    })();
    if outcome.is_ok() {
        eprintln!(
            "    {what}: {} passed, {} skipped in {:.1}s",
            tally.passed,
            tally.skipped,
            started.elapsed().as_secs_f64()
        );
    }
    (tally, outcome)
}

/// Runs `cmd` (a `cargo test`), adds its results to `total` and fails when it failed. Tests
/// that recorded a skip (`ferrule::testing::skipped`) count as skipped, not passed.
pub(crate) fn run_cargo_tests(what: &str, cmd: &mut Command, total: &mut Tally) -> Result<()> {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run_number = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let skips =
        std::env::temp_dir().join(format!("ferrule-skips-{}-{run_number}", std::process::id()));
    remove_if_there(&skips)?;
    cmd.env("FERRULE_TEST_SKIPS", &skips);
    let (mut run, outcome) = run_tallying(what, cmd, libtest_tally);
    let skipped = distinct_lines(&skips)?;
    remove_if_there(&skips)?;
    run.passed = run.passed.saturating_sub(skipped);
    run.skipped += skipped;
    if skipped > 0 {
        eprintln!("    {what}: {skipped} of them skipped for want of a service (SKIPPED above)");
    }
    *total += run;
    outcome
}

fn remove_if_there(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// How many different tests are named in the skips file (none when there is no file).
fn distinct_lines(path: &Path) -> Result<u64> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let tests: std::collections::BTreeSet<&str> = text.lines().collect();
    Ok(tests.len() as u64)
}

/// Reads one of libtest's `test result: ok. 3 passed; 0 failed; 1 ignored; …` lines.
pub(crate) fn libtest_tally(line: &str, tally: &mut Tally) {
    let Some(rest) = line.strip_prefix("test result: ") else {
        return;
    };
    let count = |word: &str| {
        rest.split(';')
            .find_map(|part| {
                part.trim()
                    .strip_suffix(word)?
                    .trim()
                    .rsplit(' ')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0)
    };
    tally.passed += count("passed");
    tally.failed += count("failed");
    tally.skipped += count("ignored");
}

/// Reads one line of node's test summary (`ℹ pass N`, `ℹ fail N`, `ℹ cancelled N`,
/// `ℹ skipped N`).
pub(crate) fn node_tally(line: &str, tally: &mut Tally) {
    let words: Vec<&str> = line.split_whitespace().collect();
    if let [_, key, n] = words.as_slice()
        && let Ok(n) = n.parse::<u64>()
    {
        match *key {
            "pass" => tally.passed = n,
            // A cancelled test (its file timed out or crashed) did not pass.
            "fail" | "cancelled" => tally.failed += n,
            "skipped" => tally.skipped = n,
            _ => {}
        }
    }
}

/// The reporter that names each test file that ran a test (`ferrule-ran: FILE`).
const FILES_REPORTER: &str = "./lib/files-reporter.mjs";

/// Runs node's test runner (`cmd`, in `e2e/`) on `files`, adds its results to `total`, and
/// fails when a test failed or when one of `files` ran no test: a file that stops loading its
/// tests must not shrink the run unseen. `also` sees every line (for figures a test prints).
pub(crate) fn run_node_files(
    what: &str,
    cmd: &mut Command,
    files: &[String],
    total: &mut Tally,
    mut also: impl FnMut(&str),
) -> Result<()> {
    cmd.args([
        "--test",
        "--test-reporter=spec",
        "--test-reporter-destination=stdout",
    ])
    .arg(format!("--test-reporter={FILES_REPORTER}"))
    .arg("--test-reporter-destination=stdout")
    .args(files);
    let mut ran = Vec::new();
    let (run, outcome) = run_tallying(what, cmd, |line, tally| {
        node_tally(line, tally);
        if let Some(file) = line.strip_prefix("ferrule-ran: ") {
            ran.push(file.trim().to_owned());
        }
        also(line);
    });
    *total += run;
    outcome?;
    let silent: Vec<&String> = files
        .iter()
        .filter(|f| !ran.iter().any(|r| Path::new(r).ends_with(f.as_str())))
        .collect();
    if !silent.is_empty() {
        total.failed += silent.len() as u64;
        bail!(
            "{what}: these test files ran no test (do they still load their tests?): {}",
            silent
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test of this crate that could not check what it checks: said, and recorded where
    /// `run_cargo_tests` counts it as skipped, not passed.
    fn skipped(test: &str, why: &str) {
        use std::io::Write as _;
        eprintln!("SKIPPED: {why}");
        if let Ok(path) = std::env::var("FERRULE_TEST_SKIPS") {
            let recorded = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| writeln!(f, "xtask {test}"));
            if let Err(e) = recorded {
                eprintln!("could not record the skip in {path}: {e}");
            }
        }
    }

    #[test]
    fn a_suite_that_cannot_run_is_one_skip_named_on_the_line_and_fails_ci() {
        let mut total = Tally {
            passed: 410,
            ..Tally::default()
        };
        total
            .skip_suite_in(false, "e2e", "no Chromium, no node")
            .unwrap();
        let mut more = Tally::default();
        more.skip_suite_in(false, "newcomer-pg", "PostgreSQL not reachable")
            .unwrap();
        more.skips_ahead_in(false, "service tests", "Redis not reachable")
            .unwrap();
        total += more;
        assert_eq!(
            total.line(),
            "skipped suites: e2e: no Chromium, no node; \
             newcomer-pg: PostgreSQL not reachable; service tests: Redis not reachable\n\
             tests: 410 passed, 0 failed, 2 skipped"
        );
        // CI parsers read the last line, which must be the count alone.
        assert_eq!(
            total.line().lines().last(),
            Some("tests: 410 passed, 0 failed, 2 skipped")
        );
        let err = Tally::default()
            .skip_suite_in(true, "e2e", "no Chromium")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CI=true") && err.contains("e2e") && err.contains("no Chromium"),
            "{err}"
        );
        assert!(
            Tally::default()
                .skips_ahead_in(true, "service tests", "Redis not reachable")
                .is_err()
        );
        assert_eq!(
            Tally::default().line(),
            "tests: 0 passed, 0 failed, 0 skipped"
        );
    }

    /// Every suite `cargo xtask test` leaves out goes through [`Tally::skip_suite`] (counted,
    /// named, an error in CI), never a bare message. Benchmarks are not tests.
    #[test]
    fn no_suite_is_skipped_with_a_bare_message() {
        let src = crate::root().unwrap().join("xtask/src");
        let mut bare = Vec::new();
        for entry in std::fs::read_dir(&src).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name == "tally.rs" || name == "bench.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                // An eprintln! and the lines of its arguments.
                let call = lines[i..(i + 4).min(lines.len())].join(" ");
                if line.contains("eprintln!") && call.to_lowercase().contains("skip") {
                    bare.push(format!("{name}:{}", i + 1));
                }
            }
        }
        assert!(bare.is_empty(), "skips not counted: {bare:?}");
    }

    #[test]
    fn the_ci_script_runs_as_ci() {
        let script = std::fs::read_to_string(crate::root().unwrap().join(".ci/run")).unwrap();
        let export = script.lines().position(|l| l.trim() == "export CI=true");
        let test = script.lines().position(|l| l.trim() == "cargo xtask test");
        assert!(
            matches!((export, test), (Some(e), Some(t)) if e < t),
            ".ci/run must export CI=true before `cargo xtask test`: missing services fail there"
        );
    }

    #[test]
    fn libtest_and_node_summaries_are_read() {
        let mut t = Tally::default();
        libtest_tally(
            "test result: ok. 12 passed; 1 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.1s",
            &mut t,
        );
        libtest_tally("test foo ... ok", &mut t);
        assert_eq!((t.passed, t.failed, t.skipped), (12, 1, 2));
        let mut n = Tally::default();
        for line in [
            "ℹ tests 9",
            "ℹ pass 6",
            "ℹ fail 1",
            "ℹ cancelled 1",
            "ℹ skipped 1",
        ] {
            node_tally(line, &mut n);
        }
        assert_eq!((n.passed, n.failed, n.skipped), (6, 2, 1));
        assert_eq!(n.line(), "tests: 6 passed, 2 failed, 1 skipped");
    }

    #[test]
    fn tests_that_recorded_a_skip_count_as_skipped_not_passed() {
        // Two records of one test, one of another, and libtest's summary of five tests.
        let script = "echo bin t1 >> \"$FERRULE_TEST_SKIPS\"; echo bin t1 >> \"$FERRULE_TEST_SKIPS\"; \
             echo bin t2 >> \"$FERRULE_TEST_SKIPS\"; \
             echo 'test result: ok. 5 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out'";
        let mut total = Tally::default();
        run_cargo_tests("skips", Command::new("sh").args(["-c", script]), &mut total).unwrap();
        assert_eq!((total.passed, total.failed, total.skipped), (3, 0, 3));
    }

    #[test]
    fn a_test_file_that_runs_no_test_fails_the_run() {
        if which("node").is_none() {
            return skipped(
                "a_test_file_that_runs_no_test_fails_the_run",
                "no node here",
            );
        }
        let dir = std::env::temp_dir().join(format!("xtask-node-files-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("lib")).unwrap();
        std::fs::copy(
            crate::root().unwrap().join("e2e/lib/files-reporter.mjs"),
            dir.join("lib/files-reporter.mjs"),
        )
        .unwrap();
        std::fs::write(
            dir.join("a.test.mjs"),
            "import test from 'node:test';\ntest('a', () => {});\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("b.test.mjs"),
            "import test from 'node:test';\ntest.skip('b', () => {});\n",
        )
        .unwrap();
        let files = ["a.test.mjs".to_owned(), "b.test.mjs".to_owned()];
        let mut total = Tally::default();
        let err = run_node_files(
            "node files",
            Command::new("node").current_dir(&dir),
            &files,
            &mut total,
            |_| {},
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("ran no test") && err.contains("b.test.mjs"),
            "{err}"
        );
        assert!(!err.contains("a.test.mjs"), "{err}");
        assert_eq!((total.passed, total.skipped, total.failed), (1, 1, 1));
        let mut total = Tally::default();
        run_node_files(
            "node files",
            Command::new("node").current_dir(&dir),
            &files[..1],
            &mut total,
            |_| {},
        )
        .unwrap();
        assert_eq!(total.passed, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
