// The provider mock: one loopback HTTP server answering as Anthropic,
// Azure OpenAI, OpenAI, AWS Bedrock and Google Vertex AI, by path.
//
//   node server.mjs --port 0 --config <json file> [--exit-with-stdin]
//                                     prints "LISTENING <port>" when ready
//   import { createProviderMock } from './server.mjs'  (in-process)
//
// Control routes let a test see what the gateway sent:
//   GET /__mock/requests      every request received, oldest first
//   POST /__mock/reset        forget them and the fault rules (DELETE /__mock/requests: the log only)
//   POST /__mock/expire-tokens  Vertex access tokens issued so far expire now
//   POST /__mock/faults       {"rules":[{"model":"m-500","status":500}, ...]} replaces the
//                             fault rules (faults.mjs); GET /__mock/faults shows them
//   POST /__mock/keys         {"openaiKey"|"anthropicKey"|"azureKey": "..."} rotates the
//                             keys the mock accepts from now on (a provider-side rotation)

import http from 'node:http';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defaults } from './control.mjs';
import { parseRules, modelsOf, take, describeRules } from './faults.mjs';
import { sendJson } from './sse.mjs';
import * as anthropic from './anthropic.mjs';
import * as openai from './openai.mjs';
import * as azure from './azure.mjs';
import * as bedrock from './bedrock.mjs';
import * as vertex from './vertex.mjs';

const HOST = '127.0.0.1'; // loopback only, whatever the caller asks
const MAX_BODY = 32 * 1024 * 1024;

const OPENAI_PATHS = new Set(['/v1/chat/completions', '/v1/embeddings', '/v1/completions', '/v1/responses']);

// The family a path belongs to, with its handler, or null
function route(path) {
  if (path === '/v1/messages' || path === '/v1/messages/count_tokens') return ['anthropic', anthropic.handle];
  if (OPENAI_PATHS.has(path)) return ['openai', openai.handle];
  if (path.startsWith('/openai/')) return ['azure', azure.handle];
  if (path.startsWith('/model/')) return ['bedrock', bedrock.handle];
  if (path === '/token') return ['vertex', vertex.token];
  if (path.startsWith('/v1/projects/')) return ['vertex', vertex.handle];
  return null;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) reject(new Error('body too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

// JSON bodies parsed (undefined if not JSON), the token form as an object
function parse(raw, path) {
  const text = raw.toString('utf8');
  if (path === '/token') return Object.fromEntries(new URLSearchParams(text));
  try { return JSON.parse(text); } catch { return undefined; }
}

// config: see README.md. options.defaults: switch defaults for every request.
export function createProviderMock(config, options = {}) {
  const log = [];
  const state = { tokens: new Map() };
  let rules = []; // fault rules by model (faults.mjs)
  const base = { ...defaults(), ...(options.defaults ?? {}) };
  const sockets = new Set();

  async function control(req, res, url) {
    if (url.pathname === '/__mock/requests' && req.method === 'GET') return sendJson(res, 200, log);
    if (url.pathname === '/__mock/reset' && req.method === 'POST') {
      log.length = 0;
      rules = [];
      return sendJson(res, 200, { cleared: true });
    }
    if (url.pathname === '/__mock/requests' && req.method === 'DELETE') {
      log.length = 0;
      return sendJson(res, 200, { cleared: true });
    }
    if (url.pathname === '/__mock/keys' && req.method === 'POST') {
      let body;
      try { body = JSON.parse((await readBody(req)).toString('utf8')); } catch { body = undefined; }
      const names = ['openaiKey', 'anthropicKey', 'azureKey'];
      const ok = body !== null && typeof body === 'object' && !Array.isArray(body) &&
        Object.entries(body).every(([k, v]) => names.includes(k) && typeof v === 'string' && v);
      if (!ok) return sendJson(res, 400, { error: `expected {${names.join('|')}: "<key>"}` });
      Object.assign(config, body);
      return sendJson(res, 200, { rotated: Object.keys(body) }); // never the keys
    }
    if (url.pathname === '/__mock/faults' && req.method === 'GET') return sendJson(res, 200, { rules: describeRules(rules) });
    if (url.pathname === '/__mock/faults' && req.method === 'POST') {
      let body;
      try { body = JSON.parse((await readBody(req)).toString('utf8')); } catch { body = undefined; }
      const parsed = parseRules(body);
      if (parsed.error) return sendJson(res, 400, { error: parsed.error });
      rules = parsed.rules;
      return sendJson(res, 200, { rules: describeRules(rules) });
    }
    if (url.pathname === '/__mock/expire-tokens' && req.method === 'POST') {
      for (const t of state.tokens.keys()) state.tokens.set(t, 0);
      return sendJson(res, 200, { expired: state.tokens.size });
    }
    return sendJson(res, 404, { error: `no mock control route ${req.method} ${url.pathname}` });
  }

  async function serve(req, res) {
    const url = new URL(req.url, `http://${HOST}`);
    if (url.pathname.startsWith('/__mock/')) return control(req, res, url);
    const found = route(url.pathname);
    const raw = await readBody(req);
    const json = parse(raw, url.pathname);
    const models = found && req.method === 'POST' ? modelsOf(found[0], url.pathname, json) : [];
    const fault = models.length ? take(rules, models) : -1;
    log.push({
      family: found ? found[0] : null, method: req.method, path: url.pathname,
      query: Object.fromEntries(url.searchParams), headers: { ...req.headers },
      body: json === undefined ? raw.toString('utf8') : json, time: Date.now(),
      model: models[0] ?? null, fault: fault >= 0 ? fault : null,
      remote_port: req.socket.remotePort ?? null, // tells the caller's connections apart
    });
    if (!found) return sendJson(res, 404, { error: { message: `Unknown path ${url.pathname}`, type: 'invalid_request_error' } });
    if (req.method !== 'POST') return sendJson(res, 405, { error: { message: `Method ${req.method} not allowed`, type: 'invalid_request_error' } });
    // A matching fault rule sets this request's switch defaults
    const reqBase = fault >= 0 ? { ...base, ...rules[fault].effects } : base;
    return found[1]({ req, res, url, config, state, base: reqBase, raw, json });
  }

  const server = http.createServer({ noDelay: true, keepAlive: true }, (req, res) => {
    // A client that leaves mid-answer is a case under test, not a crash
    req.on('error', () => {});
    res.on('error', () => {});
    serve(req, res).catch((err) => {
      // A mock bug, not a provider answer: say so loudly, never with secrets
      process.stderr.write(`provider mock: ${req.method} ${req.url.split('?')[0]}: ${err.stack ?? err}\n`);
      if (!res.headersSent) sendJson(res, 500, { error: { message: 'provider mock internal error', type: 'mock_error' } });
      else res.destroy();
    });
  });
  server.on('connection', (socket) => {
    socket.setNoDelay(true); // each event leaves as written
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  return {
    server,
    requests: () => log,
    reset: () => { log.length = 0; rules = []; },
    faults(list) {
      const parsed = parseRules({ rules: list });
      if (parsed.error) throw new Error(parsed.error);
      rules = parsed.rules;
    },
    listen(port = 0) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, HOST, () => resolve(server.address().port));
      });
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function arg(name) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

async function main() {
  const file = arg('--config');
  if (!file) {
    process.stderr.write('usage: node server.mjs --port <port|0> --config <json file>\n');
    process.exit(2);
  }
  const mock = createProviderMock(JSON.parse(fs.readFileSync(file, 'utf8')));
  const port = await mock.listen(Number(arg('--port') ?? 0));
  process.stdout.write(`LISTENING ${port}\n`);
  const stop = () => mock.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // start.mjs keeps a pipe on stdin: when the test process dies, so do we
  if (process.argv.includes('--exit-with-stdin')) {
    process.stdin.on('end', stop);
    process.stdin.on('error', stop);
    process.stdin.resume();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) main();
