// A real SIP phone for the hotline tests: Debian's baresip, headless. It
// plays a WAV file as its microphone (aufile), records what it hears
// (sndfile: snd_path/dump-*-dec.wav, written when the call closes), and is
// driven over ctrl_tcp (netstring JSON commands; events back the same way).

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import dgram from 'node:dgram';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A free TCP port on loopback (closed again before it is used). */
async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Whether `port` can be bound on loopback over both TCP and UDP right now. */
async function bindable(port) {
  const tcp = await new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
  if (!tcp) return false;
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', () => { socket.close(); resolve(false); });
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
  });
}

/**
 * A SIP port for baresip: it listens on `port` over UDP and TCP and, always,
 * on `port + 1` over TLS, so both must be free.
 */
async function freeSipPort() {
  for (let i = 0; i < 50; i++) {
    const port = await freePort();
    if (port < 65535 && (await bindable(port)) && (await bindable(port + 1))) return port;
  }
  throw new Error('no two free neighbouring ports on loopback');
}

/** A WAV file of `seconds` of a sine at `hz` (mono 16-bit, 8 kHz unless `rate`), made with sox. */
export async function toneWav(dir, hz = 440, seconds = 90, rate = 8000) {
  const file = path.join(dir, `tone-${hz}-${rate}.wav`);
  execFileSync('sox', ['-n', '-r', String(rate), '-c', '1', '-b', '16', file, 'synth', String(seconds), 'sine', String(hz), 'vol', '0.3']);
  return file;
}

/**
 * How strongly `hz` sounds in `file` (from `from` for `length` seconds),
 * against the spectrum's median: sox's power spectrum (stat -freq), the
 * strongest bin within 3 % of `hz`, divided by the median bin.
 */
export function toneStrength(file, hz, from = 0, length = null) {
  const args = [file, '-n', 'trim', String(from), ...(length ? [String(length)] : []), 'stat', '-freq'];
  const rows = spawnSync('sox', args, { maxBuffer: 64 * 1024 * 1024 }).stderr.toString().split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number))
    .filter((r) => r.length === 2 && Number.isFinite(r[0]) && Number.isFinite(r[1]) && r[0] > 50);
  if (!rows.length) return 0;
  const sorted = rows.map((r) => r[1]).sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] || 1e-12;
  const near = rows.filter((r) => Math.abs(r[0] - hz) <= hz * 0.03).map((r) => r[1]);
  return Math.max(0, ...near) / median;
}

/** RMS amplitude (0..1) and seconds of `file`, optionally from `from` for `length` seconds (sox's stat). */
export function measure(file, from = 0, length = null) {
  const args = [file, '-n', 'trim', String(from), ...(length ? [String(length)] : []), 'stat'];
  const text = spawnSync('sox', args).stderr.toString();
  const number = (label) => Number((text.match(new RegExp(`${label}:\\s+(-?[\\d.]+)`)) ?? [])[1]);
  return { rms: number('RMS\\s+amplitude'), seconds: number('Length \\(seconds\\)') };
}

/** baresip's configuration file: loopback only, a WAV as microphone, recordings in `dir`/rec. */
function baresipConfig({ dir, mic, sipPort, ctrlPort, rtpBase }) {
  return [
    'poll_method\t\tepoll',
    `sip_listen\t\t127.0.0.1:${sipPort}`,
    'net_interface\t\t127.0.0.1',
    'dns_server\t\t127.0.0.1:53',
    'call_local_timeout\t120',
    'call_max_calls\t\t4',
    `audio_source\t\taufile,${mic}`,
    'ausrc_srate\t\t8000',
    'ausrc_channels\t\t1',
    'audio_buffer\t\t20-160',
    'audio_level\t\tno',
    `rtp_ports\t\t${rtpBase}-${rtpBase + 99}`,
    'rtcp_mux\t\tno',
    'jitter_buffer_delay\t5-10',
    'module_path\t\t/usr/lib/baresip/modules',
    'module\t\t\tg711.so',
    'module\t\t\topus.so',
    'module\t\t\taufile.so',
    'module\t\t\tsndfile.so',
    'module_tmp\t\taccount.so',
    'module_app\t\tmenu.so',
    'module_app\t\tctrl_tcp.so',
    `ctrl_tcp_listen\t\t127.0.0.1:${ctrlPort}`,
    `snd_path\t\t${dir}/rec`,
    'ringback_disabled\tyes',
    'menu_bell\t\tno',
    'statmode_default\toff',
    '',
  ].join('\n');
}

/**
 * Starts a baresip whose account is `user`@127.0.0.1 (its From number),
 * with `mic` as its microphone. `answer`: 'auto' to answer incoming calls.
 * `password`: digest credentials it answers a challenge with.
 */
export async function startPhone({ user = '13812345678', mic, answer = 'manual', password = null, codecs = 'PCMU/8000/1,PCMA/8000/1' } = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'baresip-'));
  await writeFile(path.join(dir, 'contacts'), '');
  const auth = password ? `;auth_user=${user};auth_pass=${password}` : '';
  await writeFile(path.join(dir, 'accounts'),
    `<sip:${user}@127.0.0.1>${auth};regint=0;answermode=${answer};audio_codecs=${codecs}\n`);
  execFileSync('mkdir', ['-p', path.join(dir, 'rec')]);

  // Ports are picked free, but another process may take one before baresip
  // binds it; then baresip says so and exits, and it is started again on others.
  let child, log, socket, sipPort, killOnExit;
  for (let attempt = 1; !socket; attempt++) {
    sipPort = await freeSipPort();
    const ctrlPort = await freePort();
    const rtpBase = 20000 + Math.floor(Math.random() * 400) * 100;
    await writeFile(path.join(dir, 'config'), baresipConfig({ dir, mic, sipPort, ctrlPort, rtpBase }));
    child = spawn('baresip', ['-f', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let exited = false;
    child.once('exit', () => { exited = true; });
    log = '';
    child.stdout.on('data', (chunk) => { log += chunk; });
    child.stderr.on('data', (chunk) => { log += chunk; });
    const pid = child.pid;
    killOnExit = () => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } };
    process.once('exit', killOnExit);

    // The control connection: netstrings both ways.
    for (let i = 0; i < 100 && !socket && !exited; i++) {
      socket = await new Promise((resolve) => {
        const s = net.connect(ctrlPort, '127.0.0.1', () => resolve(s));
        s.once('error', () => resolve(null));
      });
      if (!socket) await sleep(50);
    }
    if (socket) break;
    killOnExit();
    process.removeListener('exit', killOnExit);
    if (attempt >= 3 || !log.includes('Address already in use')) {
      assert.fail(`baresip's control port did not open:\n${log}`);
    }
  }
  const events = [];
  let buffer = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      const colon = buffer.indexOf(':');
      if (colon < 0) break;
      const length = Number(buffer.subarray(0, colon).toString());
      if (buffer.length < colon + 1 + length + 1) break;
      const body = buffer.subarray(colon + 1, colon + 1 + length).toString();
      buffer = buffer.subarray(colon + 1 + length + 1);
      try { events.push(JSON.parse(body)); } catch { /* not JSON */ }
    }
  });
  const command = (name, params = '') => {
    const body = JSON.stringify({ command: name, params, token: `t${Date.now()}` });
    socket.write(`${Buffer.byteLength(body)}:${body},`);
  };
  /** Waits for an event of `type` not yet taken; returns it. */
  let taken = 0;
  const waitEvent = async (type, timeout = 20_000) => {
    const end = Date.now() + timeout;
    while (Date.now() < end) {
      const index = events.findIndex((e, i) => i >= taken && e.event && e.type === type);
      if (index >= 0) {
        taken = index + 1;
        return events[index];
      }
      await sleep(25);
    }
    throw new Error(`baresip: no ${type} within ${timeout} ms; events: ${events.filter((e) => e.event).map((e) => `${e.type}(${e.param ?? ''})`).join(', ')}\n${log.slice(-3000)}`);
  };
  return {
    user,
    sipPort,
    dial: (uri) => command('dial', uri),
    sendDigits: (digits) => command('sndcode', digits),
    hangup: () => command('hangup'),
    accept: () => command('accept'),
    waitEvent,
    events: () => events.filter((e) => e.event),
    log: () => log,
    /** The recording of what the phone heard in its last call (after CALL_CLOSED). */
    async recording() {
      for (let i = 0; i < 40; i++) {
        const files = (await readdir(path.join(dir, 'rec'))).filter((f) => f.endsWith('-dec.wav')).sort();
        if (files.length) {
          const file = path.join(dir, 'rec', files.at(-1));
          const { seconds } = measure(file);
          if (seconds > 0) return file;
        }
        await sleep(100);
      }
      throw new Error(`baresip recorded nothing:\n${log.slice(-2000)}`);
    },
    async stop() {
      try { command('quit'); } catch { /* closed */ }
      await sleep(200);
      try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
      process.removeListener('exit', killOnExit);
      socket?.destroy();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
