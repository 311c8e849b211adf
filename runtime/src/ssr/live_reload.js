// Ferrule's live reload, served only by a debug build that `ferrule dev` started. It listens to
// `/_dev/reload` (server-sent events): a new server after a rebuild reloads the page, a rebuilt
// stylesheet is swapped in place (the page keeps its state), and a failed build is shown over
// the page until the next good one.
(() => {
  let server = null;
  let overlay = null;
  const showError = (text) => {
    if (!overlay) {
      overlay = document.createElement('pre');
      overlay.id = 'ferrule-build-error';
      overlay.setAttribute('role', 'alert');
      overlay.title = 'Click to hide';
      overlay.style.cssText = 'position:fixed;inset:0;z-index:2147483647;overflow:auto;margin:0;'
        + 'padding:1.5rem;background:rgba(18,18,22,.95);color:#f1f1f4;'
        + 'font:13px/1.45 ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;cursor:pointer';
      overlay.addEventListener('click', hideError);
      document.body.append(overlay);
    }
    overlay.textContent = 'ferrule dev: the build failed, so this page is still the last good build. '
      + 'Fix the error and save.\n\n' + text;
  };
  const hideError = () => { overlay?.remove(); overlay = null; };
  const swapStylesheets = () => {
    for (const old of document.querySelectorAll('link[rel=stylesheet]')) {
      const url = new URL(old.href, location.href);
      if (url.origin !== location.origin) continue;
      url.searchParams.set('reload', String(Date.now()));
      const fresh = old.cloneNode();
      fresh.href = url.href;
      // The old sheet stays until the new one has loaded, so the page never shows unstyled.
      fresh.addEventListener('load', () => old.remove(), { once: true });
      fresh.addEventListener('error', () => fresh.remove(), { once: true });
      old.after(fresh);
    }
  };
  const connect = () => {
    const events = new EventSource('/_dev/reload');
    events.addEventListener('hello', (e) => {
      if (server !== null && server !== e.data) location.reload();
      server = e.data;
    });
    events.addEventListener('css', swapStylesheets);
    events.addEventListener('build-error', (e) => showError(JSON.parse(e.data)));
    events.addEventListener('build-ok', hideError);
    // The browser retries by itself while the server restarts; it gives up only on an answer
    // that is not an event stream, and then this tries again.
    events.onerror = () => {
      if (events.readyState === EventSource.CLOSED) setTimeout(connect, 500);
    };
  };
  connect();
})();
