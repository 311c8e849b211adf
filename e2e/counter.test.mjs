// The counter example in a real browser: server-rendered, hydrated, driven over Socket.IO.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, watch, scenario as freshScenario, count, waitCount, waitConnected } from './lib/harness.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

/** A fresh server and browser context per test (the harness's `scenario`). */
const scenario = (t, body, options) => freshScenario(browser, t, body, options);

const token = (page) => page.evaluate(() => sessionStorage.getItem('ferrule_token'));

test('the page is rendered on the server, before any script runs', async (t) => {
  await scenario(t, async ({ server, context }) => {
    const page = await context.newPage();
    const resp = await page.goto(server.url);
    assert.equal(resp.status(), 200);
    assert.equal(await page.textContent('h1'), 'Ferrule counter');
    assert.equal(await count(page), '0');
    assert.equal(await page.getAttribute('.ferrule-connection', 'data-status'), 'connecting');
  }, { contextOptions: { javaScriptEnabled: false } });
});

test('a click reaches the handler and the count comes back as a delta, with no console errors', async (t) => {
  await scenario(t, async ({ server, context, problems }) => {
    const page = watch(await context.newPage(), problems);
    await page.addInitScript(() => {
      window.violations = [];
      document.addEventListener('securitypolicyviolation', (e) => window.violations.push(e.violatedDirective));
    });
    const response = await page.goto(server.url);
    assert.match(response.headers()['content-security-policy'], /script-src 'nonce-[0-9a-f]+' 'strict-dynamic'/,
      'the page runs under a policy that allows only its own scripts');
    await waitConnected(page);
    assert.equal(await count(page), '0', 'hydration keeps the server-rendered value: no flash');
    await page.click('#increment');
    await waitCount(page, 1);
    await page.click('#increment');
    await page.click('#add-ten');
    await waitCount(page, 12);
    assert.deepEqual(await page.evaluate(() => window.violations), [], 'nothing the page does breaks its policy');
    assert.deepEqual(problems, []);
  });
});

/** The console lines of the browser log (`browser_log`) `page` has printed so far. */
function browserLog(page) {
  const lines = [];
  page.on('console', (m) => { if (m.text().startsWith('ferrule ')) lines.push(m.text()); });
  return lines;
}

async function until(check, what, timeout = 10000) {
  const deadline = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('with browser_log on, a click shows in the console: the event, then its answer and what changed', async (t) => {
  await scenario(t, async ({ server, context, problems }) => {
    const page = watch(await context.newPage(), problems);
    const lines = browserLog(page);
    await page.goto(server.url);
    await waitConnected(page);
    await page.click('#increment');
    await waitCount(page, 1);
    const answer = /^ferrule ← counter_state\.increment #(\d+) in \d+ ms: delta counter_state\.count$/;
    await until(() => lines.some((l) => answer.test(l)), `the answer in the console (so far: ${lines})`);
    const sent = lines.map((l) => l.match(/^ferrule → counter_state\.increment #(\d+)$/)).find(Boolean);
    assert.ok(sent, `the event was logged as it went out: ${lines}`);
    assert.equal(lines.map((l) => l.match(answer)).find(Boolean)[1], sent[1], 'the answer names the event it answers');
    assert.ok(lines.indexOf(sent[0]) < lines.findIndex((l) => answer.test(l)), 'sent, then answered');
    assert.deepEqual(problems, []);
  }, { env: { FERRULE_BROWSER_LOG: '1' } });
});

test('without browser_log the console stays quiet', async (t) => {
  await scenario(t, async ({ server, context, problems }) => {
    const page = watch(await context.newPage(), problems);
    const lines = browserLog(page);
    await page.goto(server.url);
    await waitConnected(page);
    await page.click('#increment');
    await waitCount(page, 1);
    assert.deepEqual(lines, []);
    assert.deepEqual(problems, []);
  });
});

test('two tabs have separate states, and a reload keeps its tab\'s state', async (t) => {
  await scenario(t, async ({ server, context, problems }) => {
    const a = watch(await context.newPage(), problems);
    const b = watch(await context.newPage(), problems);
    await a.goto(server.url);
    await b.goto(server.url);
    await waitConnected(a);
    await waitConnected(b);
    await a.click('#increment');
    await a.click('#increment');
    await b.click('#increment');
    await waitCount(a, 2);
    await waitCount(b, 1);
    assert.notEqual(await token(a), await token(b));
    await a.reload();
    await waitConnected(a);
    await waitCount(a, 2);
    assert.equal(await count(b), '1');
    assert.deepEqual(problems, []);
  });
});

test('a duplicated tab (a copy of sessionStorage) takes a token of its own', async (t) => {
  await scenario(t, async ({ server, context, problems }) => {
    const a = watch(await context.newPage(), problems);
    await a.goto(server.url);
    await waitConnected(a);
    await a.click('#increment');
    await waitCount(a, 1);
    const original = await token(a);
    // What "Duplicate tab" does: the new tab starts with the old tab's sessionStorage.
    const dup = watch(await context.newPage(), problems);
    await dup.addInitScript((tok) => {
      if (!sessionStorage.getItem('ferrule_dup_seeded')) {
        sessionStorage.setItem('ferrule_token', tok);
        sessionStorage.setItem('ferrule_dup_seeded', '1');
      }
    }, original);
    await dup.goto(server.url);
    await waitConnected(dup);
    assert.notEqual(await token(dup), original, 'the duplicate must not share the token');
    await dup.click('#increment');
    await dup.click('#increment');
    await waitCount(dup, 2);
    await a.click('#increment');
    await waitCount(a, 2);
    assert.equal(await count(dup), '2');
    assert.deepEqual(problems, []);
  });
});

test('a tab token carried to another browser opens a fresh tab there, never the first one\'s count', async (t) => {
  await scenario(t, async ({ server, context, problems }) => {
    const victim = watch(await context.newPage(), problems);
    await victim.goto(server.url);
    await waitConnected(victim);
    for (let i = 0; i < 3; i++) await victim.click('#increment');
    await waitCount(victim, 3);
    const stolen = await token(victim);
    assert.ok(stolen.length >= 32, `a 128-bit token, got ${stolen}`);
    // Another browser (its own cookies, so its own session) starts with the victim's token.
    const other = await browser.newContext();
    try {
      const thief = watch(await other.newPage(), problems);
      await thief.addInitScript((tok) => sessionStorage.setItem('ferrule_token', tok), stolen);
      await thief.goto(server.url);
      await waitConnected(thief);
      assert.equal(await token(thief), stolen, 'it did present the stolen token');
      assert.equal(await count(thief), '0', 'a fresh tab, not the victim\'s');
      await thief.click('#increment');
      await waitCount(thief, 1);
    } finally {
      await other.close();
    }
    // The victim's tab is untouched, and still its own after a reload.
    await victim.click('#increment');
    await waitCount(victim, 4);
    await victim.reload();
    await waitConnected(victim);
    await waitCount(victim, 4);
    assert.deepEqual(problems, []);
  });
});

test('after a server restart the client reconnects and sends what was clicked meanwhile, once', async (t) => {
  await scenario(t, async ({ server, context }) => {
    const page = await context.newPage();
    await page.goto(server.url);
    await waitConnected(page);
    await page.click('#increment');
    await waitCount(page, 1);
    await server.stop();
    await page.waitForSelector('.ferrule-connection[data-status="reconnecting"]', { timeout: 10000 });
    await page.click('#increment');
    await page.click('#increment');
    await server.start();
    await waitConnected(page, 30000);
    // The restarted server kept states in memory, so it starts from 0: the resync shows that,
    // then the two queued clicks arrive, exactly once each.
    await waitCount(page, 2);
    await page.waitForTimeout(500);
    assert.equal(await count(page), '2');
    await page.click('#increment');
    await waitCount(page, 3);
  });
});

test('a thousand clicks around a network outage are all applied, exactly once', async (t) => {
  // A short heartbeat, so the dead connection is noticed within seconds (25 + 20 s by default).
  const env = { FERRULE_PING_INTERVAL_MS: '1000', FERRULE_PING_TIMEOUT_MS: '1000' };
  await scenario(t, async ({ server, context }) => {
    const page = await context.newPage();
    await page.goto(server.url);
    await waitConnected(page);
    const click = (n) => page.evaluate((n) => {
      const button = document.querySelector('#increment');
      for (let i = 0; i < n; i++) button.click();
    }, n);
    // The train goes into a tunnel: some clicks are on the wire when the network goes, the
    // rest are made offline, and the connection dies of silence before it comes back.
    await click(50);
    await context.setOffline(true);
    await click(950);
    await page.waitForSelector('.ferrule-connection[data-status="reconnecting"]', { timeout: 30000 });
    await context.setOffline(false);
    await waitConnected(page, 30000);
    await waitCount(page, 1000, 60000);
    await page.waitForTimeout(1000);
    assert.equal(await count(page), '1000', 'none lost, none applied twice');
    // The server's state says the same: a reload renders it from a resync.
    await page.reload();
    await waitConnected(page);
    await waitCount(page, 1000);
  }, { env });
});

test('a handler error shows an error toast and changes nothing', async (t) => {
  await scenario(t, async ({ server, context, problems }) => {
    const page = watch(await context.newPage(), problems);
    await page.goto(server.url);
    await waitConnected(page);
    await page.click('#add-ten');
    await waitCount(page, 10);
    await page.click('#overflow');
    const toast = await page.waitForSelector('.ferrule-toast-error', { timeout: 10000 });
    assert.match(await toast.textContent(), /That would overflow the counter\./);
    assert.equal(await count(page), '10');
    await page.click('.ferrule-toast-close');
    await page.waitForSelector('.ferrule-toast', { state: 'detached', timeout: 5000 });
    assert.deepEqual(problems, []);
  });
});

test('a guard redirect navigates to the login page; after logging in the handler runs and private pages render', async (t) => {
  await scenario(t, async ({ server, context, problems }) => {
    const made = server.run(['createsuperuser', '--username', 'ada', '--email', 'ada@example.com'],
      { FERRULE_SUPERUSER_PASSWORD: 'correct horse battery' });
    assert.equal(made.status, 0, made.stderr);
    const page = watch(await context.newPage(), problems);
    await page.goto(server.url);
    await waitConnected(page);
    await page.click('#increment');
    await waitCount(page, 1);
    await page.click('#reset');
    await page.waitForURL(/\/login\?next=%2F$/, { timeout: 10000 });
    assert.equal(await page.textContent('h1'), 'Log in');
    // The private page is protected on the server too: the HTTP middleware redirects.
    const resp = await page.request.get(`${server.url}/private`, { maxRedirects: 0 });
    assert.equal(resp.status(), 303);
    assert.equal(resp.headers()['location'], '/login?next=%2Fprivate');
    await page.fill('input[name=username]', 'ada');
    await page.fill('input[name=password]', 'correct horse battery');
    await Promise.all([page.waitForURL(`${server.url}/`), page.click('button[type=submit]')]);
    await waitConnected(page);
    await waitCount(page, 1);
    await page.click('#reset');
    await waitCount(page, 0);
    await page.goto(`${server.url}/private`);
    assert.equal(await page.textContent('h1'), 'Private');
    assert.deepEqual(problems, []);
  });
});

test('a log-in link whose next page is on another site lands on this site', async (t) => {
  await scenario(t, async ({ server, context }) => {
    const made = server.run(['createsuperuser', '--username', 'ada', '--email', 'ada@example.com'],
      { FERRULE_SUPERUSER_PASSWORD: 'correct horse battery' });
    assert.equal(made.status, 0, made.stderr);
    const page = await context.newPage();
    for (const next of ['%2F%09%2Fevil.example', '%2F%2Fevil.example', '%2F%5Cevil.example',
      'https%3A%2F%2Fevil.example', 'javascript%3Aalert(1)']) {
      await page.goto(`${server.url}/login?next=${next}`);
      await page.fill('input[name=username]', 'ada');
      await page.fill('input[name=password]', 'correct horse battery');
      await Promise.all([page.waitForURL(`${server.url}/`), page.click('button[type=submit]')]);
      assert.equal(new URL(page.url()).host, new URL(server.url).host, `next=${next}`);
    }
  });
});

test('mounted in a host axum app under /counter: the host keeps its page, the counter hydrates, guards and logins stay below the prefix', async (t) => {
  const host = { bin: 'counter-host', args: [], health: '/counter/_health' };
  await scenario(t, async ({ server, context, problems }) => {
    const made = server.run(['createsuperuser', '--username', 'ada', '--email', 'ada@example.com'],
      { FERRULE_SUPERUSER_PASSWORD: 'correct horse battery' });
    assert.equal(made.status, 0, made.stderr);
    const page = watch(await context.newPage(), problems);
    await page.goto(`${server.url}/`);
    assert.equal(await page.textContent('h1'), "The host's own page");
    await Promise.all([page.waitForURL(`${server.url}/counter`), page.click('#to-counter')]);
    assert.equal(await page.textContent('h1'), 'Ferrule counter');
    assert.equal(await page.getAttribute('#private', 'href'), '/counter/private');
    assert.equal(await page.getAttribute('header a', 'href'), '/counter', 'home is the mount point');
    await waitConnected(page);
    await page.click('#increment');
    await waitCount(page, 1);
    // The guard's redirect comes over the socket and is followed inside the prefix.
    await page.click('#reset');
    await page.waitForURL(`${server.url}/counter/login?next=%2F`, { timeout: 10000 });
    assert.equal(await page.textContent('h1'), 'Log in');
    // Over HTTP too: the redirect the app writes as /login leaves as /counter/login.
    const resp = await page.request.get(`${server.url}/counter/private`, { maxRedirects: 0 });
    assert.equal(resp.status(), 303);
    assert.equal(resp.headers()['location'], '/counter/login?next=%2Fprivate');
    // A wrong password comes back to the login page under the prefix, with its message.
    await page.fill('input[name=username]', 'ada');
    await page.fill('input[name=password]', 'not the password');
    await Promise.all([page.waitForURL(`${server.url}/counter/login?next=%2F`), page.click('button[type=submit]')]);
    await page.waitForSelector('.ferrule-toast-error', { timeout: 10000 });
    await page.fill('input[name=username]', 'ada');
    await page.fill('input[name=password]', 'correct horse battery');
    await Promise.all([page.waitForURL(`${server.url}/counter`), page.click('button[type=submit]')]);
    await waitConnected(page);
    await waitCount(page, 1);
    await page.click('#reset');
    await waitCount(page, 0);
    await Promise.all([page.waitForURL(`${server.url}/counter/private`), page.click('#private')]);
    await page.waitForFunction(() => document.querySelector('h1')?.textContent === 'Private');
    assert.deepEqual(problems, [], 'no asset, socket or script request missed the prefix');
    assert.equal(await server.stop(), 0, `the host stops cleanly at SIGTERM: ${server.log}`);
  }, { host });
});
