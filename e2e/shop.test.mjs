// examples/shop in Chromium, on its demo data: log in, add to the cart and see the count (in
// every tab of the session, and in the server's first response); a user banned while logged in
// sees "Account suspended."; one shop never sees another's orders.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, watch, withArtifacts, waitConnected } from './lib/harness.mjs';

const PASSWORD = 'correct horse battery';
let browser;
let server;
before(async () => {
  browser = await launchBrowser();
  server = await startServer({ FERRULE_LANGUAGES: 'en,fr' }, 'shop');
  const demo = server.run(['demo-data']);
  assert.equal(demo.status, 0, demo.stderr);
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A new browser (its own cookies) logged in as `user`, on the catalogue. */
async function loggedIn(t, user, problems, body) {
  const context = await browser.newContext();
  try {
    await withArtifacts(t, context, async () => {
      const page = watch(await context.newPage(), problems);
      await page.goto(`${server.url}/`);
      await page.waitForURL(/\/login/);
      await page.fill('input[name=username]', user);
      await page.fill('input[name=password]', PASSWORD);
      await Promise.all([page.waitForURL(`${server.url}/`), page.click('button:has-text("Log in")')]);
      await waitConnected(page);
      await page.waitForFunction(() => document.querySelectorAll('#products li').length > 0, null, { timeout: 10000 });
      await body(page);
    });
  } finally {
    await context.close();
  }
}

/** The texts of the page's toasts, joined. */
const toasts = (page) => page.evaluate(() => [...document.querySelectorAll('.ferrule-toast-message')].map((t) => t.textContent).join(' | '));

const cartCount = (page, n) => page.waitForFunction((n) => document.querySelector('#cart-count')?.textContent === String(n), n, { timeout: 10000 });

test('log in, add to the cart, see the count; search reads ?q=', async (t) => {
  const problems = [];
  await loggedIn(t, 'alice', problems, async (page) => {
    assert.equal(await page.textContent('#user'), 'alice');
    assert.equal(await page.locator('#products li').count(), 3, "acme's catalogue");
    // The login's message shows on the page the form redirected to; the cart's in the answer.
    assert.equal(await toasts(page), 'You are logged in as alice.');
    await page.click('.ferrule-toast-close');
    await page.click('button.add[data-name="Teapot"]');
    await cartCount(page, 1);
    await page.waitForFunction(() => document.querySelector('.ferrule-toast-success')?.textContent.includes('Added Teapot ($32.00) to your cart.'), null, { timeout: 10000 });
    await page.click('button.add[data-name="Teapot"]');
    await cartCount(page, 2);
    await page.goto(`${server.url}/?q=kettle`);
    await waitConnected(page);
    await page.waitForFunction(() => document.querySelectorAll('#products li').length === 1, null, { timeout: 10000 });
    assert.match(await page.textContent('#products li'), /Tea kettle/);
    await cartCount(page, 2);
    assert.equal(await toasts(page), '', 'messages show once: none after a page load');

    // The cart is the session's: a second tab shows it, and a change in either shows in both.
    const second = watch(await page.context().newPage(), problems);
    await second.goto(server.url);
    await waitConnected(second);
    await cartCount(second, 2);
    await second.click('button.add[data-name="Teapot"]');
    await cartCount(second, 3);
    await cartCount(page, 3);
    // The server's first response already has the count: a reload with scripts off shows it.
    const bare = await browser.newContext({ javaScriptEnabled: false, storageState: await page.context().storageState() });
    try {
      const noScript = await bare.newPage();
      await noScript.goto(server.url);
      assert.equal(await noScript.textContent('#cart-count'), '3');
      // And the catalogue's search results: `perform_search` loads the page before it renders.
      await noScript.goto(`${server.url}/?q=kettle`);
      assert.equal(await noScript.locator('#products li').count(), 1);
      assert.match(await noScript.textContent('#products li'), /Tea kettle/);
    } finally {
      await bare.close();
    }
  });
  assert.deepEqual(problems, []);
});

test('a user banned while logged in sees "Account suspended." and the click does nothing', async (t) => {
  const problems = [];
  await loggedIn(t, 'carol', problems, async (page) => {
    const ban = server.run(['ban', 'carol']);
    assert.equal(ban.status, 0, ban.stderr);
    try {
      await page.click('button.add[data-name="Green tea"]');
      await page.waitForFunction(() => [...document.querySelectorAll('.ferrule-toast')].some((t) => t.textContent.includes('Account suspended.')), null, { timeout: 10000 });
      assert.equal(await page.textContent('#cart-count'), '0', 'the handler did not run');
    } finally {
      server.run(['unban', 'carol']);
    }
  });
});

test("a user of one shop never sees another shop's orders", async (t) => {
  const problems = [];
  await loggedIn(t, 'bob', problems, async (page) => {
    await page.click('button.add[data-name="Espresso beans"]');
    await cartCount(page, 1);
    await page.click('#pay');
    await page.waitForFunction(() => document.querySelector('#payment')?.textContent === 'pending', null, { timeout: 10000 });
    await cartCount(page, 0);
    await page.click('a[href="/orders"]');
    await page.waitForFunction(() => document.querySelector('#orders')?.textContent.includes('bob'), null, { timeout: 10000 });
  });
  await loggedIn(t, 'carol', problems, async (page) => {
    await page.click('button.add[data-name="Green tea"]');
    await cartCount(page, 1);
    await page.click('#pay');
    await page.waitForFunction(() => document.querySelector('#payment')?.textContent === 'pending', null, { timeout: 10000 });
    await page.click('a[href="/orders"]');
    await page.waitForFunction(() => document.querySelector('#orders')?.textContent.includes('carol'), null, { timeout: 10000 });
    assert.doesNotMatch(await page.textContent('#orders'), /bob/, "globex's order is not listed in acme");
  });
  assert.deepEqual(problems, []);
});

test('the profile switches the language over the socket: the page reloads in it, for this browser and the account', async (t) => {
  const problems = [];
  await loggedIn(t, 'bob', problems, async (page) => {
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    await page.click('a[href="/profile"]');
    await page.waitForSelector('#profile-language');
    try {
      await Promise.all([
        page.waitForEvent('load', { timeout: 10000 }),
        page.selectOption('#profile-language', 'fr'),
      ]);
      await page.waitForFunction(() => document.documentElement.lang === 'fr', null, { timeout: 10000 });
      const cookies = await page.context().cookies();
      assert.equal(cookies.find((c) => c.name === 'language')?.value, 'fr');
      await waitConnected(page);
      assert.equal(await page.inputValue('#profile-language'), 'fr');
      // The handlers of the new socket speak French too.
      await page.click('a[href="/"]');
      await page.waitForFunction(() => document.querySelectorAll('#products li').length > 0, null, { timeout: 10000 });
      await page.click('button.add[data-name="Espresso beans"]');
      await page.waitForFunction(() => [...document.querySelectorAll('.ferrule-toast-message')].some((m) => m.textContent.includes('ajouté à votre panier')), null, { timeout: 10000 });
    } finally {
      // Back to English for the account, so the other tests' logins stay English.
      await page.goto(`${server.url}/profile`);
      await waitConnected(page);
      await Promise.all([
        page.waitForEvent('load', { timeout: 10000 }),
        page.selectOption('#profile-language', 'en'),
      ]);
    }
    await page.waitForFunction(() => document.documentElement.lang === 'en', null, { timeout: 10000 });
  });
  assert.deepEqual(problems, []);
});
