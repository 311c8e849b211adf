// Shared by the e2e tests: start an example's server on its own port, SQLite file and directory,
// launch Debian's headless Chromium through playwright-core, and keep screenshots of failures.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.E2E_CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = process.env.E2E_ARTIFACTS || join(tmpdir(), 'ferrule-e2e-artifacts');

/** The server binary of example `app`, built by `cargo xtask e2e` into E2E_BIN_DIR. */
function serverBin(app) {
  const dir = process.env.E2E_BIN_DIR;
  if (!dir) throw new Error('E2E_BIN_DIR is not set: run these tests with `cargo xtask test` (or `cargo xtask e2e`)');
  return join(dir, app);
}

/** The repository's root (for example files such as an app's Ferrule.toml). */
export const ROOT = new URL('../..', import.meta.url).pathname;

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** The database of one server: a SQLite file in `dir`, or, when E2E_PG_ADMIN names a
 * PostgreSQL server (`postgres://user@host:port/postgres`), a new database there made with psql. */
function database(dir, port) {
  const admin = process.env.E2E_PG_ADMIN;
  if (!admin) return { url: `sqlite://${join(dir, 'app.sqlite3')}?mode=rwc`, drop: () => {} };
  const name = `ferrule_e2e_${process.pid}_${port}`;
  const psql = (sql) => spawnSync('psql', [admin, '-qc', sql], { encoding: 'utf8' });
  const made = psql(`CREATE DATABASE ${name}`);
  if (made.status !== 0) throw new Error(`cannot create the database ${name} with psql: ${made.stderr || made.error}`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/** A server of example `app` with its own database and working directory; `restart()` brings
 * it back on the same port. `host` serves the app another way: binary `host.bin` run with
 * `host.args`, ready once `host.health` answers (a host app that mounts the example). */
export async function startServer(env = {}, app = 'counter', host = null) {
  const dir = mkdtempSync(join(tmpdir(), 'ferrule-e2e-'));
  const port = await freePort();
  const db = database(dir, port);
  const baseEnv = {
    ...process.env,
    DATABASE_URL: db.url,
    FERRULE_ADDR: `127.0.0.1:${port}`,
    FERRULE_LOG: process.env.FERRULE_LOG || 'warn',
    ...env,
  };
  const migrate = spawnSync(serverBin(app), ['migrate'], { env: baseEnv, cwd: dir, encoding: 'utf8' });
  if (migrate.status !== 0) throw new Error(`migrate failed: ${migrate.stderr}`);
  const server = { url: `http://127.0.0.1:${port}`, port, dir, env: baseEnv, child: null, log: '' };
  server.run = (args, env = {}) => spawnSync(serverBin(app), args, { env: { ...baseEnv, ...env }, cwd: dir, encoding: 'utf8', input: '' });
  server.start = async () => {
    const child = host
      ? spawn(serverBin(host.bin), host.args, { env: baseEnv, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(serverBin(app), ['serve'], { env: baseEnv, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d) => { server.log += d; });
    child.stderr.on('data', (d) => { server.log += d; });
    server.child = child;
    const deadline = Date.now() + 20000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server exited: ${server.log}`);
      try {
        const r = await fetch(`${server.url}${host ? host.health : '/_health'}`);
        if (r.ok) return;
      } catch { /* not up yet */ }
      if (Date.now() > deadline) throw new Error(`server did not come up: ${server.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  server.stop = async () => {
    const child = server.child;
    if (!child || child.exitCode !== null) return child?.exitCode ?? null;
    const exited = new Promise((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    return exited;
  };
  server.restart = async () => { await server.stop(); await server.start(); };
  /** Stops the server for good and deletes its database. */
  server.close = async () => { await server.stop(); db.drop(); };
  await server.start();
  return server;
}

/** A second process of `server`'s app on its own port, sharing its database, directory and
 * environment (a second node behind a load balancer: give `server` a REDIS_URL). */
export async function startPeer(server, app = 'counter') {
  const port = await freePort();
  const peer = { url: `http://127.0.0.1:${port}`, log: '' };
  const child = spawn(serverBin(app), ['serve'], {
    env: { ...server.env, FERRULE_ADDR: `127.0.0.1:${port}` }, cwd: server.dir, stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d) => { peer.log += d; });
  child.stderr.on('data', (d) => { peer.log += d; });
  peer.stop = async () => {
    if (child.exitCode !== null) return child.exitCode;
    const exited = new Promise((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    return exited;
  };
  const deadline = Date.now() + 20000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`peer exited: ${peer.log}`);
    try {
      if ((await fetch(`${peer.url}/_health`)).ok) return peer;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) {
      await peer.stop();
      throw new Error(`peer did not come up: ${peer.log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Records what a user would see go wrong: console errors, page errors, failed requests. */
export function watch(page, problems) {
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.url()}`); });
  return page;
}

/** Runs `body(t)`; on failure saves a screenshot of every open page as a test artifact. */
export async function withArtifacts(t, context, body) {
  try {
    await body();
  } catch (e) {
    mkdirSync(ARTIFACTS, { recursive: true });
    const safe = t.name.replace(/[^a-z0-9]+/gi, '-');
    let i = 0;
    for (const p of context.pages()) {
      const path = join(ARTIFACTS, `${safe}-${i++}.png`);
      await p.screenshot({ path }).catch(() => {});
      console.error(`screenshot: ${path}`);
    }
    throw e;
  }
}

/**
 * Runs `body({ server, context, problems })` against a fresh server of `app` (with `env`) and a
 * fresh browser context (with `contextOptions`), so no state leaks between tests; both are
 * closed whatever happens, and a failure leaves screenshots.
 */
export async function scenario(browser, t, body, { app = 'counter', env = {}, contextOptions = {}, host = null } = {}) {
  const server = await startServer(env, app, host);
  const context = await browser.newContext(contextOptions);
  const problems = [];
  try {
    await withArtifacts(t, context, () => body({ server, context, problems }));
  } finally {
    await context.close();
    await server.close();
  }
}

export const count = (page) => page.textContent('#count');
export const waitCount = (page, n, timeout = 10000) =>
  page.waitForFunction((n) => document.querySelector('#count')?.textContent === String(n), n, { timeout });
export const waitConnected = (page, timeout = 20000) =>
  page.waitForSelector('.ferrule-connection[data-status="connected"]', { timeout });
