// Shared helpers of the browser tests: the real cloudlaw server, Chromium,
// Firefox, and small waiting and checking helpers (playwright-core has no `expect`).

import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { chromium } from 'playwright-core';
import puppeteer from 'puppeteer-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '../..');
export const WEB_DIR = path.join(ROOT, 'web');
export const ARTIFACTS = path.join(here, 'artifacts');

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream', '--allow-loopback-in-peer-connection',
];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** A sleep that does not keep the process alive (for the losing side of a race). */
const deadline = (ms) => new Promise((resolve) => setTimeout(resolve, ms).unref());

// ---------------------------------------------------------------- server

/**
 * Starts `cloudlaw serve --demo` on a free port with a fresh data directory,
 * waits until /healthz answers 200, and returns { origin, url(), stop(), log() }.
 * `config` is extra TOML; `database` a PostgreSQL URL another server uses, to
 * start a second signaling node of the same system.
 *
 * The binary embeds web/ when it is compiled, so a binary older than the
 * files under web/ serves old pages. That is checked here: when the served
 * files differ from web/, startServer fails and names them, unless
 * CLOUDLAW_WEB_FROM_DISK=1, in which case the tests serve /web/... and the
 * three pages from web/ on disk (through Playwright routing, with the
 * server's own Content-Security-Policy) and everything else from the server.
 */
export async function startServer({ host = '127.0.0.1', config = null, database: shared = null, netns = null } = {}) {
  const bin = process.env.CLOUDLAW_BIN || path.join(ROOT, 'target/debug/cloudlaw');
  const dataDir = await mkdtemp(path.join(tmpdir(), 'cloudlaw-browser-'));
  // cloudlaw reads every CLOUDLAW_* variable as configuration and refuses
  // unknown keys, so the tests' own variables must not reach it.
  const env = { ...process.env, CLOUDLAW_RELAY__UDP_LISTEN: `${host}:0`, NO_COLOR: '1' };
  delete env.CLOUDLAW_BIN;
  delete env.CLOUDLAW_WEB_FROM_DISK;
  // A host other than loopback is an address of a test network namespace.
  const publicDemo = host.startsWith('127.') ? [] : ['--allow-public-demo'];
  // Extra configuration (TOML), as an operator's file would give it.
  const configArgs = [];
  if (config) {
    await writeFile(path.join(dataDir, 'test-config.toml'), config);
    configArgs.push('--config', path.join(dataDir, 'test-config.toml'));
  }
  // With TEST_POSTGRES_URL (scripts/test's PostgreSQL pass), a database of its own there,
  // or another server's (`shared`: a second signaling node of the same system).
  const database = shared
    ?? (process.env.TEST_POSTGRES_URL ? await postgresDatabase(process.env.TEST_POSTGRES_URL) : null);
  const databaseArgs = database ? ['--data-dir', dataDir, '--database-url', database] : ['--data-dir', dataDir];
  // `netns`: the server runs inside that network namespace (makeNamespace), listening on its end of the link.
  const serveArgs = ['serve', '--demo', ...publicDemo, ...configArgs, '--listen', `${host}:0`, ...databaseArgs];
  const [program, programArgs] = netns ? ['ip', ['netns', 'exec', netns, bin, ...serveArgs]] : [bin, serveArgs];
  const child = spawn(program, programArgs, {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  let exited = null;
  const exit = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
  });
  // Never leave the server behind, even when the test process dies.
  const killOnExit = () => {
    if (!exited && child.pid) {
      try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
    }
  };
  process.once('exit', killOnExit);
  const spawnError = new Promise((_, reject) => child.on('error', reject));
  spawnError.catch(() => {});
  child.stderr.setEncoding('utf8');
  const address = new Promise((resolve) => {
    child.stderr.on('data', (chunk) => {
      log += chunk;
      const match = log.match(/http:\/\/(\d+\.\d+\.\d+\.\d+:\d+)/);
      if (match) resolve(match[1]);
    });
  });

  async function stop() {
    if (!exited && child.pid) {
      process.kill(child.pid, 'SIGTERM');
      const done = await Promise.race([exit, deadline(10_000).then(() => null)]);
      if (!done && !exited) {
        process.kill(child.pid, 'SIGKILL');
        await exit;
      }
    }
    process.removeListener('exit', killOnExit);
    await rm(dataDir, { recursive: true, force: true });
  }

  try {
    const bound = await Promise.race([
      address,
      spawnError,
      exit.then((e) => { throw new Error(`cloudlaw exited (${JSON.stringify(e)}) before listening:\n${log}`); }),
      deadline(60_000).then(() => { throw new Error(`cloudlaw printed no http://127.0.0.1:PORT within 60 s:\n${log}`); }),
    ]);
    const origin = `http://${bound}`;
    await waitForHealth(origin, () => exited, () => log);
    const server = {
      origin,
      /** The server's data directory. */
      dataDir,
      /** Its PostgreSQL database's URL (null on SQLite), for another node to share. */
      database,
      /** Runs SQL statements on the server's database (SQLite or PostgreSQL), as an operator's shell would. */
      sql: (statements) => runSql(database, path.join(dataDir, 'cloudlaw.db'), statements),
      url: (p) => new URL(p, origin).toString(),
      log: () => log,
      stop,
      webFromDisk: process.env.CLOUDLAW_WEB_FROM_DISK === '1',
      csp: null,
      /** Runs `cloudlaw <args>` against this server's database; resolves to its stdout. */
      cli: (args) => runCli(bin, [...args, ...databaseArgs], env),
    };
    const page = await fetch(server.url('/coordinator'));
    server.csp = page.headers.get('content-security-policy');
    if (!server.webFromDisk) {
      const stale = await staleWebFiles(origin);
      if (stale.length) {
        throw new Error(
          `the server at ${bin} serves web files that differ from web/ (it embeds them when compiled): ` +
          `${stale.join(', ')}. Rebuild it (cargo build -p signaling), or set CLOUDLAW_WEB_FROM_DISK=1 ` +
          'to test the files on disk against this binary\'s API.',
        );
      }
    }
    return server;
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Keeps every RTCPeerConnection the context's pages make in
 * window.peerConnections, so that a test can read their statistics.
 */
export async function recordPeerConnections(context) {
  await context.addInitScript(() => {
    const Original = window.RTCPeerConnection;
    window.peerConnections = [];
    window.RTCPeerConnection = function RTCPeerConnection(...args) {
      const pc = new Original(...args);
      window.peerConnections.push(pc);
      return pc;
    };
    window.RTCPeerConnection.prototype = Original.prototype;
  });
}

/**
 * Video frames decoded and sound energy received by the page's recorded peer
 * connections (recordPeerConnections), from the `since`-th on, skipping closed ones.
 */
export function decodedMedia(page, since = 0) {
  return page.evaluate(async (from) => {
    let frames = 0;
    let energy = 0;
    for (const pc of (window.peerConnections ?? []).slice(from)) {
      if (pc.connectionState === 'closed') continue;
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded ?? 0;
        if (s.type === 'inbound-rtp' && s.kind === 'audio') energy += s.totalAudioEnergy ?? 0;
      });
    }
    return { frames, energy, connections: window.peerConnections.length };
  }, since);
}

/**
 * Each inbound stream of the page's open peer connections (recorded with
 * recordPeerConnections, or a liveClient's call), from the browser's own
 * statistics: kind, frames decoded, audio energy and packets received.
 */
export function inboundStreams(page) {
  return page.evaluate(async () => {
    const pcs = new Set([...(window.peerConnections ?? []), ...(window.call?.pc ? [window.call.pc] : [])]);
    const out = [];
    for (const pc of pcs) {
      if (pc.connectionState === 'closed') continue;
      (await pc.getStats()).forEach((s) => {
        if (s.type !== 'inbound-rtp') return;
        out.push({ kind: s.kind, frames: s.framesDecoded ?? 0, energy: s.totalAudioEnergy ?? 0, packets: s.packetsReceived ?? 0 });
      });
    }
    return out;
  });
}

/**
 * Waits until the page decodes moving video from `count` others and hears
 * sound from each of them (separate inbound streams, rising between looks).
 */
export async function seesAndHears(page, count, timeout = 45_000) {
  let first;
  await eventually(async () => {
    first = await inboundStreams(page);
    const video = first.filter((s) => s.kind === 'video' && s.frames > 0);
    const audio = first.filter((s) => s.kind === 'audio' && s.energy > 0);
    const players = await page.evaluate(() => [...document.querySelectorAll('video, audio')]
      .map((v) => ({ muted: v.muted, paused: v.paused, tracks: v.srcObject?.getTracks().length ?? 0 })));
    assert.ok(video.length >= count && audio.length >= count, JSON.stringify({ streams: first, players }));
  }, timeout);
  await eventually(async () => {
    const now = await inboundStreams(page);
    const grew = (kind, field) => now.filter((s, i) => s.kind === kind && first[i] && s[field] > first[i][field]).length;
    assert.ok(grew('video', 'frames') >= count && grew('audio', 'packets') >= count, JSON.stringify({ first, now }));
  }, timeout);
}

/**
 * The demo kiosk, enrolled on `kioskServer`, asks in Tibetan to talk about
 * land; the demo lawyer, on duty on `lawyerServer`, is rung and accepts.
 * Returns { kiosk, lawyer, kioskContext, lawyerContext, problems } once the
 * kiosk shows the call. Both contexts record their peer connections.
 */
export async function startKioskCall(browser, kioskServer, lawyerServer = kioskServer) {
  const problems = [];
  const kioskContext = await newContext(browser, kioskServer, { hasTouch: true, timezoneId: 'Asia/Shanghai' });
  await recordPeerConnections(kioskContext);
  const kiosk = await kioskContext.newPage();
  problems.push(watch(kiosk));
  await enrollKiosk(kiosk, kioskServer);

  const lawyerContext = await newContext(browser, lawyerServer);
  await recordPeerConnections(lawyerContext);
  const lawyer = await lawyerContext.newPage();
  problems.push(watch(lawyer));
  await lawyer.goto(lawyerServer.url('/lawyer'));
  await login(lawyer, 'demo-lawyer', 'demo-pass');
  await lawyer.getByTestId('go-online').click();
  await visible(lawyer.getByTestId('go-offline'));

  await kiosk.getByTestId('lang-bo').tap();
  await kiosk.getByTestId('talk-now').tap();
  await kiosk.getByTestId('topic-land').tap();
  await visible(kiosk.getByTestId('check-screen'));
  await kiosk.getByTestId('consult-now').tap();
  await visible(lawyer.getByTestId('incoming-call'));
  await lawyer.getByTestId('accept-call').click();
  await visible(kiosk.getByTestId('call-screen'));
  return { kiosk, lawyer, kioskContext, lawyerContext, problems };
}

/**
 * Starts a standalone `media-relay` node ($MEDIA_RELAY_BIN) on loopback, on free
 * ports, with a control token; returns { controlUrl, controlToken, pid, log(), kill9(), stop() }.
 * `register: { at, name, region }` has it register with signaling (`--register-at`),
 * with `controlToken` being signaling's `relay_registration.token`.
 */
export async function startRelayNode({ controlToken = `relay-node-token-${randomUUID()}`, register = null } = {}) {
  const bin = process.env.MEDIA_RELAY_BIN || path.join(ROOT, 'target/debug/media-relay');
  // With `register` ({ at: [signaling origins], name, region }), the node registers itself.
  const registering = register
    ? ['--register-at', register.at.join(','), '--name', register.name, ...(register.region ? ['--region', register.region] : [])]
    : [];
  const args = ['--udp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--control-token', controlToken, '--drain-secs', '5', ...registering];
  const child = spawn(bin, args, {
    env: { ...process.env, NO_COLOR: '1', RUST_LOG: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  let exited = null;
  const exit = new Promise((resolve) => child.on('exit', (code, signal) => resolve((exited = { code, signal }))));
  const killOnExit = () => {
    if (!exited && child.pid) {
      try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
    }
  };
  process.once('exit', killOnExit);
  child.stderr.setEncoding('utf8');
  const address = new Promise((resolve) => {
    child.stderr.on('data', (chunk) => {
      log += chunk;
      const match = log.match(/node ready.*http=(\d+\.\d+\.\d+\.\d+:\d+)/);
      if (match) resolve(match[1]);
    });
  });
  const http = await Promise.race([
    address,
    exit.then((e) => { throw new Error(`media-relay exited (${JSON.stringify(e)}):\n${log}`); }),
    deadline(30_000).then(() => { throw new Error(`media-relay printed no address within 30 s:\n${log}`); }),
  ]);
  const signal = async (name) => {
    if (!exited) {
      process.kill(child.pid, name);
      await exit;
    }
    process.removeListener('exit', killOnExit);
  };
  return {
    controlUrl: `ws://${http}/control`,
    controlToken,
    pid: child.pid,
    log: () => log,
    /** As a crash or a pulled plug would: no drain, no goodbye. */
    kill9: () => signal('SIGKILL'),
    stop: () => signal('SIGTERM'),
  };
}

/** Creates a database on the PostgreSQL server at `adminUrl` and returns its URL. */
async function postgresDatabase(adminUrl) {
  const name = `browser_${randomUUID().replaceAll('-', '')}`;
  await runProgram('psql', [adminUrl, '-v', 'ON_ERROR_STOP=1', '-qc', `CREATE DATABASE ${name}`]);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

function runSql(database, sqliteFile, statements) {
  if (database) return runProgram('psql', [database, '-v', 'ON_ERROR_STOP=1', '-qc', statements]);
  const script = 'import sqlite3, sys\ndb = sqlite3.connect(sys.argv[1], timeout=10)\ndb.executescript(sys.argv[2])\ndb.commit()';
  return runProgram('python3', ['-c', script, sqliteFile, statements]);
}

function runProgram(program, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (err += chunk));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`${program}: ${err}`))));
  });
}

function runCli(bin, args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => { out += chunk; });
    child.stderr.on('data', (chunk) => { err += chunk; });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`cloudlaw ${args[0]}: ${err}`))));
  });
}

async function waitForHealth(origin, exited, log) {
  const deadline = Date.now() + 30_000;
  let last = '';
  while (Date.now() < deadline) {
    if (exited()) throw new Error(`cloudlaw exited while starting:\n${log()}`);
    try {
      const response = await fetch(`${origin}/healthz`);
      if (response.status === 200) return;
      last = `status ${response.status}`;
    } catch (error) {
      last = String(error);
    }
    await sleep(100);
  }
  throw new Error(`/healthz never answered 200 (${last}):\n${log()}`);
}

async function webFiles(dir = WEB_DIR) {
  const out = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await webFiles(full)));
    // What signaling/src/web.rs leaves out of the binary: notes, and the type checker's settings.
    else if (!entry.name.endsWith('.md') && entry.name !== 'jsconfig.json') {
      out.push(path.relative(WEB_DIR, full).split(path.sep).join('/'));
    }
  }
  return out;
}

/** The files under web/ that the server serves differently (or not at all). */
async function staleWebFiles(origin) {
  const stale = [];
  for (const file of await webFiles()) {
    // Once more after a network error: a kept-alive connection the server has
    // just closed fails the request that was sent on it.
    const response = await fetch(`${origin}/web/${file}`).catch(() => fetch(`${origin}/web/${file}`));
    const served = Buffer.from(await response.arrayBuffer());
    const onDisk = await readFile(path.join(WEB_DIR, file));
    if (response.status !== 200 || !served.equals(onDisk)) stale.push(file);
  }
  return stale;
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.ttf': 'font/ttf',
};
const PAGES = { '/': 'index.html', '/terminal': 'terminal/index.html', '/lawyer': 'lawyer/index.html', '/coordinator': 'coordinator/index.html' };

/** Whether CLOUDLAW_WEB_FROM_DISK serves this URL from web/ (fonts come from the server, which reads the system's). */
const servedFromDisk = (server, url) => url.origin === server.origin && !url.pathname.startsWith('/web/fonts/')
  && (url.pathname.startsWith('/web/') || Object.hasOwn(PAGES, url.pathname));

/** The answer from web/ on disk to a URL that servedFromDisk: { status, headers, body }. */
async function diskResponse(server, url) {
  const relative = PAGES[url.pathname] ?? decodeURIComponent(url.pathname.slice('/web/'.length));
  const file = path.resolve(WEB_DIR, relative);
  const notFound = { status: 404, headers: { 'content-type': 'text/plain' }, body: Buffer.from('not found') };
  if (!file.startsWith(WEB_DIR + path.sep) || file.endsWith('.md')) return notFound;
  let body;
  try {
    body = await readFile(file);
  } catch {
    return notFound;
  }
  const type = TYPES[path.extname(file)] ?? 'application/octet-stream';
  const headers = { 'content-type': type, 'cache-control': 'no-cache' };
  if (type.startsWith('text/html') && server.csp) headers['content-security-policy'] = server.csp;
  return { status: 200, headers, body };
}

async function routeWebFromDisk(context, server) {
  await context.route(
    (url) => servedFromDisk(server, url),
    async (route) => route.fulfill(await diskResponse(server, new URL(route.request().url()))),
  );
}

// ---------------------------------------------------------------- networks

const ip = (...args) => execFileSync('ip', args, { stdio: 'pipe' });

/**
 * A network namespace of this test's own, joined to this one by a veth pair:
 * `${subnet}.1` here, `${subnet}.2` in it (a /24 nobody else uses). Returns
 * { ns, hostIp, nsIp, link(up), remove() }, or null when not allowed here
 * (it needs root). `tag` (at most 4 letters) keeps interface names apart.
 */
export function makeNamespace(tag, subnet) {
  const id = `${tag}${process.pid % 100000}`;
  const [ns, hostIf, nsIf] = [`clo-${id}`, `${id}h`, `${id}n`];
  const [hostIp, nsIp] = [`${subnet}.1`, `${subnet}.2`];
  try {
    ip('netns', 'add', ns);
  } catch {
    return null;
  }
  ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
  ip('link', 'set', nsIf, 'netns', ns);
  ip('addr', 'add', `${hostIp}/24`, 'dev', hostIf);
  ip('link', 'set', hostIf, 'up');
  ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${nsIp}/24`, 'dev', nsIf);
  ip('netns', 'exec', ns, 'ip', 'link', 'set', nsIf, 'up');
  ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
  return {
    ns,
    hostIp,
    nsIp,
    /** Takes the namespace's end of the link down or up (a network that goes away). */
    link: (up) => ip('netns', 'exec', ns, 'ip', 'link', 'set', nsIf, up ? 'up' : 'down'),
    /** Ends every process running in the namespace (a browser that stopped answering). */
    killAll: () => {
      for (const pid of String(ip('netns', 'pids', ns)).split(/\s+/).filter(Boolean)) {
        try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone already */ }
      }
    },
    remove: () => {
      try { ip('link', 'del', hostIf); } catch { /* gone with the namespace */ }
      try { ip('netns', 'del', ns); } catch { /* already gone */ }
    },
  };
}

// ---------------------------------------------------------------- browser

/**
 * Launches headless Chromium, with extra `args`, or through another program
 * as `executablePath` (a script that runs it in a network namespace).
 */
export function launchBrowser({ args = [], executablePath = CHROMIUM } = {}) {
  // Pages fulfilled from disk by Playwright have no address space of their
  // own, so Chromium's local network access checks would block their
  // WebSocket to the (loopback) server; pages the server serves are not.
  const fromDisk = process.env.CLOUDLAW_WEB_FROM_DISK === '1' ? ['--disable-features=LocalNetworkAccessChecks'] : [];
  return chromium.launch({ executablePath, args: [...CHROMIUM_ARGS, ...fromDisk, ...args], headless: true });
}

/** Starts a server (with startServer's `options`) and Chromium; resolves to { server, browser }. */
export async function startServerAndBrowser(options) {
  const server = await startServer(options);
  try {
    return { server, browser: await launchBrowser() };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/** Closes the browser, then stops the server (either may be missing: a set-up that failed). */
export async function stopServerAndBrowser(server, browser) {
  await browser?.close();
  await server?.stop();
}

/**
 * Registers a test file's hooks: before its tests, startServerAndBrowser(`options`),
 * handing { server, browser } to `use`; after them, stopServerAndBrowser.
 */
export function serverAndBrowserForFile(use, options) {
  let started = {};
  before(async () => {
    started = await startServerAndBrowser(options);
    use(started);
  });
  after(() => stopServerAndBrowser(started.server, started.browser));
}

/** A fresh browser context (its own localStorage) for one person or kiosk. */
export async function newContext(browser, server, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  context.setDefaultTimeout(15_000);
  if (server.webFromDisk) await routeWebFromDisk(context, server);
  return context;
}

// ---------------------------------------------------------------- Firefox

export const FIREFOX = process.env.FIREFOX_BIN || '/usr/bin/firefox-esr';

/**
 * Headless Firefox ESR (Debian's firefox-esr), driven over WebDriver BiDi by
 * puppeteer-core, with a fake camera and microphone; `prefs` are more of its preferences.
 */
export function launchFirefox(prefs = {}) {
  return puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    extraPrefsFirefox: {
      'media.navigator.streams.fake': true,
      'media.navigator.permission.disabled': true,
      ...prefs,
    },
  });
}

/**
 * A Firefox page in a fresh browser context (its own storage), 1280x800. Its
 * script errors, Content Security Policy violations, console errors and
 * missing translations go to `problems` (check with assertClean). With
 * CLOUDLAW_WEB_FROM_DISK=1 its /web/... and pages come from web/ on disk, as
 * newContext's do in Chromium (here through puppeteer's request interception;
 * Firefox then hides the page's WebRTC host addresses behind mDNS names, so
 * this is not for a call whose media must flow: firefox.test.mjs).
 * Resolves to { context, page, problems }.
 */
export async function firefoxPage(firefox, server) {
  const context = await firefox.createBrowserContext();
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  await page.setViewport({ width: 1280, height: 800 });
  const problems = [];
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    const text = message.text();
    if (/Content[- ]Security[- ]Policy|\[i18n\] missing/.test(text)) problems.push(`${message.type()}: ${text}`);
    else if (message.type() === 'error') problems.push(`console.error: ${text}`);
  });
  if (server.webFromDisk) {
    await page.setRequestInterception(true);
    page.on('request', (request) => {
      const url = new URL(request.url());
      const answer = servedFromDisk(server, url) ? diskResponse(server, url).then((r) => request.respond(r)) : request.continue();
      answer.catch((error) => problems.push(`from disk: ${url.pathname}: ${error.message}`));
    });
  }
  return { context, page, problems };
}

/** The number of pages of a PDF file (poppler's pdfinfo). */
export function pdfPages(file) {
  const info = execFileSync('pdfinfo', [file], { encoding: 'utf8' });
  const pages = info.match(/^Pages:\s+(\d+)$/m);
  assert.ok(pages, `pdfinfo ${file}:\n${info}`);
  return Number(pages[1]);
}

/** A kiosk: a touch screen. */
export function newKioskContext(browser, server) {
  return newContext(browser, server, { viewport: { width: 1280, height: 800 }, hasTouch: true });
}

/** Opens /terminal on a page, enrolls it with a code (the demo terminal's by default) and waits for the start screen. */
export async function enrollKiosk(page, server, code = 'DEMO-TERMINAL-1') {
  await page.goto(server.url('/terminal'));
  await page.getByTestId('enroll-code').fill(code);
  await page.getByTestId('enroll-submit').click();
  await visible(page.getByTestId('start-screen'));
}

/** A page of an app (`appPath`) in a fresh context (`options` for newContext), logged in; resolves to { context, page, problems }. */
export async function openApp(browser, server, appPath, username, password = 'demo-pass', options = {}) {
  const context = await newContext(browser, server, options);
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(server.url(appPath));
  await login(page, username, password);
  return { context, page, problems };
}

/**
 * Collects what must never happen on a page: script errors, Content Security
 * Policy violations and missing translations. Check with assertClean().
 */
export function watch(page) {
  const problems = [];
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    const text = message.text();
    if (/Content Security Policy|\[i18n\] missing/.test(text)) problems.push(`${message.type()}: ${text}`);
    else if (message.type() === 'error' && !text.startsWith('Failed to load resource')) {
      problems.push(`console.error: ${text}`);
    }
  });
  return problems;
}

export function assertClean(problems) {
  assert.deepEqual(problems, [], `the page reported problems:\n${problems.join('\n')}`);
}

// ---------------------------------------------------------------- waiting

/** Retries an async check until it stops throwing (or the time is up). */
export async function eventually(check, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(100);
    }
  }
}

export const visible = (locator) => locator.waitFor({ state: 'visible' });
export const hidden = (locator) => locator.waitFor({ state: 'hidden' });

/** Waits until a locator's text matches a regular expression; returns the text. */
export function textMatches(locator, pattern) {
  return eventually(async () => {
    const text = (await locator.textContent()) ?? '';
    assert.match(text, pattern);
    return text;
  });
}

export async function login(page, username, password) {
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
}

/** The language a page is shown in (its <html lang>). */
export const pageLang = (page) => page.evaluate(() => document.documentElement.lang);

/** Switches a page's language with its language button and waits for it. */
export async function switchLanguage(page, code) {
  await page.getByTestId(`lang-${code}`).click();
  await eventually(async () => assert.equal(await pageLang(page), code));
}

// ---------------------------------------------------------------- checks

/** Visible form controls that no label names. */
export function unlabeledControls(page) {
  return page.evaluate(() => {
    const out = [];
    for (const el of document.querySelectorAll('input, select, textarea')) {
      if (!el.checkVisibility() || el.type === 'hidden') continue;
      const named = el.labels.length > 0 || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
      if (!named) out.push(el.id || el.name || el.outerHTML.slice(0, 80));
    }
    return out;
  });
}

/**
 * Visible targets smaller than min pixels: buttons, text inputs, selects, and
 * the labels of checkboxes (the label is the target).
 */
export function smallTargets(page, min) {
  return page.evaluate((minimum) => {
    const out = [];
    const targets = document.querySelectorAll('button, select, input:not([type=checkbox]):not([type=radio]):not([type=hidden]), label.check');
    for (const el of targets) {
      if (!el.checkVisibility()) continue;
      const box = el.getBoundingClientRect();
      const tooSmall = box.height < minimum - 0.5 || (el.tagName === 'BUTTON' && box.width < minimum - 0.5);
      if (tooSmall) {
        const name = el.dataset.testid || el.id || el.textContent.trim().slice(0, 30);
        out.push(`${el.tagName.toLowerCase()} ${name}: ${Math.round(box.width)}x${Math.round(box.height)}`);
      }
    }
    return out;
  }, min);
}

/** Elements wider than the page: horizontal overflow (tables may scroll in their wrapper). */
export function overflowing(page) {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const out = [];
    for (const el of document.body.querySelectorAll('*')) {
      if (!el.checkVisibility() || el.closest('.table-wrap')) continue;
      const box = el.getBoundingClientRect();
      if (box.right > width + 1) out.push(`${el.tagName.toLowerCase()}#${el.id || el.dataset.testid || ''}: right ${Math.round(box.right)} > ${width}`);
    }
    return out;
  });
}

/** Visible text that still shows a translation key (e.g. "accounts.heading"). */
export function untranslated(page) {
  return page.evaluate(() => {
    const out = [];
    for (const el of document.querySelectorAll('[data-i18n]')) {
      if (el.checkVisibility() && el.textContent.trim() === el.dataset.i18n) out.push(el.dataset.i18n);
    }
    return out;
  });
}

/** Asserts the layout checks of a screen, then saves its screenshot. */
export async function checkScreen(page, name, { minTarget = 48 } = {}) {
  assert.deepEqual(await unlabeledControls(page), [], `${name}: inputs without a label`);
  assert.deepEqual(await smallTargets(page, minTarget), [], `${name}: targets under ${minTarget}px`);
  assert.deepEqual(await overflowing(page), [], `${name}: horizontal overflow`);
  assert.deepEqual(await untranslated(page), [], `${name}: untranslated keys`);
  await screenshot(page, name);
}

/** Saves a PNG of a page (whole length) or of one element (a locator). */
export async function screenshot(pageOrLocator, name) {
  await mkdir(ARTIFACTS, { recursive: true });
  const isPage = typeof pageOrLocator.goto === 'function';
  await pageOrLocator.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), ...(isPage ? { fullPage: true } : {}) });
}

/** A short suffix that makes names unique within one run. */
export const unique = () => `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4).toString(36)}`;

// ---------------------------------------------------------------- live clients

/**
 * A participant without its app: a page on the server's origin holding one
 * live connection (/ws) with a bearer token (a terminal's device token or a
 * person's access token), for playing the other side of a flow under test.
 * Messages are kept in order; `next(type, where)` takes the first unread one
 * of a type (waiting for it). With `media`, it joins the call's room with the
 * fake camera and microphone (web/shared/call.js) when `consult.started` comes.
 */
export async function liveClient(browser, server, token, { media = false } = {}) {
  const context = await newContext(browser, server);
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(server.url('/healthz'));
  // A click, as a resident touches the kiosk: the page may then play sound.
  if (media) await page.mouse.click(2, 2);
  await page.evaluate(async ({ bearer, media }) => {
    window.inbox = [];
    window.remote = [];
    const ws = new WebSocket(`ws://${location.host}/ws?token=${encodeURIComponent(bearer)}`);
    window.ws = ws;
    window.send = (message) => ws.send(JSON.stringify(message));
    ws.onmessage = async (event) => {
      const message = JSON.parse(event.data);
      if (window.call?.handle(message)) return;
      window.inbox.push(message);
      if (media && message.type === 'consult.started') {
        window.call?.close();
        const { RelayCall } = await import('/web/shared/call.js');
        window.stream ??= await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 320, height: 240 } });
        window.call = new RelayCall({
          send: (m) => { window.send(m); return true; },
          token: message.token,
          stream: window.stream,
          onStream: (stream) => {
            window.remote.push(stream);
            // Played, as the kiosk plays it: the browser decodes sound only for a sink.
            const player = document.createElement('video');
            player.autoplay = true;
            player.srcObject = stream;
            document.body.append(player);
            player.play().catch(() => {});
          },
        });
        window.call.join();
      }
    };
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error('websocket refused'));
    });
    // The server closes a connection that says nothing for a minute.
    setInterval(() => window.send({ type: 'ping' }), 15_000);
  }, { bearer: token, media });
  return {
    context,
    page,
    problems,
    send: (message) => page.evaluate((m) => window.send(m), message),
    /** Takes the first unread message of a type (matching `where`), waiting for it. */
    next: (type, where = () => true, timeout = 20_000) => eventually(async () => {
      const inbox = await page.evaluate(() => window.inbox);
      const index = inbox.findIndex((m) => m.type === type && where(m));
      assert.notEqual(index, -1, `no ${type} yet: ${inbox.map((m) => m.type).join(', ')}`);
      await page.evaluate((i) => window.inbox.splice(i, 1), index);
      return inbox[index];
    }, timeout),
    /** The unread messages of a type. */
    unread: (type) => page.evaluate((t) => window.inbox.filter((m) => m.type === t), type),
    /** Video frames decoded from the others, and how many streams arrived. */
    received: () => page.evaluate(async () => {
      let frames = 0;
      if (window.call) {
        (await window.call.pc.getStats()).forEach((s) => {
          if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded ?? 0;
        });
      }
      return { frames, streams: window.remote.length };
    }),
    close: () => context.close(),
  };
}

/**
 * A lawyer or interpreter signed in to /lawyer on `server` (in a fresh context
 * of `browser` that records its peer connections) and online; what the page
 * reports goes into `problems`.
 */
export async function onlineVolunteer(browser, server, username, problems) {
  const context = await newContext(browser, server);
  await recordPeerConnections(context);
  const page = await context.newPage();
  problems.push(watch(page));
  await page.goto(server.url('/lawyer'));
  await login(page, username, 'demo-pass');
  // Online already when the last session wanted it (kept for the browser session).
  await visible(page.locator('[data-testid="go-online"]:visible, [data-testid="go-offline"]:visible').first());
  if (await page.getByTestId('go-online').isVisible()) await page.getByTestId('go-online').click();
  await visible(page.getByTestId('go-offline'));
  return page;
}

/** Logs in through the API; resolves to an access token. */
export async function accessToken(server, username, password = 'demo-pass') {
  const response = await fetch(server.url('/api/auth/login'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  assert.equal(response.status, 200, `login ${username}`);
  return (await response.json()).access_token;
}

/**
 * Calls the server's API with a JSON body and, when `token` is given, a bearer
 * token; resolves to { status, body } (the parsed JSON, or null when empty).
 * With `lenient`, a body that is not JSON is given as its text.
 */
export async function callApi(server, method, url, token, body, { lenient = false } = {}) {
  const response = await fetch(server.url(url), {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!lenient) return { status: response.status, body: text ? JSON.parse(text) : null };
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  return { status: response.status, body: parsed };
}

const terminalTokens = new WeakMap();

/** The demo terminal's device token on `server`, enrolled through the API on first use (its code works once). */
export async function demoTerminalToken(server) {
  if (!terminalTokens.has(server)) {
    const enrolled = await callApi(server, 'POST', '/api/terminals/enroll', null, { code: 'DEMO-TERMINAL-1' });
    assert.equal(enrolled.status, 200);
    terminalTokens.set(server, enrolled.body.device_token);
  }
  return terminalTokens.get(server);
}

/** A lawyer played by a bare live client with camera and microphone, available (or rung at once). */
export async function availableLawyer(browser, server, username = 'demo-lawyer', password = 'demo-pass') {
  const lawyer = await liveClient(browser, server, await accessToken(server, username, password), { media: true });
  await lawyer.send({ type: 'presence.set', state: 'available' });
  // Rung at once when a resident already waits: that counts too.
  await lawyer.next('presence', (m) => m.state === 'available' || m.state === 'ringing');
  return lawyer;
}

/**
 * A bare live client's lawyer ends any wrap-up, goes offline and closes (a
 * lawyer who only drops, or is in a wrap-up, still counts as on duty for a while).
 */
export async function leaveLive(lawyer) {
  await lawyer.send({ type: 'presence.set', state: 'available' }).catch(() => {});
  await lawyer.send({ type: 'presence.set', state: 'offline' }).catch(() => {});
  await lawyer.next('presence', (m) => m.state === 'offline').catch(() => {});
  await lawyer.close();
}
