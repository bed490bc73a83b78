// Shows whether the server is ready, from /healthz. Used by every page until
// the apps themselves take over.
const el = document.querySelector('[data-testid="server-status"]');
fetch('/healthz')
  .then((r) => r.json())
  .then((h) => { el.textContent = `${h.status} · v${h.version}`; })
  .catch(() => { el.textContent = 'offline · 离线'; });
