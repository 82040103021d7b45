// Routing config and server-held provider keys (issue 6), end to end with real processes:
// PUT /admin/routing-config (single / loadbalance / fallback / conditional, per-target retries,
// backoff, retry-after and timeouts) and PUT /admin/provider-keys change what the gateway does,
// on every replica within a second, and survive a restart; bad input is refused with the field
// path and changes nothing; the admin token is required; no key is ever written anywhere.
//
// The upstream is the provider mock (tests/mock/providers): its fault rules by model fail one
// target of a plan and not the next (the gateway sends every target the same body), and its
// request log (with times) shows what was tried, in which order, and when.
//
//   AR_BUILD_DIR=build node --test --test-reporter=spec tests/integration/routing.test.mjs
//   AR_ROUTING_LB_CALLS=3000 ...    fewer loadbalance calls (e.g. under ASan; default 10000)
//
// Never print a provider key: checks on key bytes are assert.ok(boolean, words), never equal().
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import OpenAI from 'openai';
import { startStack, logged, waitFor, freePort, sleep, assertOpenAIError, sseData, request } from './stack.mjs';
import { startProviderMock } from '../mock/providers/start.mjs';

const hex = (n) => randomBytes(n).toString('hex');
// The key the environment gives (ANYRAY_PROVIDER_KEY_OPENAI) and the one set at runtime.
const OLD_KEY = `sk-envold-${hex(16)}`;
const NEW_KEY = `sk-runtime-${hex(16)}`;
const ANTHROPIC_KEY = `sk-ant-${hex(16)}`;
const fingerprint = (key) => `sha256:${createHash('sha256').update(key).digest('hex').slice(0, 8)}`;
const LB_CALLS = Number(process.env.AR_ROUTING_LB_CALLS || 10000);

let mock;
let stack;
const it = (name, fn) => test(name, logged(() => stack, fn));

// Everything the API answered, headers and body, for the key grep in the end.
const transcript = [];
function keep(res) {
  transcript.push(Buffer.from(JSON.stringify(res.headers)), res.body ?? Buffer.alloc(0));
  return res;
}

before(async () => {
  // The mock accepts the environment's key first: the stack's warm-up call must get through.
  mock = await startProviderMock({ openaiKey: OLD_KEY, anthropicKey: ANTHROPIC_KEY });
  stack = await startStack({
    keepAllLines: true,
    env: {
      ANYRAY_PROVIDER_URL_OPENAI: `${mock.url}/v1`, ANYRAY_PROVIDER_KEY_OPENAI: OLD_KEY,
      ANYRAY_PROVIDER_URL_ANTHROPIC: `${mock.url}/v1`, ANYRAY_PROVIDER_KEY_ANTHROPIC: ANTHROPIC_KEY,
    },
  });
});

after(async () => {
  await stack?.stop();
  await mock?.stop();
});

// --------------------------------------------------------------------------
// helpers

const ask = (text = 'route me') => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }] });

async function chat(body = ask(), { headers = {}, on = stack, timeoutMs = 20000 } = {}) {
  return keep(await on.chat(body, { headers, timeoutMs }));
}

async function admin(method, p, body, opts = {}, on = stack) {
  return keep(await on.admin(method, p, body, opts));
}

const leaf = (name, extra = {}) => ({ name, provider: 'openai', override_params: { model: name }, ...extra });

async function getConfig(on = stack) {
  const r = await admin('GET', '/admin/routing-config', undefined, {}, on);
  assert.equal(r.status, 200, r.text);
  assert.ok(Number.isInteger(r.json.version), r.text);
  return r.json;
}

// PUT a routing config, check the answer, and wait until a call is answered by one of its
// targets (target names are unique per config, so this is the new config, not the old one).
async function useConfig(config, { on = stack, probeHeaders = {}, wrap = false } = {}) {
  const before = await getConfig(on);
  const names = new Set(names_of(config));
  const reused = names_of(before.config ?? {}).filter((n) => names.has(n));
  if (reused.length) throw new Error(`test bug: target names ${reused} are in the running config too, the probe cannot tell`);
  const r = await admin('PUT', '/admin/routing-config', wrap ? { config } : config, {}, on);
  assert.equal(r.status, 200, `PUT /admin/routing-config: ${r.text}`);
  assert.equal(r.json.version, before.version + 1, `the version goes up by one: ${r.text}`);
  assert.ok(r.json.config && typeof r.json.config === 'object', r.text);
  if (on === stack) await mock.reset(); // no fault rule may answer the probe
  await waitFor('a call answered by a target of the new routing config', async () => {
    const c = await chat(ask('probe'), { headers: probeHeaders, on });
    return c.status === 200 && names.has(c.headers['x-anyray-target']);
  }, { timeoutMs: 5000, intervalMs: 50 });
  if (on === stack) await mock.reset();
  return r.json;
}

function names_of(node) {
  const out = [];
  for (const t of node.targets ?? []) {
    if (t.targets) out.push(...names_of(t));
    else if (t.name) out.push(t.name);
  }
  return out;
}

const seenModels = async (m = mock) => (await m.requests()).filter((q) => q.family === 'openai').map((q) => q.model);

// A keep-alive client for many calls (the stack's request() opens one connection per call).
function fastChat(agent, body) {
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(`${stack.base}/v1/chat/completions`, {
      method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text),
                 authorization: 'Bearer placeholder-not-a-key' },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(30000, () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', reject);
    req.end(text);
  });
}

// n calls at a time on fresh connections (so SO_REUSEPORT spreads them over the edges); each
// result carries when it was sent (ms, performance.now()).
async function burst(n, body, { on = stack, headers = {} } = {}) {
  return Promise.all(Array.from({ length: n }, async () => {
    const sentAt = performance.now();
    try {
      const r = await chat(body, { on, headers, timeoutMs: 10000 });
      return { sentAt, status: r.status, target: r.headers['x-anyray-target'] ?? null, res: r };
    } catch (err) {
      return { sentAt, status: 0, target: null, error: err.message };
    }
  }));
}

// Bursts of 10 until `want` calls in a row (by send time) satisfy ok(); returns the send time of
// the first call of that run, or null if it never came within timeoutMs.
async function runStart(ok, body, { on = stack, want = 20, timeoutMs = 5000 } = {}) {
  const start = performance.now();
  let streak = 0;
  let streakStart = null;
  const history = [];
  while (performance.now() - start < timeoutMs) {
    const results = (await burst(10, body, { on })).sort((a, b) => a.sentAt - b.sentAt);
    for (const r of results) {
      history.push(`${(r.sentAt - start).toFixed(0)}ms:${r.status}/${r.target}`);
      if (ok(r)) {
        if (streak === 0) streakStart = r.sentAt;
        streak++;
      } else {
        streak = 0;
        streakStart = null;
      }
    }
    if (streak >= want) return { streakStart, history };
  }
  return { streakStart: null, history };
}

// Every regular file under dir, recursively, as [path, Buffer].
function filesUnder(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(p));
    else if (entry.isFile()) {
      try { out.push([p, fs.readFileSync(p)]); } catch {} // gone meanwhile (a -journal)
    }
  }
  return out;
}

// Where in the stack's writes any of the secrets occurs: a list of places, never the secret.
function leaks(secrets, on = stack, { responses = transcript } = {}) {
  const needles = [];
  for (const [what, s] of Object.entries(secrets)) {
    needles.push([what, Buffer.from(s)]);
    needles.push([`${what} (base64)`, Buffer.from(Buffer.from(s).toString('base64'))]);
  }
  const places = [];
  const look = (where, buf) => {
    for (const [what, n] of needles) if (buf.indexOf(n) >= 0) places.push(`${what} in ${where}`);
  };
  // The grep itself must work: a canary in a nested file, amid binary bytes, is found.
  const canary = `canary-${hex(12)}`;
  const nest = fs.mkdtempSync(path.join(on.dir, 'canary-'));
  fs.writeFileSync(path.join(nest, 'c.bin'), Buffer.concat([randomBytes(4096), Buffer.from(canary), Buffer.from([0, 255, 0])]));
  let found = false;
  try {
    for (const [, buf] of filesUnder(on.dir)) if (buf.indexOf(Buffer.from(canary)) >= 0) found = true;
  } finally {
    fs.rmSync(nest, { recursive: true, force: true });
  }
  assert.ok(found, 'the data dir grep finds a canary written into it');
  for (const [p, buf] of filesUnder(on.dir)) look(p, buf);
  look('the stack\'s output', Buffer.from(on.fullLog()));
  look('an API response', Buffer.concat(responses));
  // All of them (stack.sql's 1 MB output buffer is too small after the loadbalance run).
  look('the spend rows', execFileSync('sqlite3', ['-json', '-cmd', '.timeout 5000', on.db, 'select * from spend'],
    { maxBuffer: 1 << 30, timeout: 60000 }));
  return places;
}

async function auditEntries(on = stack) {
  const r = await admin('GET', '/admin/audit?limit=1000', undefined, {}, on);
  assert.equal(r.status, 200, r.text);
  assert.ok(Array.isArray(r.json.entries), r.text);
  return r.json.entries;
}

async function providerKeys(on = stack) {
  const r = await admin('GET', '/admin/provider-keys', undefined, {}, on);
  assert.equal(r.status, 200, r.text);
  assert.ok(Number.isInteger(r.json.version) && Array.isArray(r.json.providers), r.text);
  return r.json;
}

const openaiKeyRow = (doc) => doc.providers.find((p) => p.provider === 'openai');

// The pid of the process (of pids) that owns the loopback TCP connection from localPort to
// remotePort, through /proc: the socket's inode in /proc/net/tcp, then the fd that holds it.
function connectionOwner(pids, localPort, remotePort) {
  const inodes = new Set();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = fs.readFileSync(file, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const lp = parseInt(f[1].split(':').pop(), 16);
      const rp = parseInt(f[2].split(':').pop(), 16);
      if (lp === localPort && rp === remotePort) inodes.add(f[9]);
    }
  }
  for (const pid of pids) {
    let fds = [];
    try { fds = fs.readdirSync(`/proc/${pid}/fd`); } catch { continue; }
    for (const fd of fds) {
      let link = '';
      try { link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m && inodes.has(m[1])) return pid;
    }
  }
  return 0;
}

// --------------------------------------------------------------------------
// a. loadbalance

it('starts with no routing config; GET says so', async () => {
  const r = await getConfig();
  assert.equal(r.config, null, 'no routing config before the first PUT');
  // And the environment's target answers.
  const c = await chat();
  assert.equal(c.status, 200, c.text);
  assert.equal(c.headers['x-anyray-provider'], 'openai');
});

it(`loadbalance 0.7/0.3: ${LB_CALLS} calls split within 2 points of the weights`, async (t) => {
  await useConfig({
    strategy: { mode: 'loadbalance' },
    targets: [leaf('lb-a', { weight: 0.7 }), leaf('lb-b', { weight: 0.3 })],
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const byHeader = { 'lb-a': 0, 'lb-b': 0 };
  const statuses = {};
  let next = 0;
  const startMs = Date.now(); // the spend rows of this run (not the probe's)
  const start = performance.now();
  try {
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < LB_CALLS) {
        next++;
        const r = await fastChat(agent, ask('balance me'));
        keep(r);
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        const target = r.headers['x-anyray-target'];
        if (target in byHeader) byHeader[target]++;
      }
    }));
  } finally {
    agent.destroy();
  }
  const secs = (performance.now() - start) / 1000;
  assert.deepEqual(statuses, { 200: LB_CALLS }, 'every call answered 200');
  const models = await seenModels();
  const seen = { 'lb-a': models.filter((m) => m === 'lb-a').length, 'lb-b': models.filter((m) => m === 'lb-b').length };
  assert.equal(models.length, LB_CALLS, 'the mock saw one call per request, no more');
  assert.equal(seen['lb-a'] + seen['lb-b'], LB_CALLS, `only the two targets' models: ${JSON.stringify(seen)}`);
  assert.deepEqual(byHeader, seen, 'x-anyray-target names the target the mock saw');
  // 2 points at 10000 calls is 4.4 standard deviations; fewer calls widen it to 4.
  const tol = (w) => Math.max(0.02, 4 * Math.sqrt((w * (1 - w)) / LB_CALLS));
  const share = { 'lb-a': seen['lb-a'] / LB_CALLS, 'lb-b': seen['lb-b'] / LB_CALLS };
  t.diagnostic(`shares lb-a ${share['lb-a'].toFixed(4)} lb-b ${share['lb-b'].toFixed(4)}; ` +
               `${LB_CALLS} calls in ${secs.toFixed(1)} s = ${(LB_CALLS / secs).toFixed(0)} calls/s`);
  assert.ok(Math.abs(share['lb-a'] - 0.7) <= tol(0.7), `lb-a share ${share['lb-a']} vs 0.7 ± ${tol(0.7)}`);
  assert.ok(Math.abs(share['lb-b'] - 0.3) <= tol(0.3), `lb-b share ${share['lb-b']} vs 0.3 ± ${tol(0.3)}`);
  // The spend rows name the model actually called (written in batches: wait for them all).
  const count = () => Object.fromEntries(stack.sql(
    `select model, count(*) as n from spend where model in ('lb-a','lb-b') and provider = 'openai' and ts_ms >= ${startMs} group by model`)
    .map((r) => [r.model, r.n]));
  const rows = await waitFor(`${LB_CALLS} spend rows`, () => {
    const c = count();
    return (c['lb-a'] ?? 0) + (c['lb-b'] ?? 0) >= LB_CALLS ? c : null;
  }, { timeoutMs: 20000, intervalMs: 250 }).catch(() => count());
  assert.deepEqual({ 'lb-a': rows['lb-a'] ?? 0, 'lb-b': rows['lb-b'] ?? 0 }, seen, 'one spend row per call, with the override model and provider');
});

// --------------------------------------------------------------------------
// b. fallback

const FAULTS = [
  { model: 'fb-500', status: 500 },
  { model: 'fb-429', status: 429 },
  { model: 'fb-hang', hang: true },
];

it('fallback: 500, 429, connection refused and timeout are skipped in order; the good target answers', async () => {
  const closed = await freePort(); // nothing listens there
  await useConfig({
    strategy: { mode: 'fallback' },
    retry: { attempts: 0 },
    targets: [
      leaf('fb-500'), leaf('fb-429'),
      leaf('fb-refused', { base_url: `http://127.0.0.1:${closed}/v1` }),
      leaf('fb-hang', { request_timeout: 500 }),
      leaf('fb-good'),
    ],
  });
  await mock.faults(FAULTS);
  const t0 = Date.now();
  const r = await chat(ask('fall back please'));
  const took = Date.now() - t0;
  assert.equal(r.status, 200, r.text);
  assert.match(r.json.choices[0].message.content, /Mock reply to: fall back please/);
  assert.equal(r.headers['x-anyray-target'], 'fb-good');
  assert.equal(r.headers['x-anyray-provider'], 'openai');
  assert.equal(r.headers['x-anyray-attempts'], '5', 'five upstream tries');
  const log = (await mock.requests()).filter((q) => q.family === 'openai');
  assert.deepEqual(log.map((q) => q.model), ['fb-500', 'fb-429', 'fb-hang', 'fb-good'], 'tried in order (refused never arrives)');
  const waited = log[3].time - log[2].time;
  assert.ok(waited >= 450, `the hung target was given its 500 ms (${waited} ms)`);
  assert.ok(took < 5000, `the timeout was 500 ms, not a default (${took} ms in all)`);
  const row = await stack.spendRow(r.headers['x-anyray-request-id']);
  assert.equal(row.provider, 'openai');
  assert.equal(row.model, 'fb-good', 'the spend row has the model that answered');
  assert.equal(row.status, 200);
});

it('fallback: each failure kind alone before a good target', async () => {
  const closed = await freePort();
  const kinds = [
    ['fb-500', {}, ['fb-500']],
    ['fb-429', {}, ['fb-429']],
    ['fb-refused', { base_url: `http://127.0.0.1:${closed}/v1` }, []],
    ['fb-hang', { request_timeout: 500 }, ['fb-hang']],
  ];
  for (const [name, extra, tried] of kinds) {
    const good = `fb-after-${name.slice(3)}`;
    const bad = leaf(`${name}-alone`, { override_params: { model: name }, ...extra });
    await useConfig({ strategy: { mode: 'fallback' }, retry: { attempts: 0 }, targets: [bad, leaf(good)] });
    await mock.faults(FAULTS);
    const r = await chat();
    assert.equal(r.status, 200, `${name}: ${r.text}`);
    assert.equal(r.headers['x-anyray-target'], good, name);
    assert.equal(r.headers['x-anyray-attempts'], '2', name);
    assert.deepEqual(await seenModels(), [...tried, good], name);
  }
});

it('fallback advances only on its on_status_codes; single returns the 500 in the caller\'s shape', async () => {
  await useConfig({ strategy: { mode: 'fallback', on_status_codes: [500] }, retry: { attempts: 0 },
                    targets: [leaf('oc-429', { override_params: { model: 'fb-429' } }), leaf('oc-good')] });
  await mock.faults(FAULTS);
  const r = await chat();
  assertOpenAIError(assert, r, 429, 'a 429 is not in on_status_codes [500]');
  assert.deepEqual(await seenModels(), ['fb-429'], 'no fallback');

  await useConfig({ strategy: { mode: 'single' }, retry: { attempts: 0 }, targets: [leaf('single-500', { override_params: { model: 'fb-500' } })] });
  await mock.faults(FAULTS);
  const s = await chat();
  const e = assertOpenAIError(assert, s, 500, 'single target, no fallback');
  assert.equal(e.type, 'server_error');
  assert.equal(s.headers['x-anyray-attempts'], '1');
  assert.deepEqual(await seenModels(), ['fb-500']);
});

// --------------------------------------------------------------------------
// c. conditional

it('conditional: the team in x-anyray-metadata picks the target, else the default', async () => {
  await useConfig({
    strategy: {
      mode: 'conditional',
      conditions: [
        { query: { 'metadata.team': { $eq: 'platform' } }, then: 'cond-a' },
        { query: { 'metadata.team': { $eq: 'research' } }, then: 'cond-b' },
        { query: { 'metadata.team': { $in: ['ml', 'data'] } }, then: 'cond-b' },
      ],
      default: 'cond-c',
    },
    targets: [leaf('cond-a'), leaf('cond-b'), leaf('cond-c')],
  }, { wrap: true }); // {"config": {...}} is accepted too
  const cases = [
    [{ team: 'platform' }, 'cond-a'],
    [{ team: 'research' }, 'cond-b'],
    [{ team: 'data', user: 'u1' }, 'cond-b'],
    [{ team: 'sales' }, 'cond-c'],
    [null, 'cond-c'],
  ];
  for (const [meta, want] of cases) {
    await mock.reset();
    const headers = meta ? { 'x-anyray-metadata': JSON.stringify(meta) } : {};
    const r = await chat(ask(), { headers });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-anyray-target'], want, JSON.stringify(meta));
    assert.deepEqual(await seenModels(), [want], JSON.stringify(meta));
  }
});

it('x-anyray-provider keeps only the plan\'s targets of that provider', async () => {
  await useConfig({
    strategy: { mode: 'fallback' },
    targets: [{ name: 'xp-anth', provider: 'anthropic', override_params: { model: 'claude-xp' } }, leaf('xp-oai')],
  });
  const a = await chat(ask('which provider'));
  assert.equal(a.status, 200, a.text);
  assert.equal(a.headers['x-anyray-provider'], 'anthropic');
  assert.equal(a.headers['x-anyray-target'], 'xp-anth');
  await mock.reset();
  const o = await chat(ask('which provider'), { headers: { 'x-anyray-provider': 'openai' } });
  assert.equal(o.status, 200, o.text);
  assert.equal(o.headers['x-anyray-provider'], 'openai');
  assert.equal(o.headers['x-anyray-target'], 'xp-oai');
  assert.equal(o.headers['x-anyray-attempts'], '1');
  assert.deepEqual((await mock.requests()).map((q) => q.model), ['xp-oai'], 'the anthropic target was never tried');
});

// --------------------------------------------------------------------------
// d. retries

it('retries: two 503s then OK, with exponential backoff between the tries', async () => {
  await useConfig({ strategy: { mode: 'single' },
    targets: [leaf('rt-flaky', { override_params: { model: 'flaky' },
      retry: { attempts: 2, backoff_ms: 200, max_backoff_ms: 8000, on_status_codes: [503] } })] });
  await mock.faults([{ model: 'flaky', status: 503, times: 2 }]);
  const r = await chat();
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers['x-anyray-attempts'], '3');
  const log = (await mock.requests()).filter((q) => q.model === 'flaky');
  assert.equal(log.length, 3);
  const gaps = [log[1].time - log[0].time, log[2].time - log[1].time];
  // Jitter draws each wait from [d/2, d]; 5 ms of slack for when the mock stamps arrivals.
  assert.ok(gaps[0] >= 95, `first wait in [100, 200] ms: ${gaps[0]}`);
  assert.ok(gaps[1] >= 195, `second wait in [200, 400] ms: ${gaps[1]}`);
  assert.ok(gaps[0] < 3000 && gaps[1] < 3000, `no wait far beyond the backoff: ${gaps}`);
});

it('retries: a 429 with retry-after 1 waits at least a second before the retry', async () => {
  await useConfig({ strategy: { mode: 'single' },
    targets: [leaf('rt-ra', { override_params: { model: 'ra-429' },
      retry: { attempts: 1, backoff_ms: 10, on_status_codes: [429], use_retry_after_header: true } })] });
  await mock.faults([{ model: 'ra-429', status: 429, retry_after: 1, times: 1 }]);
  const r = await chat();
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers['x-anyray-attempts'], '2');
  const log = (await mock.requests()).filter((q) => q.model === 'ra-429');
  assert.equal(log.length, 2);
  const gap = log[1].time - log[0].time;
  assert.ok(gap >= 995, `waited the upstream's retry-after (1 s), not the 10 ms backoff: ${gap} ms`);
});

it('retries: a retry-after above max_retry_after_ms is returned at once, with its header', async () => {
  await useConfig({ strategy: { mode: 'single' },
    targets: [leaf('rt-long', { override_params: { model: 'ra-long' },
      retry: { attempts: 2, backoff_ms: 10, on_status_codes: [429], use_retry_after_header: true, max_retry_after_ms: 1000 } })] });
  await mock.faults([{ model: 'ra-long', status: 429, retry_after: 5 }]);
  const t0 = Date.now();
  const r = await chat();
  const took = Date.now() - t0;
  assertOpenAIError(assert, r, 429, 'the 429 comes back');
  assert.equal(r.headers['retry-after'], '5', 'the caller learns how long to wait');
  assert.equal(r.headers['x-anyray-attempts'], '1');
  assert.ok(took < 1000, `no waiting for 5 s (${took} ms)`);
  assert.equal((await seenModels()).length, 1, 'no retry on that target');
});

it('retries: when the attempts are spent the last error is returned', async () => {
  await useConfig({ strategy: { mode: 'single' },
    targets: [leaf('rt-exh', { override_params: { model: 'exh' },
      retry: { attempts: 2, backoff_ms: 20, on_status_codes: [502, 503] } })] });
  await mock.faults([{ model: 'exh', status: 503, times: 2 }, { model: 'exh', status: 502 }]);
  const r = await chat();
  const e = assertOpenAIError(assert, r, 502, 'the third (last) try\'s error');
  assert.equal(e.type, 'server_error');
  assert.equal(r.headers['x-anyray-attempts'], '3');
  assert.deepEqual(await seenModels(), ['exh', 'exh', 'exh']);
});

// --------------------------------------------------------------------------
// e. a stream that fails midway: no fallback once bytes went out

it('fallback does not restart a stream that failed midway: it ends with an error event', async () => {
  await useConfig({ strategy: { mode: 'fallback' }, retry: { attempts: 0 }, targets: [leaf('ms-a'), leaf('ms-b')] });
  await mock.faults([{ model: 'ms-a', error_after: 2, chunks: 6 }]);
  const r = await chat({ ...ask('stream and break'), stream: true });
  assert.equal(r.status, 200, r.text);
  const events = sseData(r.text);
  const parsed = events.filter((d) => d !== '[DONE]').map((d) => JSON.parse(d));
  const content = parsed.map((c) => c.choices?.[0]?.delta?.content ?? '').join('');
  assert.equal(content, 'w1 w2 ', 'the two chunks before the failure reached the caller');
  assert.ok(parsed.at(-1).error && typeof parsed.at(-1).error.message === 'string', `an error event last: ${r.text.slice(-300)}`);
  assert.ok(!events.includes('[DONE]'), 'no [DONE] after a failure');
  assert.deepEqual(await seenModels(), ['ms-a'], 'ms-b was not tried');

  await mock.clearRequests();
  const client = new OpenAI({ baseURL: `${stack.base}/v1`, apiKey: 'placeholder-not-a-key', maxRetries: 0, timeout: 20000 });
  const stream = await client.chat.completions.create({ ...ask('sdk stream'), stream: true });
  let text = '';
  await assert.rejects(async () => {
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
  }, OpenAI.APIError, 'the SDK stream raises');
  assert.equal(text, 'w1 w2 ');
  assert.deepEqual(await seenModels(), ['ms-a']);
});

// --------------------------------------------------------------------------
// i. invalid config

it('an invalid routing config: 400 naming the field, nothing changes', async () => {
  const running = await useConfig({ strategy: { mode: 'single' }, targets: [leaf('inv-keep')] });
  const before = await getConfig();
  assert.equal(before.version, running.version);
  const ok = leaf('x');
  const cases = [
    [{ strategy: { mode: 'roundrobin' }, targets: [ok] }, 'strategy.mode'],
    [{ strategy: { mode: 'loadbalance' }, targets: [leaf('w1', { weight: 0.5 }), leaf('w2', { weight: -1 })] }, 'targets[1].weight'],
    [{ strategy: { mode: 'single' }, targets: [ok], surprise: 1 }, 'surprise'],
    [{ strategy: { mode: 'single' }, targets: [{ ...ok, bogus: true }] }, 'targets[0].bogus'],
    [{ strategy: { mode: 'conditional', conditions: [{ query: { 'metadata.team': { $eq: 'a' } }, then: 'nobody' }], default: 'x' }, targets: [ok] },
      'strategy.conditions[0].then'],
    [{ strategy: { mode: 'single' }, targets: [{ ...ok, retry: { attempts: 11 } }] }, 'targets[0].retry.attempts'],
    [{ strategy: { mode: 'single' }, targets: [{ ...ok, request_timeout: 50 }] }, 'targets[0].request_timeout'],
    [{ strategy: { mode: 'single' }, targets: [{ ...ok, provider: 'nope' }] }, 'targets[0].provider'],
    [{ strategy: { mode: 'fallback' }, targets: [ok, { strategy: { mode: 'single' }, targets: [leaf('y', { weight: 'heavy' })] }] },
      'targets[1].targets[0].weight'],
  ];
  for (const [config, param] of cases) {
    const r = await admin('PUT', '/admin/routing-config', config);
    const e = assertOpenAIError(assert, r, 400, param);
    assert.equal(e.type, 'invalid_request_error', r.text);
    assert.equal(e.code, 'invalid_config', r.text);
    assert.equal(e.param, param, r.text);
    assert.ok(e.message.startsWith(`${param}: `), `the message starts with the path: ${e.message}`);
  }
  assertOpenAIError(assert, await admin('PUT', '/admin/routing-config', '{"strategy": {'), 400, 'not JSON');
  const after = await getConfig();
  assert.equal(after.version, before.version, 'no new version');
  assert.deepEqual(after.config, before.config, 'the running config is untouched');
  // And behaviour: for a second (four polls), every call still goes to the running target.
  const until = Date.now() + 1100;
  while (Date.now() < until) {
    const r = await chat();
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-anyray-target'], 'inv-keep');
  }
  // The schema the config is validated against is published in schemas/.
  const schemas = fs.readdirSync(path.resolve(import.meta.dirname, '../../schemas'), { recursive: true })
    .filter((f) => /routing.*\.json$/.test(String(f)));
  assert.ok(schemas.length > 0, 'a routing config JSON schema in schemas/');
  for (const f of schemas) JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, '../../schemas', String(f)), 'utf8'));
});

// --------------------------------------------------------------------------
// h. the admin token

it('a wrong or missing admin token: 401, nothing changes, the attempt is audited without the token', async () => {
  const before = await getConfig();
  const keysBefore = await providerKeys();
  const auditBefore = (await auditEntries()).filter((e) => e.action === 'admin.unauthorized').length;
  const marker = `unauth-${hex(8)}`;
  const strayKey = `sk-unauth-${hex(16)}`;
  const wrongTokens = [`adm-wrong-${hex(16)}`, `${stack.adminToken}x`];
  for (const token of [null, ...wrongTokens]) {
    const r1 = await admin('PUT', '/admin/routing-config', { strategy: { mode: 'single' }, targets: [leaf(marker)] }, { token });
    assert.equal(r1.status, 401, `routing-config, token ${token === null ? 'missing' : 'wrong'}: ${r1.text}`);
    const r2 = await admin('PUT', '/admin/provider-keys', { keys: { openai: strayKey } }, { token });
    assert.equal(r2.status, 401, `provider-keys, token ${token === null ? 'missing' : 'wrong'}: ${r2.status}`);
    for (const r of [r1, r2]) {
      assert.equal(r.json?.error?.type, 'authentication_error');
      assert.ok(!r.text.includes(stack.adminToken) && !r.text.includes(marker), 'the answer echoes nothing');
    }
  }
  const after = await getConfig();
  assert.equal(after.version, before.version);
  assert.deepEqual(after.config, before.config);
  const keysAfter = await providerKeys();
  assert.equal(keysAfter.version, keysBefore.version);
  assert.deepEqual(openaiKeyRow(keysAfter), openaiKeyRow(keysBefore));
  await mock.clearRequests();
  const r = await chat();
  assert.equal(r.status, 200, r.text);
  assert.notEqual(r.headers['x-anyray-target'], marker);
  assert.deepEqual(await seenModels(), [r.headers['x-anyray-target']]);
  // Audited: six attempts, each with method and path, never the token or the body.
  const entries = await auditEntries();
  const denied = entries.filter((e) => e.action === 'admin.unauthorized');
  assert.ok(denied.length - auditBefore >= 6, `six admin.unauthorized entries (${denied.length - auditBefore})`);
  const fresh = denied.slice(0, 6); // newest first
  assert.deepEqual(fresh.map((e) => e.detail?.method), Array(6).fill('PUT'), JSON.stringify(fresh));
  assert.deepEqual(new Set(fresh.map((e) => e.detail?.path)), new Set(['/admin/routing-config', '/admin/provider-keys']));
  // Nothing of it in the logs, the data dir (db and WAL), or any answer.
  const found = leaks({ 'the wrong token': wrongTokens[0], 'the wrong token (the right one plus a byte)': wrongTokens[1],
                        'the PUT body': marker, 'the PUT key': strayKey });
  assert.deepEqual(found, [], 'no token or request body written anywhere');
});

// --------------------------------------------------------------------------
// g. provider keys

it('a provider key set at runtime wins over the environment\'s within a second; no key is written anywhere', async () => {
  await useConfig({ strategy: { mode: 'single' }, targets: [leaf('key-target', { override_params: { model: 'key-model' } })] });
  const before = openaiKeyRow(await providerKeys());
  assert.equal(before.source, 'env');
  assert.equal(before.env_var, 'ANYRAY_PROVIDER_KEY_OPENAI');
  assert.equal(before.env_set, true);
  // The provider rotated the key: the environment's one is refused now.
  await mock.rotateKeys({ openaiKey: NEW_KEY });
  const refused = await chat();
  assert.equal(refused.status, 401, `the old key is refused upstream: ${refused.status}`);

  const bad = await admin('PUT', '/admin/provider-keys', { keys: { nope: 'sk-x' } });
  const e = assertOpenAIError(assert, bad, 400, 'an unknown provider');
  assert.equal(e.param, 'keys.nope');

  const versionBefore = (await providerKeys()).version;
  const put = await admin('PUT', '/admin/provider-keys', { keys: { openai: NEW_KEY } });
  const tPut = performance.now();
  assert.equal(put.status, 200, `PUT /admin/provider-keys: status ${put.status}`);
  assert.ok(!put.text.includes(NEW_KEY) && !put.text.includes(OLD_KEY), 'the answer has no key');
  assert.equal(put.json.version, versionBefore + 1);
  const row = openaiKeyRow(put.json);
  assert.equal(row.source, 'runtime');
  assert.ok(row.fingerprint === fingerprint(NEW_KEY), `the fingerprint is sha256:<8 hex> of the new key (got ${row.fingerprint})`);

  await mock.clearRequests();
  const { streakStart, history } = await runStart((c) => c.status === 200, ask('with the new key'), { want: 10, timeoutMs: 5000 });
  assert.ok(streakStart !== null, `calls never settled on 200: ${history.slice(-20).join(' ')}`);
  const lag = streakStart - tPut;
  assert.ok(lag <= 1000, `the runtime key took effect ${lag.toFixed(0)} ms after the PUT (want <= 1000)`);
  const ok = (await mock.requests()).filter((q) => q.family === 'openai');
  const withNew = ok.filter((q) => q.headers.authorization === `Bearer ${NEW_KEY}`).length;
  assert.ok(withNew >= 10, `the mock saw the runtime key on the calls that passed (${withNew})`);

  const after = openaiKeyRow(await providerKeys());
  assert.equal(after.source, 'runtime');
  assert.ok(after.fingerprint === fingerprint(NEW_KEY), 'GET shows the same fingerprint');
  assert.equal(after.env_set, true, 'the environment\'s key is still there, just not used');
  const audit = await auditEntries();
  const set = audit.find((x) => x.action === 'provider_key.set' && x.target === 'openai');
  assert.ok(set, `a provider_key.set audit entry for openai: ${JSON.stringify(audit.slice(0, 5))}`);
  assert.ok(audit.find((x) => x.action === 'config.put' && x.target === 'routing'), 'config.put entries for routing');

  // Nothing anywhere holds either key: the data dir (db, WAL, logs), every process's output,
  // every answer, the spend rows and the audit log.
  const found = leaks({ 'the runtime key': NEW_KEY, 'the environment\'s key': OLD_KEY },
    stack, { responses: [...transcript, Buffer.from(JSON.stringify(audit))] });
  assert.deepEqual(found, [], 'no provider key written anywhere');
});

// --------------------------------------------------------------------------
// j. restart

it('after a restart of the whole stack the routing config and the runtime key still apply', async () => {
  const config = await useConfig({ strategy: { mode: 'fallback' }, retry: { attempts: 0 },
    targets: [leaf('rs-first', { override_params: { model: 'rs-down' } }), leaf('rs-second')] });
  const keysBefore = await providerKeys();
  // The mock accepts only the runtime key; the environment still has the old one.
  const oldEdge = stack.pid('edge');
  await stack.restart({ readyTimeoutMs: 30000 });
  assert.notEqual(stack.pid('edge'), oldEdge, 'new processes');
  const after = await getConfig();
  assert.equal(after.version, config.version);
  assert.deepEqual(after.config, config.config);
  const keys = openaiKeyRow(await providerKeys());
  assert.equal(keys.source, 'runtime');
  assert.equal(keys.fingerprint, openaiKeyRow(keysBefore).fingerprint);
  await mock.reset();
  await mock.faults([{ model: 'rs-down', status: 503 }]);
  const r = await chat();
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers['x-anyray-target'], 'rs-second', 'the stored fallback config routes');
  assert.equal(r.headers['x-anyray-attempts'], '2');
  const log = (await mock.requests()).filter((q) => q.family === 'openai');
  assert.deepEqual(log.map((q) => q.model), ['rs-down', 'rs-second']);
  assert.ok(log.every((q) => q.headers.authorization === `Bearer ${NEW_KEY}`), 'the stored runtime key is used');
  const found = leaks({ 'the runtime key': NEW_KEY, 'the environment\'s key': OLD_KEY });
  assert.deepEqual(found, [], 'still no key written anywhere after the restart');
});

// --------------------------------------------------------------------------
// f. replicas

test('two routers, two edges, two providers: a routing PUT and a key PUT apply on all within a second', async (t) => {
  const oldKey = `sk-envold-${hex(16)}`;
  const newKey = `sk-runtime-${hex(16)}`;
  const mockF = await startProviderMock({ openaiKey: oldKey });
  let stackF = null;
  const run = logged(() => stackF, async () => {
    stackF = await startStack({ keepAllLines: true, env: {
      ANYRAY_PROVIDER_URL_OPENAI: `${mockF.url}/v1`, ANYRAY_PROVIDER_KEY_OPENAI: oldKey,
      ANYRAY_REPLICAS_ROUTER: '2', ANYRAY_REPLICAS_EDGE: '2', ANYRAY_REPLICAS_PROVIDER: '2',
    } });
    for (const kind of ['router', 'edge', 'provider'])
      await waitFor(`${kind}-1 to run`, () => stackF.isAlive(stackF.pid(kind, 1)));
    const put = async (config) => {
      const r = await admin('PUT', '/admin/routing-config', config, {}, stackF);
      const at = performance.now();
      assert.equal(r.status, 200, r.text);
      return at;
    };
    const body = ask('replicas');
    await put({ strategy: { mode: 'single' }, targets: [leaf('rep-old')] });
    const settled = await runStart((c) => c.status === 200 && c.target === 'rep-old', body, { on: stackF, timeoutMs: 8000 });
    assert.ok(settled.streakStart !== null, `the first config never settled: ${settled.history.slice(-20).join(' ')}`);

    const tPut = await put({ strategy: { mode: 'single' }, targets: [leaf('rep-new')] });
    const changed = await runStart((c) => c.status === 200 && c.target === 'rep-new', body, { on: stackF, timeoutMs: 5000 });
    assert.ok(changed.streakStart !== null, `the new config never held for 20 calls: ${changed.history.slice(-30).join(' ')}`);
    const lag = changed.streakStart - tPut;
    t.diagnostic(`routing config on every replica ${lag.toFixed(0)} ms after the PUT`);
    assert.ok(lag <= 1000, `20 calls in a row followed the new config from ${lag.toFixed(0)} ms after the PUT (want <= 1000): ` +
      changed.history.slice(0, 40).join(' '));

    // Keys: the provider rotates; the environment's key is refused; a runtime key fixes it.
    await mockF.rotateKeys({ openaiKey: newKey });
    await mockF.faults([{ model: 'rep-new', latency: 100 }]); // calls overlap: both providers get some
    const refused = await burst(10, body, { on: stackF });
    assert.deepEqual(refused.map((c) => c.status), Array(10).fill(401), 'the old key is refused');
    const r = await admin('PUT', '/admin/provider-keys', { keys: { openai: newKey } }, {}, stackF);
    const tKey = performance.now();
    assert.equal(r.status, 200, `status ${r.status}`);
    const keyed = await runStart((c) => c.status === 200, body, { on: stackF, timeoutMs: 5000 });
    assert.ok(keyed.streakStart !== null, `calls never settled on 200: ${keyed.history.slice(-30).join(' ')}`);
    const keyLag = keyed.streakStart - tKey;
    t.diagnostic(`provider key on every replica ${keyLag.toFixed(0)} ms after the PUT`);
    assert.ok(keyLag <= 1000, `20 calls in a row passed from ${keyLag.toFixed(0)} ms after the key PUT (want <= 1000)`);

    // Which provider process made each call: while a slow burst is in flight, map each
    // connection the mock sees to the process that holds its socket.
    await mockF.faults([{ model: 'rep-new', latency: 3000 }]);
    await mockF.clearRequests();
    const providers = [stackF.pid('provider', 0), stackF.pid('provider', 1)];
    const slow = burst(12, body, { on: stackF });
    const t0 = performance.now();
    let inFlight = [];
    while (inFlight.length < 12 && performance.now() - t0 < 2500) {
      inFlight = await mockF.requests();
      if (inFlight.length < 12) await sleep(25);
    }
    assert.ok(inFlight.length >= 2, `calls in flight at the mock: ${inFlight.length}`);
    const owners = inFlight.map((q) => connectionOwner(providers, q.remote_port, mockF.port));
    const results = await slow;
    assert.deepEqual(results.map((c) => c.status), Array(12).fill(200), 'the slow burst passed');
    assert.ok(inFlight.every((q) => q.headers.authorization === `Bearer ${newKey}`), 'every call carried the runtime key');
    const served = providers.map((pid) => owners.filter((o) => o === pid).length);
    t.diagnostic(`calls per provider replica: ${served.join(' / ')} (unattributed ${owners.filter((o) => !o).length})`);
    assert.ok(served[0] > 0 && served[1] > 0, `both provider replicas made calls with the runtime key: ${served.join(' / ')}`);
    const found = leaks({ 'the runtime key': newKey, 'the environment\'s key': oldKey }, stackF, { responses: transcript });
    assert.deepEqual(found, [], 'no provider key written anywhere');
  });
  try {
    await run(t);
  } finally {
    await stackF?.stop();
    await mockF.stop();
  }
});
