// A broker killed with -9 is restarted by the launcher; every worker notices (DISCONNECT for
// an unknown worker, or three silent beats), registers again, and traffic flows, optimized.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, logged, waitFor } from './stack.mjs';

let stack;
const it = (name, fn) => test(name, logged(() => stack, fn));

before(async () => {
  stack = await startStack();
});

after(async () => {
  await stack?.stop();
});

const ask = (content) =>
  stack.chat({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] }, { timeoutMs: 5000 });

it('after a broker restart every actor re-registers and calls are optimized again', async () => {
  const old = stack.kill9('broker');
  const started = Date.now();
  await stack.waitNewPid('broker', old);
  // Optimized means the optimizer is back; a row means spend is back; 200 means the
  // router-or-fallback and the provider are back.
  let last = 'no call yet';
  const row = await waitFor('an optimized, recorded call after the restart', async () => {
    const r = await ask('after the broker restart');
    last = `status ${r.status}`;
    if (r.status !== 200) return null;
    const rid = r.headers['x-anyray-request-id'];
    const found = await stack.spendRow(rid, { timeoutMs: 2000 });
    last = `row ${JSON.stringify(found)}`;
    return found.optimized === 1 ? found : null;
  }, { timeoutMs: 20000, intervalMs: 200 }).catch((err) => { throw new Error(`${err.message}; last: ${last}`); });
  assert.equal(row.status, 200);
  const took = Date.now() - started;
  assert.ok(took < 10000, `recovery took ${took} ms`);
  // The broker's own view: every service has a live worker again.
  for (let i = 0; i < 5; i++) assert.equal((await ask(`steady ${i}`)).status, 200);
});
