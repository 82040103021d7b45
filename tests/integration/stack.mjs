// The integration harness: one real Anyray stack per test file.
//
// startStack() starts the mock OpenAI upstream (the only stand-in) on a port it picks itself,
// then `anyray-launch` with a fresh ANYRAY_DATA_DIR under /tmp and a free ANYRAY_PORT, and
// waits until the whole pipeline answers: /healthz is 200, a chat call comes back 200 from the
// mock, and its spend row is in SQLite. stack.stop() tears everything down (SIGCONT, SIGTERM,
// then SIGKILL), and an exit hook does the same if the test process dies first.
//
// Binaries come from AR_BUILD_DIR (ctest sets it; default /work/main/build).

import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const BUILD_DIR = path.resolve(process.env.AR_BUILD_DIR || '/work/main/build');
export { sleep };

const LOG_LIMIT = 4000; // lines kept per process
const T0 = performance.now(); // log lines carry seconds since the test file started
const live = new Set(); // every stack not yet stopped, for the exit hook

export function bin(rel) {
  const file = path.join(BUILD_DIR, rel);
  if (!fs.existsSync(file))
    throw new Error(`${file} is missing: build first, or set AR_BUILD_DIR to a build tree`);
  return file;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export async function waitFor(what, fn, { timeoutMs = 10000, intervalMs = 50 } = {}) {
  const start = Date.now();
  let last;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() - start > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}` +
                      (last ? ` (last error: ${last.message})` : ''));
    await sleep(intervalMs);
  }
}

// promise, or a rejection naming what did not happen within ms (a hang).
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

// True if pid is alive and is one of ours (guards against pid reuse at teardown).
function isAnyray(pid) {
  if (!pid || !alive(pid)) return false;
  try {
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes('anyray-');
  } catch {
    return false;
  }
}

function signal(pid, sig) {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

// Capture a child's output line by line into a bounded array (and nowhere else); all, if given,
// is an unbounded array that keeps every line too (a test that greps everything the stack said).
function capture(proc, lines, label, all = null) {
  for (const stream of [proc.stdout, proc.stderr]) {
    if (!stream) continue;
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (text) => {
      partial += text;
      const parts = partial.split('\n');
      partial = parts.pop();
      const at = ((performance.now() - T0) / 1000).toFixed(3).padStart(8);
      for (const line of parts) {
        lines.push(`${at} ${label ? `${label} ` : ''}${line}`);
        if (all) all.push(line);
        if (lines.length > LOG_LIMIT) lines.splice(0, lines.length - LOG_LIMIT);
      }
    });
  }
}

// --------------------------------------------------------------------------
// HTTP

// One HTTP exchange on a fresh connection. body: string | Buffer | undefined.
// Resolves { status, headers, body (Buffer), text, json, ms }; rejects on a socket error
// before any response, or if nothing completes within timeoutMs (a hang).
export function request(url, { method = 'GET', headers = {}, body, timeoutMs = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const req = http.request(url, { method, headers, agent: false });
    const timer = setTimeout(() => {
      req.destroy(new Error(`no complete answer from ${method} ${url} within ${timeoutMs} ms`));
    }, timeoutMs);
    let responded = false;
    req.on('response', (res) => {
      responded = true;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        const buf = Buffer.concat(chunks);
        const text = buf.toString('utf8');
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode, headers: res.headers, body: buf, text, json,
                  ms: performance.now() - start });
      });
      res.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    req.on('error', (err) => {
      if (responded) return; // e.g. EPIPE writing a body the server already refused
      clearTimeout(timer);
      reject(err);
    });
    if (body === undefined) req.end();
    else if (!Buffer.isBuffer(body) || body.length <= STREAM_SLICE) req.end(body);
    else {
      // Stream a big body in slices, reading all the while (as curl does), and stop once the
      // server has answered: a server may refuse a body before it has read it.
      let off = 0;
      const pump = () => {
        while (off < body.length && !responded && !req.destroyed) {
          const slice = body.subarray(off, off + STREAM_SLICE);
          off += slice.length;
          if (!req.write(slice)) return req.once('drain', pump);
        }
        if (!req.destroyed) req.end();
      };
      pump();
    }
  });
}

const STREAM_SLICE = 64 * 1024;

// A raw HTTP/1.1 exchange on a plain socket: the head as given, then body (a Buffer) streamed
// in slices while the answer is read (as curl does); writing stops once a whole answer has arrived (a server
// may refuse a body it has not read, then close). Resolves { status, headers, text, json,
// written }: written is how many body bytes went out.
// holdBodyMs: wait this long after the head for an early answer before sending any body.
export function rawExchange(port, head, body = Buffer.alloc(0), { timeoutMs = 30000, holdBodyMs = 0 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = Buffer.alloc(0);
    let done = false;
    let written = 0;
    const timer = setTimeout(() => finish(new Error(`no complete answer within ${timeoutMs} ms`)), timeoutMs);
    const parse = () => {
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return null;
      const lines = got.subarray(0, end).toString('latin1').split('\r\n');
      const m = /^HTTP\/1\.[01] (\d+)/.exec(lines[0]);
      if (!m) return null;
      const headers = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const len = Number(headers['content-length']);
      if (!(len >= 0) || got.length - end - 4 < len) return null;
      const text = got.subarray(end + 4, end + 4 + len).toString('utf8');
      let json;
      try { json = JSON.parse(text); } catch { json = undefined; }
      return { status: Number(m[1]), headers, text, json };
    };
    const finish = (err) => {
      if (done) return;
      const res = parse();
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (res) resolve({ ...res, written });
      else reject(err || new Error(`connection closed without a complete answer: ${JSON.stringify(got.toString('latin1').slice(0, 300))}`));
    };
    sock.on('data', (c) => {
      got = Buffer.concat([got, c]);
      if (parse()) finish();
    });
    sock.on('error', (err) => finish(err));
    sock.on('close', () => finish());
    sock.on('connect', () => {
      sock.write(head);
      const pump = () => {
        while (!done && written < body.length) {
          const slice = body.subarray(written, written + STREAM_SLICE);
          written += slice.length;
          if (!sock.write(slice)) return sock.once('drain', () => setImmediate(pump));
        }
      };
      if (holdBodyMs) setTimeout(pump, holdBodyMs);
      else setImmediate(pump);
    });
  });
}

// Parse an SSE text into its data payloads (strings), in order.
export function sseData(text) {
  const out = [];
  for (const event of text.split(/\r?\n\r?\n/)) {
    const data = event.split(/\r?\n/).filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).replace(/^ /, ''));
    if (data.length) out.push(data.join('\n'));
  }
  return out;
}

// The OpenAI error shape, strictly: {"error":{"message","type","param","code"}}.
export function assertOpenAIError(assert, res, status, what = '') {
  const where = `${what} (status ${res.status}, body ${res.text.slice(0, 300)})`;
  assert.equal(res.status, status, `status ${where}`);
  assert.match(String(res.headers['content-type'] || ''), /application\/json/, `content-type ${where}`);
  assert.ok(res.json && typeof res.json === 'object', `JSON body ${where}`);
  assert.deepEqual(Object.keys(res.json), ['error'], `only "error" at the top ${where}`);
  const e = res.json.error;
  assert.deepEqual(Object.keys(e).sort(), ['code', 'message', 'param', 'type'], `error keys ${where}`);
  assert.equal(typeof e.message, 'string', `message is a string ${where}`);
  assert.ok(e.message.length > 0, `message is not empty ${where}`);
  assert.equal(typeof e.type, 'string', `type is a string ${where}`);
  assert.ok(e.param === null || typeof e.param === 'string', `param string|null ${where}`);
  assert.ok(e.code === null || typeof e.code === 'string', `code string|null ${where}`);
  return e;
}

// --------------------------------------------------------------------------
// The mock upstream

export async function startMock({ key = `sk-test-${randomBytes(12).toString('hex')}`, args = [] } = {}) {
  const lines = [];
  const proc = spawn(bin('tests/mock/anyray-mock-upstream'),
    ['--port', '0', '--host', '127.0.0.1', '--key', key, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  capture(proc, lines, '');
  let exited = null;
  proc.on('exit', (code, sig) => { exited = { code, sig }; });
  const port = await waitFor('the mock upstream to print its "listening" line', () => {
    if (exited) throw new Error(`mock exited (${JSON.stringify(exited)}): ${lines.join('\n')}`);
    for (const line of lines) {
      const m = /mock-upstream listening on 127\.0\.0\.1:(\d+)/.exec(line);
      if (m) return Number(m[1]);
    }
    return 0;
  }, { timeoutMs: 15000, intervalMs: 20 });
  const base = `http://127.0.0.1:${port}`;
  return {
    proc, port, key, lines,
    base,
    url: `${base}/v1`,
    exited: () => exited,
    async requests() {
      const r = await request(`${base}/__mock/requests`);
      if (r.status !== 200) throw new Error(`GET /__mock/requests: ${r.status}`);
      return r.json;
    },
    async clear() {
      const r = await request(`${base}/__mock/requests`, { method: 'DELETE' });
      if (r.status !== 200) throw new Error(`DELETE /__mock/requests: ${r.status}`);
    },
    async stats() {
      const r = await request(`${base}/__mock/stats`);
      if (r.status !== 200) throw new Error(`GET /__mock/stats: ${r.status}`);
      return r.json;
    },
    async stop() {
      if (exited) return;
      signal(proc.pid, 'SIGCONT');
      signal(proc.pid, 'SIGTERM');
      const t = Date.now();
      while (!exited && Date.now() - t < 5000) await sleep(20);
      if (!exited) signal(proc.pid, 'SIGKILL');
      while (!exited && Date.now() - t < 8000) await sleep(20);
    },
  };
}

// --------------------------------------------------------------------------
// The stack

const KINDS = ['broker', 'optimizer', 'router', 'provider', 'spend', 'edge'];

class Stack {
  constructor(dir, mock, port, optimizerPort, env) {
    this.dir = dir;
    this.mock = mock;
    this.port = port;
    this.optimizerPort = optimizerPort;
    this.adminToken = `adm-${randomBytes(16).toString('hex')}`;
    this.env = env;
    this.base = `http://127.0.0.1:${port}`;
    this.optimizerBase = `http://127.0.0.1:${optimizerPort}`;
    this.lines = [];
    this.allLines = null; // every line of output, when startStack({ keepAllLines: true })
    this.seenPids = new Set();
    this.launcher = null;
    this.launcherExit = null;
    this.stopped = false;
  }

  get db() {
    return path.join(this.dir, 'anyray.db');
  }

  // The pid in <dir>/pids/<name>-<i>.pid (the launcher's is anyray-launch-0), or 0.
  pid(name, index = 0) {
    try {
      const pid = Number(fs.readFileSync(path.join(this.dir, 'pids', `${name}-${index}.pid`), 'utf8').trim());
      if (pid > 0) this.seenPids.add(pid);
      return pid > 0 ? pid : 0;
    } catch {
      return 0;
    }
  }

  isAlive(pid) {
    return isAnyray(pid);
  }

  // Send sig to the process of an actor (name[-index]) or to a pid.
  signal(target, sig, index = 0) {
    const pid = typeof target === 'number' ? target : (target === 'launcher' ? this.launcher.pid : this.pid(target, index));
    if (!pid) throw new Error(`no pid for ${target}`);
    this.seenPids.add(pid);
    if (!signal(pid, sig)) throw new Error(`kill(${pid}, ${sig}) failed`);
    return pid;
  }

  kill9(target, index = 0) { return this.signal(target, 'SIGKILL', index); }
  pause(target, index = 0) { return this.signal(target, 'SIGSTOP', index); }
  resume(target, index = 0) { return this.signal(target, 'SIGCONT', index); }

  // Wait until the pid file of name names a live process other than oldPid.
  async waitNewPid(name, oldPid, { timeoutMs = 10000, index = 0 } = {}) {
    return waitFor(`${name}-${index} to be restarted with a new pid (old ${oldPid})`, () => {
      const pid = this.pid(name, index);
      return pid && pid !== oldPid && isAnyray(pid) ? pid : 0;
    }, { timeoutMs, intervalMs: 50 });
  }

  // Rows from SQLite, through the sqlite3 CLI (Node 20 has no node:sqlite).
  sql(query) {
    const out = execFileSync('sqlite3', ['-json', '-cmd', '.timeout 5000', this.db, query],
      { encoding: 'utf8', timeout: 20000 });
    return out.trim() ? JSON.parse(out) : [];
  }

  spendRows(where = '1=1') {
    return this.sql(`select * from spend where ${where}`);
  }

  // Poll until the spend row of request id rid exists; returns it.
  async spendRow(rid, { timeoutMs = 10000 } = {}) {
    if (!/^[0-9a-f]+$/.test(rid || '')) throw new Error(`bad request id ${rid}`);
    return waitFor(`the spend row of ${rid}`, () => this.spendRows(`request_id = '${rid}'`)[0],
      { timeoutMs, intervalMs: 100 });
  }

  log() {
    return this.lines.join('\n');
  }

  // Every line the stack's processes wrote since it started (also across restart()), when
  // started with keepAllLines; else the bounded log().
  fullLog() {
    return this.allLines ? this.allLines.join('\n') : this.log();
  }

  // Stop the launcher and every actor, keep the data dir (and the mock), then start again on
  // the same dir and port and wait until the pipeline works (the warm-up chat, as start()).
  async restart({ readyTimeoutMs = 60000 } = {}) {
    if (this.stopped) throw new Error('restart() of a stopped stack');
    await this.stopProcesses({ strict: true });
    if (this.watchdog) signal(this.watchdog.pid, 'SIGKILL');
    // The pid files name the old processes: start() waits for new ones.
    fs.rmSync(path.join(this.dir, 'pids'), { recursive: true, force: true });
    this.launcher = null;
    this.launcherExit = null;
    return this.start({ readyTimeoutMs });
  }

  logTail(n = 80) {
    const mockLines = this.mock ? this.mock.lines.slice(-20) : [];
    return [...this.lines.slice(-n), ...(mockLines.length ? ['--- mock ---', ...mockLines] : [])].join('\n');
  }

  chat(body, { headers = {}, timeoutMs = 15000, path: p = '/v1/chat/completions' } = {}) {
    const text = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    return request(this.base + p, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer placeholder-not-a-key', ...headers },
      body: text,
      timeoutMs,
    });
  }

  // The admin API, with this stack's token unless told otherwise (token: null sends none).
  admin(method, p, body, { token = this.adminToken, headers = {}, base = this.base } = {}) {
    const h = { ...headers };
    if (token !== null) h.authorization = `Bearer ${token}`;
    if (body !== undefined) h['content-type'] = 'application/json';
    return request(base + p, {
      method,
      headers: h,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
  }

  // Optimizer Protocol v1 on the optimizer port, as another gateway would call it.
  optimizerCall(p, body, { timeoutMs = 15000 } = {}) {
    return request(this.optimizerBase + p, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
      timeoutMs,
    });
  }

  // Start the launcher and wait until the pipeline works end to end.
  async start({ readyTimeoutMs = 60000 } = {}) {
    // Nothing from the caller's own ANYRAY_* settings: each stack is exactly what it says.
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ANYRAY_')));
    const env = {
      ...inherited,
      ANYRAY_DATA_DIR: this.dir,
      ANYRAY_PORT: String(this.port),
      ANYRAY_OPTIMIZER_PORT: String(this.optimizerPort),
      ANYRAY_ADMIN_TOKEN: this.adminToken,
      ANYRAY_HOST: '127.0.0.1',
      ANYRAY_PROVIDER_URL_OPENAI: this.mock.url,
      ANYRAY_PROVIDER_KEY_OPENAI: this.mock.key,
      ANYRAY_HEARTBEAT_MS: '200',
      ANYRAY_STOP_TIMEOUT_MS: '3000',
      ...this.env,
    };
    this.launcher = spawn(bin('deploy/anyray-launch'), [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.seenPids.add(this.launcher.pid);
    this.startWatchdog();
    capture(this.launcher, this.lines, '', this.allLines);
    this.launcher.on('exit', (code, sig) => { this.launcherExit = { code, sig }; });
    const checkLauncher = () => {
      if (this.launcherExit)
        throw Object.assign(new Error(`anyray-launch exited early (${JSON.stringify(this.launcherExit)})`), { fatal: true });
    };
    const deadline = Date.now() + readyTimeoutMs;
    const left = () => Math.max(1000, deadline - Date.now());
    const poll = async (what, fn, intervalMs = 100) => waitFor(what, async () => {
      checkLauncher();
      return fn();
    }, { timeoutMs: left(), intervalMs }).catch((err) => {
      if (this.launcherExit) err.message += ` (anyray-launch exited: ${JSON.stringify(this.launcherExit)})`;
      throw err;
    });
    await poll('GET /healthz to answer 200', async () => {
      const r = await request(`${this.base}/healthz`, { timeoutMs: 2000 });
      return r.status === 200;
    });
    for (const kind of KINDS)
      await poll(`the pid file of ${kind}-0`, () => this.pid(kind) > 0);
    // Workers register with the broker on their own schedule: a chat call that went through
    // the optimizer (not failed open) and the provider, and whose spend row was written,
    // proves they all have.
    await poll('a warm-up chat call through every stage, with its spend row', async () => {
      const r = await this.chat({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'warm up' }] },
        { timeoutMs: 5000 });
      if (r.status !== 200 || !r.json?.choices?.[0]?.message?.content) return false;
      const rid = r.headers['x-anyray-request-id'];
      const row = await waitFor('the warm-up spend row', () => this.spendRows(`request_id = '${rid}'`)[0],
        { timeoutMs: 5000, intervalMs: 50 });
      return row.optimized === 1;
    }, 200);
    await this.mock.clear();
    return this;
  }

  // If this test process dies without cleaning up (SIGKILL from a ctest timeout), a detached
  // shell kills what it started and removes the data dir.
  startWatchdog() {
    const script = `
      while kill -0 ${process.pid} 2>/dev/null; do sleep 0.5; done
      for f in "$0"/pids/*.pid; do [ -f "$f" ] && p=$(cat "$f") && kill -CONT "$p" && kill -KILL "$p"; done
      kill -CONT ${this.launcher.pid}; kill -KILL ${this.launcher.pid} ${this.mock.proc.pid}
      [ -z "$1" ] && rm -rf "$0"` ;
    this.watchdog = spawn('sh', ['-c', script, this.dir, process.env.AR_KEEP_DATA_DIR || ''],
      { detached: true, stdio: 'ignore' });
    this.watchdog.unref();
  }

  // SIGTERM the launcher (SIGKILL after 10 s), then wait for every process this stack has seen
  // to go, SIGKILLing what is left after 3 s. strict: throw if any survives 6 s.
  async stopProcesses({ strict }) {
    for (const kind of ['anyray-launch', ...KINDS]) this.pid(kind);
    // Stopped processes act on SIGTERM only once continued.
    for (const pid of this.seenPids) if (isAnyray(pid)) signal(pid, 'SIGCONT');
    if (this.launcher && !this.launcherExit) {
      signal(this.launcher.pid, 'SIGTERM');
      const t = Date.now();
      while (!this.launcherExit && Date.now() - t < 10000) await sleep(25);
      if (!this.launcherExit) signal(this.launcher.pid, 'SIGKILL');
    }
    const t = Date.now();
    for (;;) {
      const left = [...this.seenPids].filter(isAnyray);
      if (!left.length) return;
      if (Date.now() - t > 3000) {
        for (const pid of left) signal(pid, 'SIGKILL');
        if (Date.now() - t > 6000) {
          if (strict) throw new Error(`processes still alive after the stop: ${left.join(' ')}`);
          return;
        }
      }
      await sleep(25);
    }
  }

  async stop() {
    if (this.stopped) return;
    this.stopped = true;
    live.delete(this);
    await this.stopProcesses({ strict: false });
    if (this.mock) await this.mock.stop();
    if (this.watchdog) signal(this.watchdog.pid, 'SIGKILL');
    if (!process.env.AR_KEEP_DATA_DIR) fs.rmSync(this.dir, { recursive: true, force: true });
    await sleep(50); // the last lines of output
    if (process.env.AR_DUMP_LOGS) process.stderr.write(`--- stack log (${this.dir}) ---\n${this.logTail(LOG_LIMIT)}\n`);
    // Under ASan+UBSan, a report from any process (also at exit) is a failure of the file.
    const reports = [...this.lines, ...(this.mock ? this.mock.lines : [])]
      .filter((l) => /ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|SUMMARY: \w+Sanitizer/.test(l));
    if (reports.length)
      throw new Error(`sanitizer reports in the stack's output:\n${reports.slice(0, 20).join('\n')}\n` +
                      `--- log tail ---\n${this.logTail(150)}`);
  }

  // Synchronous last resort for the exit hook.
  killAllNow() {
    for (const kind of ['anyray-launch', ...KINDS]) this.pid(kind);
    for (const pid of this.seenPids) if (isAnyray(pid)) { signal(pid, 'SIGCONT'); signal(pid, 'SIGKILL'); }
    if (this.mock && !this.mock.exited()) signal(this.mock.proc.pid, 'SIGKILL');
    if (this.watchdog) signal(this.watchdog.pid, 'SIGKILL');
    if (!process.env.AR_KEEP_DATA_DIR) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

process.on('exit', () => {
  for (const stack of live) stack.killAllNow();
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    for (const stack of live) stack.killAllNow();
    process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
  });
}

// Start the mock and a whole stack. env overrides the launcher's environment.
export async function startStack({ env = {}, mockArgs = [], readyTimeoutMs = 60000, keepAllLines = false } = {}) {
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    const mock = await startMock({ args: mockArgs });
    // Short path: the broker's ipc socket lives in here (sun_path is ~108 bytes).
    const dir = fs.mkdtempSync('/tmp/ar-');
    const port = await freePort();
    let optimizerPort = await freePort();
    while (optimizerPort === port) optimizerPort = await freePort();
    const stack = new Stack(dir, mock, port, optimizerPort, env);
    if (keepAllLines) stack.allLines = [];
    live.add(stack);
    try {
      return await stack.start({ readyTimeoutMs });
    } catch (err) {
      lastErr = err;
      err.message += `\n--- stack log ---\n${stack.logTail(120)}`;
      await stack.stop();
      // Another process took the port between our probe and the launcher's: try again.
      if (!/already taken/.test(stack.log())) throw err;
    }
  }
  throw lastErr;
}

// Wrap a test body so that a failure carries the tail of the stack's output.
export function logged(getStack, fn) {
  return async (t) => {
    try {
      await fn(t);
    } catch (err) {
      const stack = getStack();
      if (stack && err && typeof err === 'object') {
        try {
          const tail = `\n--- stack log tail ---\n${stack.logTail(80)}`;
          err.message += tail;
          if (typeof err.stack === 'string') err.stack += tail;
        } catch {}
      }
      throw err;
    }
  };
}

export const randomMarker = (prefix = 'zq') => `${prefix}${randomBytes(6).toString('hex')}`;
