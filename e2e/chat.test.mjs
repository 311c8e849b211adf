// examples/chat in Chromium: two people join the lobby, see each other there, and what one
// says appears on the other's page; someone in another room sees none of it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, watch, withArtifacts, waitConnected } from './lib/harness.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

async function joined(context, problems, server, room, name) {
  const page = watch(await context.newPage(), problems);
  await page.goto(server.url);
  await waitConnected(page);
  await page.fill('#join input[name=room]', room);
  await page.fill('#join input[name=name]', name);
  await page.click('#join button');
  await page.waitForFunction((room) => document.querySelector('#room')?.textContent === room, room, { timeout: 10000 });
  return page;
}

test('two people in the lobby see each other and their messages; another room does not', async (t) => {
  const server = await startServer({}, 'chat');
  const problems = [];
  const contexts = await Promise.all([1, 2, 3].map(() => browser.newContext()));
  try {
    await withArtifacts(t, contexts[0], async () => {
      const ann = await joined(contexts[0], problems, server, 'lobby', 'ann');
      const ben = await joined(contexts[1], problems, server, 'lobby', 'ben');
      const cid = await joined(contexts[2], problems, server, 'kitchen', 'cid');
      await ann.waitForFunction(() => document.querySelector('#members')?.textContent === 'ann, ben', null, { timeout: 10000 });
      assert.equal(await ben.textContent('#members'), 'ann, ben');

      await ben.fill('#say input[name=text]', 'hello ann');
      await ben.click('#say button');
      await ann.waitForFunction(() => document.querySelector('#messages')?.textContent.includes('hello ann'), null, { timeout: 10000 });
      assert.match(await ann.textContent('#messages li:last-child'), /^benhello ann$/);
      assert.equal(await ben.inputValue('#say input[name=text]'), '', 'the box is cleared');

      // A page opened later gets the history.
      const late = await joined(contexts[2], problems, server, 'lobby', 'dee');
      await late.waitForFunction(() => document.querySelector('#messages')?.textContent.includes('hello ann'), null, { timeout: 10000 });
      assert.doesNotMatch(await cid.textContent('#messages'), /hello ann/, 'the kitchen heard nothing');
      assert.deepEqual(problems, []);
    });
  } finally {
    await Promise.all(contexts.map((c) => c.close()));
    await server.stop();
  }
});
