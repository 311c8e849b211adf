// The app `ferrule new` generates, in a real browser (on PostgreSQL when E2E_PG_ADMIN is set), as a newcomer uses it: register, see who is
// logged in, click, write a note, open the private page, log out. Run by `cargo xtask test` after generating
// the app (E2E_APP names it); not picked up by a bare `node --test`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, watch, withArtifacts, waitCount, waitConnected } from './lib/harness.mjs';

const APP = process.env.E2E_APP || 'newcomer-app';
let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

/** A fresh server of the app and a new browser context with one page: `body(server, page)`
 * runs, then everything is closed; console errors fail the test. */
async function withApp(t, body) {
  const server = await startServer({}, APP);
  const context = await browser.newContext();
  const problems = [];
  try {
    await withArtifacts(t, context, async () => {
      const page = watch(await context.newPage(), problems);
      await body(server, page);
      assert.deepEqual(problems, []);
    });
  } finally {
    await context.close();
    await server.close();
  }
}

test('a newcomer registers, clicks, writes a note, opens the private page and logs out', async (t) => {
  await withApp(t, async (server, page) => {
    await page.goto(server.url);
    await waitConnected(page);
    assert.equal(await page.locator('#user').count(), 0, 'anonymous: no user in the header');
    assert.equal(await page.locator('#logout').count(), 0, 'anonymous: no log-out button');
    // A wrong password comes back to the login form with the reason, not as JSON.
    await page.click('a[href="/login"]');
    await page.fill('input[name=username]', 'nobody');
    await page.fill('input[name=password]', 'wrong password');
    await Promise.all([page.waitForURL(/error=/), page.click('button:has-text("Log in")')]);
    assert.equal(await page.textContent('#form-error'), 'Wrong username or password.');
    await page.click('a[href="/register"]');
    assert.equal(await page.textContent('h1'), 'Register');
    await page.fill('input[name=username]', 'newbie');
    await page.fill('input[name=password]', 'correct horse battery');
    await Promise.all([page.waitForURL(`${server.url}/`), page.click('button:has-text("Create my account")')]);
    await waitConnected(page);
    await page.waitForFunction(() => document.querySelector('#user')?.textContent === 'newbie', null, { timeout: 10000 });
    assert.equal(await page.locator('header a[href="/login"]').count(), 0, 'logged in: no log-in link');
    // A reload with scripts off shows what the server's first response alone says: who is logged in.
    const noScript = await browser.newContext({ javaScriptEnabled: false, storageState: await page.context().storageState() });
    try {
      const bare = await noScript.newPage();
      await bare.goto(server.url);
      assert.equal(await bare.textContent('#user'), 'newbie', 'the first response renders the session\'s user');
      assert.equal(await bare.locator('header a[href="/login"]').count(), 0);
    } finally {
      await noScript.close();
    }
    await page.click('#increment');
    await waitCount(page, 1);
    assert.equal(await page.textContent('#tenant'), 'public', 'the tenant middleware ran on the event');
    // The app's own table: a note written through the page comes back in the list.
    await page.click('a[href="/notes"]');
    assert.equal(await page.textContent('h1'), 'Notes');
    await page.fill('#note', 'my first note');
    await page.click('#add-note');
    await page.waitForFunction(() => document.querySelector('#notes li')?.textContent.includes('my first note'), null, { timeout: 10000 });
    assert.match(await page.textContent('#notes li'), /newbie/);
    await page.goto(`${server.url}/private`);
    assert.equal(await page.textContent('h1'), 'Private');
    await Promise.all([page.waitForURL(`${server.url}/`), page.click('#logout')]);
    await waitConnected(page);
    await page.waitForFunction(() => !document.querySelector('#user') && document.querySelector('header a[href="/login"]'), null, { timeout: 10000 });
    const resp = await page.request.get(`${server.url}/private`, { maxRedirects: 0 });
    assert.equal(resp.status(), 303, 'logged out: the private page redirects again');
  });
});

// `cargo xtask test` runs `ferrule generate scaffold product name:string description:text
// price:i64 weight:f64 in_stock:bool` in the app first: its page, as a user fills it in.
test('a scaffolded table: a wrong number is named under its field, then save, edit and delete', async (t) => {
  await withApp(t, async (server, page) => {
    await page.goto(`${server.url}/register`);
    await page.fill('input[name=username]', 'shopkeeper');
    await page.fill('input[name=password]', 'correct horse battery');
    await Promise.all([page.waitForURL(`${server.url}/`), page.click('button:has-text("Create my account")')]);
    await waitConnected(page);
    await page.click('a[href="/products"]');
    assert.equal(await page.textContent('h1'), 'Products');
    const form = '#product-form';
    await page.fill(`${form} input[name=name]`, 'Teapot');
    await page.fill(`${form} textarea[name=description]`, 'Holds tea');
    await page.fill(`${form} input[name=price]`, 'twelve');
    await page.fill(`${form} input[name=weight]`, '0.8');
    await page.check(`${form} input[name=in_stock]`);
    await page.click(`${form} button[type=submit]`);
    await page.waitForFunction(() => document.querySelector('.error[data-field=price]')?.textContent === 'Enter a whole number.', null, { timeout: 10000 });
    assert.equal(await page.locator('#products tbody tr').count(), 0, 'nothing saved');
    assert.equal(await page.inputValue(`${form} input[name=name]`), 'Teapot', 'what was typed is kept');

    await page.fill(`${form} input[name=price]`, '12');
    await page.click(`${form} button[type=submit]`);
    await page.waitForFunction(() => document.querySelector('#products tbody tr')?.textContent.includes('Teapot'), null, { timeout: 10000 });
    const row = await page.textContent('#products tbody tr');
    for (const part of ['Holds tea', '12', '0.8', 'yes', 'shopkeeper']) assert.match(row, new RegExp(part), row);
    assert.equal(await page.inputValue(`${form} input[name=name]`), '', 'the form is cleared once saved');
    assert.equal(await page.textContent('.error[data-field=price]'), '');

    await page.click('#products tbody tr button.edit');
    assert.equal(await page.inputValue(`${form} input[name=name]`), 'Teapot');
    await page.fill(`${form} input[name=name]`, 'Big teapot');
    await page.click(`${form} button[type=submit]`);
    await page.waitForFunction(() => document.querySelector('#products tbody tr')?.textContent.includes('Big teapot'), null, { timeout: 10000 });
    assert.equal(await page.locator('#products tbody tr').count(), 1, 'edited, not added');

    await page.click('#products tbody tr button.delete');
    await page.waitForFunction(() => document.querySelectorAll('#products tbody tr').length === 0, null, { timeout: 10000 });
  });
});
