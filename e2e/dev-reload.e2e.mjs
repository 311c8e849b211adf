// `ferrule dev` as a user lives with it, in Chromium: save a handler and the open page reloads
// with the new code; save a stylesheet and it is swapped in place (the page keeps its state);
// save a mistake and the compiler's error shows over the page until it is fixed. Prints how
// long each took (`dev-times: {…}`), which `cargo xtask dev-times` reports. Run by
// `cargo xtask test` against the generated app (E2E_DEV_URL, E2E_DEV_APP_DIR); not picked up by a
// bare `node --test`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { launchBrowser, watch, withArtifacts, waitConnected } from './lib/harness.mjs';

const URL = process.env.E2E_DEV_URL;
const DIR = process.env.E2E_DEV_APP_DIR;
// Cold builds on a small machine are slow; the figures printed are what matters.
const BUILD = 600_000;
let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

/** Replaces `from` with `to` in the app's file `rel` (which must contain it). */
function edit(rel, from, to) {
  const path = join(DIR, rel);
  const text = readFileSync(path, 'utf8');
  assert.ok(text.includes(from), `${rel} has ${from}`);
  writeFileSync(path, text.replace(from, to));
}

/** Gives the browser the moments a reader gives a fresh page before the next edit: Chromium
 * compiles the page's wasm again on background threads after a load, and on two cores that
 * would slow the next build by seconds no user waits through. */
const settle = (page) => page.waitForTimeout(3000);

/** Runs `change`, then waits for the page to load again; returns the milliseconds between. */
async function reloadAfter(page, change) {
  await settle(page);
  const loaded = page.waitForEvent('load', { timeout: BUILD });
  const started = Date.now();
  change();
  await loaded;
  const ms = Date.now() - started;
  await waitConnected(page);
  await page.evaluate(() => { window.ferruleTestMark = true; });
  return ms;
}

const stillSamePage = (page) => page.evaluate(() => window.ferruleTestMark === true);

test('ferrule dev reloads the page after a rebuild, swaps CSS in place, shows a failed build', async (t) => {
  assert.ok(URL && DIR, 'E2E_DEV_URL and E2E_DEV_APP_DIR name the running `ferrule dev`');
  const context = await browser.newContext();
  const problems = [];
  const times = {};
  try {
    await withArtifacts(t, context, async () => {
      const page = watch(await context.newPage(), problems);
      await page.goto(URL);
      await waitConnected(page);
      assert.equal(await page.locator('script[src="/_dev/reload.js"]').count(), 1, 'the live reload script is on the page');
      await page.evaluate(() => { window.ferruleTestMark = true; });

      // A handler's body (src/counter.rs, shared: client and server rebuild).
      times.handlerEditMs = await reloadAfter(page, () => edit('src/counter.rs', 'self.count += 1;', 'self.count += 10;'));
      const before = Number(await page.textContent('#count'));
      await page.click('#increment');
      await page.waitForFunction((n) => document.querySelector('#count')?.textContent === String(n), before + 10, { timeout: 10000 });

      // A page (src/lib.rs, with the layout and the other pages).
      times.pageEditMs = await reloadAfter(page, () => edit('src/lib.rs', '<h1>{t!("home-title")}</h1>', '<h1>"Hello from " {t!("home-title")}</h1>'));
      assert.match(await page.textContent('h1'), /^Hello from /);

      // A text in the catalogue (locales/en/app.ftl, read at compile time).
      times.catalogueEditMs = await reloadAfter(page, () => edit('locales/en/app.ftl', 'counter-title = The counter', 'counter-title = The tally'));
      assert.equal(await page.textContent('h2'), 'The tally');

      // Server-only code: the tenant middleware's default.
      times.serverEditMs = await reloadAfter(page, () => edit('src/server.rs', '"public"', '"everyone"'));
      await page.click('#increment');
      await page.waitForFunction(() => document.querySelector('#tenant')?.textContent === 'everyone', null, { timeout: 10000 });

      // A stylesheet: applied without a reload and without a Rust build.
      await settle(page);
      const started = Date.now();
      writeFileSync(join(DIR, 'style/app.css'), `${readFileSync(join(DIR, 'style/app.css'), 'utf8')}\n:root { --ferrule-accent: rgb(1, 2, 3); }\n`);
      await page.waitForFunction(() => getComputedStyle(document.querySelector('#increment')).backgroundColor === 'rgb(1, 2, 3)', null, { timeout: 30000, polling: 20 });
      times.cssEditMs = Date.now() - started;
      assert.ok(await stillSamePage(page), 'the stylesheet was swapped, the page not reloaded');

      // A mistake: the error over the page, the old server still answering; fixed, it goes.
      await settle(page);
      edit('src/counter.rs', 'self.count += 10;', 'self.count += ;');
      await page.waitForSelector('#ferrule-build-error', { timeout: BUILD });
      const overlay = await page.textContent('#ferrule-build-error');
      assert.match(overlay, /error/, overlay);
      assert.match(overlay, /src\/counter\.rs/, 'the overlay names the file');
      assert.ok(await stillSamePage(page), 'a failed build does not reload the page');
      assert.equal((await page.request.get(URL)).status(), 200, 'the last good server still answers');
      times.fixMs = await reloadAfter(page, () => edit('src/counter.rs', 'self.count += ;', 'self.count += 1;'));
      assert.equal(await page.locator('#ferrule-build-error').count(), 0, 'the error is gone after a good build');
      // While a server restarts, the browser logs the refused connections of the socket and of
      // the reload stream; nothing else may go wrong, no answer of 400 or more included.
      const restarting = /^console: (Failed to load resource: net::ERR_(CONNECTION_REFUSED|CONNECTION_RESET|EMPTY_RESPONSE)|WebSocket connection to .* failed)/;
      console.log(`while restarting, the browser logged: ${JSON.stringify(problems.filter((p) => restarting.test(p)))}`);
      assert.deepEqual(problems.filter((p) => !restarting.test(p)), []);
    });
  } finally {
    await context.close();
    console.log(`dev-times: ${JSON.stringify(times)}`);
  }
});
