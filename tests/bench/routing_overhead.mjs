#!/usr/bin/env node
// tests/bench/routing_overhead.mjs: what does a routing config cost a call? (issue 6)
//
//   node tests/bench/routing_overhead.mjs [--n 300]
//
// One stack with the provider mock as its OpenAI upstream and one routing config whose
// conditional root sends each case (x-anyray-metadata {"case": ...}) to its own subtree:
//   single    one target
//   fallback3 a fallback of three targets; the first answers
//   lb        a loadbalance of two targets
//   hop       a fallback whose first target answers 500: one extra upstream round trip
// plus DIRECT calls to the mock (no gateway). Rounds are interleaved (one call of each case
// per round, sequential, one keep-alive connection each), so machine noise hits every case
// alike. Prints p50/p90 per case, and each case's p50 as a ratio of `single`'s measured in the
// same run. Binaries from AR_BUILD_DIR (default /work/main/build). Exit 0 whatever the numbers.

import http from 'node:http';
import { startStack } from '../integration/stack.mjs';
import { startProviderMock } from '../mock/providers/start.mjs';
import { randomBytes } from 'node:crypto';

let n = 300;
for (let i = 2; i < process.argv.length; i++)
  if (process.argv[i] === '--n') n = Math.max(10, Number(process.argv[++i]) || 300);

const key = `sk-bench-${randomBytes(12).toString('hex')}`;
const mock = await startProviderMock({ openaiKey: key });
const stack = await startStack({
  env: { ANYRAY_PROVIDER_URL_OPENAI: `${mock.url}/v1`, ANYRAY_PROVIDER_KEY_OPENAI: key },
});

const leaf = (name, extra = {}) => ({ name, provider: 'openai', override_params: { model: name }, ...extra });
const when = (c, then) => ({ query: { 'metadata.case': c }, then });
const config = {
  strategy: {
    mode: 'conditional',
    conditions: [when('single', 's'), when('fallback3', 'f3'), when('lb', 'lb'), when('hop', 'hop')],
  },
  targets: [
    { name: 's', strategy: { mode: 'single' }, targets: [leaf('single-a')] },
    { name: 'f3', strategy: { mode: 'fallback' }, targets: [leaf('f3-a'), leaf('f3-b'), leaf('f3-c')] },
    { name: 'lb', strategy: { mode: 'loadbalance' }, targets: [leaf('lb-a', { weight: 1 }), leaf('lb-b', { weight: 1 })] },
    { name: 'hop', strategy: { mode: 'fallback' }, targets: [leaf('hop-500'), leaf('hop-good')] },
  ],
};

const agents = new Map();
function post(base, path, body, headers) {
  const url = new URL(base + path);
  if (!agents.has(base + JSON.stringify(headers))) agents.set(base + JSON.stringify(headers), new http.Agent({ keepAlive: true, maxSockets: 1 }));
  const agent = agents.get(base + JSON.stringify(headers));
  const data = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': data.length, ...headers } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: Number(process.hrtime.bigint() - t0) / 1e6, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

try {
  const put = await stack.admin('PUT', '/admin/routing-config', config);
  if (put.status !== 200) throw new Error(`PUT routing-config: ${put.status} ${put.text}`);
  await mock.faults([{ model: 'hop-500', status: 500 }]);
  const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'How far is the moon?' }] };
  const cases = ['single', 'fallback3', 'lb', 'hop'];
  const call = (c) => post(stack.base, '/v1/chat/completions', body,
    { authorization: 'Bearer placeholder', 'x-anyray-metadata': JSON.stringify({ case: c }) });
  // Wait until the routers have the config, then warm every path.
  for (let i = 0; i < 100; i++) {
    const r = await call('hop');
    if (r.headers['x-anyray-target'] === 'hop-good') break;
    await new Promise((ok) => setTimeout(ok, 50));
  }
  const times = Object.fromEntries([...cases, 'direct'].map((c) => [c, []]));
  for (let round = -10; round < n; round++) {
    for (const c of cases) {
      const r = await call(c);
      if (r.status !== 200) throw new Error(`${c}: status ${r.status}`);
      if (round >= 0) times[c].push(r.ms);
    }
    const d = await post(mock.url, '/v1/chat/completions', body, { authorization: `Bearer ${key}` });
    if (round >= 0) times.direct.push(d.ms);
  }
  const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
  const base = pct(times.single, 0.5);
  for (const c of ['direct', ...cases]) {
    const p50 = pct(times[c], 0.5), p90 = pct(times[c], 0.9);
    process.stdout.write(`routing case=${c} n=${times[c].length} p50_ms=${p50.toFixed(3)} p90_ms=${p90.toFixed(3)} ` +
      `p50_vs_single=${(p50 / base).toFixed(3)}\n`);
  }
} finally {
  await stack.stop();
  await mock.stop();
}
