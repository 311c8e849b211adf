// A release of the app `ferrule new` generates, as `ferrule build --dist` ships it, in a real
// browser: the page refers to the client by its hashed names, those files come compressed, typed
// and cached for good, and the page hydrates from them. Run by `cargo xtask generated --only dist`
// against a server it started from another directory (E2E_URL); not picked up by a bare
// `node --test`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, watch, withArtifacts, waitConnected } from './lib/harness.mjs';

const URL_ = process.env.E2E_URL;
let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

test('the dist page hydrates from hashed, compressed, immutable client files', async (t) => {
  assert.ok(URL_, 'E2E_URL names the dist server');
  const context = await browser.newContext();
  const problems = [];
  try {
    await withArtifacts(t, context, async () => {
      const page = watch(await context.newPage(), problems);
      const files = new Map();
      page.on('response', async (r) => {
        const path = new URL(r.url()).pathname;
        if (path.startsWith('/pkg/')) files.set(path, { status: r.status(), headers: await r.allHeaders() });
      });
      await page.goto(URL_);
      await waitConnected(page);
      // Hydrated: a click goes through the client's socket and comes back as a new count.
      const before = Number(await page.textContent('#count'));
      await page.click('#increment');
      await page.waitForFunction((n) => document.querySelector('#count')?.textContent === String(n), before + 1);

      const names = [...files.keys()];
      const wasm = names.find((p) => p.endsWith('.wasm'));
      const js = names.find((p) => p.endsWith('.js'));
      const css = names.find((p) => p.endsWith('.css'));
      assert.ok(wasm && js && css, `the page loaded its client: ${names.join(', ')}`);
      for (const path of [wasm, js, css]) {
        assert.match(path, /^\/pkg\/[a-z0-9_]+\.[0-9a-f]{16}(_bg)?\.(wasm|js|css)$/, `${path} has a content hash`);
        const { status, headers } = files.get(path);
        assert.equal(status, 200, path);
        assert.equal(headers['cache-control'], 'public, max-age=31536000, immutable', path);
        assert.match(headers['content-encoding'] ?? '', /^(br|gzip)$/, `${path} came compressed`);
        assert.match(headers.vary ?? '', /accept-encoding/i, path);
      }
      assert.equal(files.get(wasm).headers['content-type'], 'application/wasm', 'streaming compilation needs it');
      assert.match(files.get(css).headers['content-type'], /^text\/css/);
      // The document itself is never cached for good: it names the next release's files.
      const doc = await page.request.get(URL_);
      assert.notEqual(doc.headers()['cache-control'], 'public, max-age=31536000, immutable');
      assert.deepEqual(problems, []);
      console.log(`dist-encodings: ${JSON.stringify(Object.fromEntries([wasm, js, css].map((p) => [p, files.get(p).headers['content-encoding']])))}`);
    });
  } finally {
    await context.close();
  }
});
