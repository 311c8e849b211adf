// The uploads example in a real browser: pick a file, watch the progress, see the tab update.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readdirSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { launchBrowser, watch, scenario as freshScenario, waitConnected, ROOT } from './lib/harness.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

const files = mkdtempSync(join(tmpdir(), 'ferrule-upload-files-'));
function file(name, bytes) {
  const path = join(files, name);
  writeFileSync(path, Buffer.alloc(bytes, 7));
  return path;
}

// The app's own Ferrule.toml sets the 1 MiB limit.
const scenario = (t, body) => freshScenario(browser, t, body, {
  app: 'uploads',
  env: { FERRULE_CONFIG: join(ROOT, 'examples/uploads/Ferrule.toml') },
});

test('an avatar upload shows progress, reaches the handler and updates the tab', async (t) => {
  await scenario(t, async ({ server, context, problems }) => {
    const page = watch(await context.newPage(), problems);
    await page.goto(server.url);
    await waitConnected(page);
    assert.equal(await page.textContent('#avatar-name'), 'none yet');
    await page.setInputFiles('input[type=file]', file('me.png', 300 * 1024));
    await page.waitForSelector('.ferrule-upload[data-state="done"]', { timeout: 15000 });
    assert.equal(await page.getAttribute('.ferrule-upload-progress', 'value'), '1');
    await page.waitForFunction(() => document.querySelector('#avatar-name')?.textContent === 'me.png', null, { timeout: 10000 });
    assert.equal(await page.textContent('#avatar-size'), String(300 * 1024));
    assert.equal(await page.textContent('#uploads'), '1');
    const toast = await page.waitForSelector('.ferrule-toast-success', { timeout: 5000 });
    assert.match(await toast.textContent(), /Avatar updated\./);
    const stored = readdirSync(join(server.dir, 'media'));
    assert.equal(stored.length, 1, 'the file is kept under media/');
    assert.deepEqual(problems, []);
  });
});

test('a file over the size limit is refused with a toast and nothing changes', async (t) => {
  await scenario(t, async ({ server, context, problems }) => {
    const page = watch(await context.newPage(), problems);
    await page.goto(server.url);
    await waitConnected(page);
    await page.setInputFiles('input[type=file]', file('huge.png', 2 * 1024 * 1024));
    await page.waitForSelector('.ferrule-upload[data-state="failed"]', { timeout: 15000 });
    const toast = await page.waitForSelector('.ferrule-toast-error', { timeout: 5000 });
    assert.match(await toast.textContent(), /1048576/);
    assert.equal(await page.textContent('#avatar-name'), 'none yet');
    // The refusal is the only problem a user would see: a 413 for the upload request.
    assert.deepEqual(problems.filter((p) => !p.includes('413')), []);
  });
});
