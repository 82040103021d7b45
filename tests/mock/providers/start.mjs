// Start the provider mock as a separate process, for integration tests:
//
//   const mock = await startProviderMock(config);
//   mock.url            http://127.0.0.1:<port>
//   await mock.requests()   what it received (see README.md)
//   await mock.faults([{ model: 'm-500', status: 500 }])   fault rules by model (faults.mjs)
//   await mock.reset(); await mock.stop();

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SERVER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'server.mjs');

export async function startProviderMock(config, { timeoutMs = 15000 } = {}) {
  // The config holds keys: a private directory, removed on stop
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ar-provider-mock-'));
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
  // stdin stays piped so the mock exits with us, even if stop() never runs
  const proc = spawn(process.execPath, [SERVER, '--port', '0', '--config', file, '--exit-with-stdin'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const output = [];
  proc.stderr.on('data', (d) => output.push(d.toString()));
  let exited = null;
  const port = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`provider mock did not start in ${timeoutMs} ms: ${output.join('')}`)), timeoutMs);
    proc.stdout.on('data', (d) => {
      out += d.toString();
      const m = /LISTENING (\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    proc.on('exit', (code, signal) => {
      exited = { code, signal };
      clearTimeout(timer);
      reject(new Error(`provider mock exited (${code ?? signal}): ${output.join('')}`));
    });
  });
  const url = `http://127.0.0.1:${port}`;
  const call = async (method, route, body) => {
    const init = body === undefined ? { method } : { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
    const r = await fetch(`${url}${route}`, init);
    if (r.status !== 200) throw new Error(`${method} ${route}: ${r.status} ${await r.text()}`);
    return r.json();
  };
  return {
    port, url, proc,
    log: () => output.join(''),
    requests: () => call('GET', '/__mock/requests'),
    reset: () => call('POST', '/__mock/reset'),
    // Replace the fault rules (reset() clears them); resolves what GET /__mock/faults shows
    faults: (rules) => call('POST', '/__mock/faults', { rules }),
    faultRules: () => call('GET', '/__mock/faults'),
    // Rotate the keys the mock accepts: {openaiKey, anthropicKey, azureKey}
    rotateKeys: (keys) => call('POST', '/__mock/keys', keys),
    // Clear the request log only (the fault rules stay)
    clearRequests: () => call('DELETE', '/__mock/requests'),
    expireTokens: () => call('POST', '/__mock/expire-tokens'),
    async stop() {
      if (!exited) {
        const gone = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await gone;
        clearTimeout(t);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
