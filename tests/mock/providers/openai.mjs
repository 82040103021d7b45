// OpenAI beyond the C mock's chat: POST /v1/chat/completions,
// /v1/embeddings, /v1/completions, /v1/responses, Bearer key checked.
// Embeddings and legacy completions live here (Azure reuses them);
// chat in chat.mjs, the Responses API in responses.mjs.

import { createHash } from 'node:crypto';
import { Buffer } from 'node:buffer';
import { plan, parseControl, hold, Pacer, countTokens, failsUpFront } from './control.mjs';
import { openStream, writeEvent, endStream, sendJson, sameSecret, newId, unixNow } from './sse.mjs';
import * as chat from './chat.mjs';
import * as responses from './responses.mjs';

const { oaiError, missing, invalidType } = chat;

export function headers() {
  return { 'x-request-id': newId('req_', 32), 'openai-version': '2020-10-01', 'openai-processing-ms': '1' };
}

// The error the real API gives for a status (same table as mock_error.c)
export function errorFor(status, model = 'gpt-4o-mini') {
  const server = 'server_error';
  const table = {
    400: ['Mock bad request.'],
    401: ['Incorrect API key provided: sk-...mock. You can find your API key at https://platform.openai.com/account/api-keys.', 'invalid_request_error', 'invalid_api_key'],
    403: ['Country, region, or territory not supported', 'permission_error', 'unsupported_country_region_territory'],
    404: [`The model \`${String(model).slice(0, 64)}\` does not exist or you do not have access to it.`, 'invalid_request_error', 'model_not_found'],
    408: ['Request timed out.', server],
    409: ['The request conflicted with another request.'],
    413: ['Request too large.'],
    422: ['Unprocessable entity.'],
    429: [`Rate limit reached for ${String(model).slice(0, 64)} in organization org-mock on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.`, 'requests', 'rate_limit_exceeded'],
    500: ['The server had an error while processing your request. Sorry about that!', server],
    502: ['Bad gateway.', server],
    503: ['The engine is currently overloaded, please try again later.', server],
    504: ['Gateway timeout.', server],
  };
  const [message, type, code] = table[status] ?? [`Mock error with status ${status}.`, status >= 500 ? server : undefined];
  return oaiError(status, message, null, code ?? null, type ?? 'invalid_request_error');
}

// An [mock status=] answer: the table's body, retry-after when asked for
export function switchError(status, ctl, model) {
  const e = errorFor(status, model);
  return { status, body: { error: e.error }, headers: ctl.retryAfter >= 0 ? { 'retry-after': String(ctl.retryAfter) } : {} };
}

function fail(res, e) {
  sendJson(res, e.status, { error: e.error }, headers());
}

function mask(key) {
  return key.length >= 12 ? `${key.slice(0, 3)}...${key.slice(-4)}` : '***';
}

// --- embeddings ----------------------------------------------------------

// Inputs as a list of strings or token arrays, or null if malformed
function embeddingInputs(input) {
  const tokens = (a) => Array.isArray(a) && a.length > 0 && a.every(Number.isInteger);
  if (typeof input === 'string') return input ? [input] : null;
  if (!Array.isArray(input) || !input.length) return null;
  if (tokens(input)) return [input];
  if (input.every((s) => typeof s === 'string' && s)) return input;
  if (input.every(tokens)) return input;
  return null;
}

// A unit vector that depends only on the input: sha256 stream → [-1, 1]
export function vector(input, dims) {
  const out = new Float32Array(dims);
  const seed = createHash('sha256').update(JSON.stringify(input)).digest();
  let block = null;
  for (let i = 0; i < dims; i++) {
    if (i % 16 === 0) block = createHash('sha256').update(seed).update(String(i)).digest();
    out[i] = (block.readUInt16LE((i % 16) * 2) / 65535) * 2 - 1;
  }
  let norm = 0;
  for (const v of out) norm += v * v;
  norm = Math.sqrt(norm);
  for (let i = 0; i < dims; i++) out[i] /= norm;
  return out;
}

export function validateEmbeddings(body, needModel = true) {
  if (needModel && (body.model === undefined || body.model === '')) return oaiError(400, 'you must provide a model parameter', 'model');
  if (body.input === undefined) return missing('input');
  if (!embeddingInputs(body.input)) return oaiError(400, "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.");
  const format = body.encoding_format ?? 'float';
  if (format !== 'float' && format !== 'base64') {
    return oaiError(400, `Invalid value: '${String(format).slice(0, 64)}'. Supported values are: 'float' and 'base64'.`, 'encoding_format', 'invalid_value');
  }
  if (body.dimensions != null) {
    if (!Number.isInteger(body.dimensions)) return invalidType('dimensions', 'an integer', body.dimensions);
    if (/ada-002/.test(body.model ?? '')) return oaiError(400, 'This model does not support specifying dimensions.', 'dimensions');
    if (body.dimensions < 1) return oaiError(400, `Invalid 'dimensions': integer below minimum value. Expected a value >= 1, but got ${body.dimensions} instead.`, 'dimensions', 'integer_below_min_value');
  }
  return null;
}

// opts: {model, headers, errorFor(status, ctl)}. Switches come from the
// first string input; only status, latency, hang and drop apply.
export async function answerEmbeddings(res, body, opts, base) {
  const inputs = embeddingInputs(body.input);
  const { ctl } = parseControl(inputs.find((s) => typeof s === 'string') ?? '', base);
  if (!(await hold(ctl, res))) return;
  if (ctl.status) {
    const e = opts.errorFor(ctl.status, ctl);
    return sendJson(res, e.status, e.body, { ...opts.headers, ...e.headers });
  }
  const dims = body.dimensions ?? (/3-large/.test(opts.model) ? 3072 : 1536);
  const base64 = body.encoding_format === 'base64';
  const data = inputs.map((input, index) => {
    const v = vector(input, dims);
    return { object: 'embedding', index, embedding: base64 ? Buffer.from(v.buffer).toString('base64') : Array.from(v) };
  });
  const tokens = inputs.reduce((n, i) => n + (typeof i === 'string' ? countTokens([i]) : i.length), 0);
  sendJson(res, 200, { object: 'list', data, model: opts.model, usage: { prompt_tokens: tokens, total_tokens: tokens } }, opts.headers, ctl);
}

// --- legacy completions --------------------------------------------------

export function validateCompletions(body, needModel = true) {
  if (needModel && (body.model === undefined || body.model === '')) return oaiError(400, 'you must provide a model parameter', 'model');
  const p = body.prompt;
  if (p != null && typeof p !== 'string' && !Array.isArray(p)) return invalidType('prompt', 'a string or array', p);
  if (body.stream != null && typeof body.stream !== 'boolean') return invalidType('stream', 'a boolean', body.stream);
  if (body.stream_options != null && !body.stream) return oaiError(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.", 'stream_options');
  if (body.max_tokens != null && (!Number.isInteger(body.max_tokens) || body.max_tokens < 0)) return invalidType('max_tokens', 'an integer', body.max_tokens);
  return null;
}

// One choice, from the first prompt; max_tokens defaults to 16 as in the API
export async function answerCompletions(res, body, opts, base) {
  const prompts = typeof body.prompt === 'string' ? [body.prompt] : (body.prompt ?? []).filter((s) => typeof s === 'string');
  const p = plan({ controlText: prompts[0] ?? '', texts: prompts, base, maxTokens: body.max_tokens ?? 16 });
  if (!(await hold(p.ctl, res))) return;
  if (failsUpFront(p.ctl, body.stream === true)) {
    const e = opts.errorFor(p.ctl.status, p.ctl);
    return sendJson(res, e.status, e.body, { ...opts.headers, ...e.headers });
  }
  const id = newId('cmpl-', 29);
  const created = unixNow();
  const finish = p.finish === 'length' ? 'length' : 'stop';
  const usage = { prompt_tokens: p.inputTokens, completion_tokens: p.outputTokens, total_tokens: p.inputTokens + p.outputTokens };
  const head = { id, object: 'text_completion', created, model: opts.model };
  // Azure rates each piece of text; its closing chunk carries no verdicts
  const choice = (text, finishReason, rated = true) => ({ text, index: 0, logprobs: null, finish_reason: finishReason,
    ...(opts.azure ? { content_filter_results: rated ? chat.azureChoiceFilter() : {} } : {}) });
  if (!body.stream) {
    const out = { ...head, choices: [choice(p.text, finish)], usage };
    if (opts.azure) out.prompt_filter_results = chat.azurePromptFilter();
    return sendJson(res, 200, out, opts.headers, p.ctl);
  }
  openStream(res, opts.headers);
  const withUsage = body.stream_options?.include_usage === true;
  const send = (choices, extra = {}) => writeEvent(res, null, { ...head, choices, ...(withUsage ? { usage: null } : {}), ...extra });
  if (opts.azure) await writeEvent(res, null, { choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: chat.azurePromptFilter() });
  const pacer = new Pacer(p.ctl, res, p.pieces.length);
  for (const piece of p.pieces) {
    const step = await pacer.next();
    if (step === 'drop') return;
    if (step === 'error') {
      await writeEvent(res, null, opts.errorFor(p.ctl.status || 500, p.ctl).body);
      return endStream(res);
    }
    await send([choice(piece, null)]);
  }
  await send([choice('', finish, false)]);
  if (withUsage) await send([], { usage });
  await writeEvent(res, null, '[DONE]');
  endStream(res);
}

// --- routes --------------------------------------------------------------

export async function handle(ctx) {
  const { req, res, url, config } = ctx;
  const auth = req.headers.authorization ?? '';
  const m = /^Bearer (.+)$/i.exec(auth);
  if (!m) {
    return fail(res, oaiError(401, "You didn't provide an API key. You need to provide your API key in an Authorization header " +
      "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're " +
      "accessing the API from your browser and are prompted for a username. You can obtain an API key from https://platform.openai.com/account/api-keys."));
  }
  if (!sameSecret(m[1], config.openaiKey)) {
    return fail(res, oaiError(401, `Incorrect API key provided: ${mask(m[1])}. You can find your API key at https://platform.openai.com/account/api-keys.`, null, 'invalid_api_key'));
  }
  const body = ctx.json;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return fail(res, oaiError(400, "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. " +
      'The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)'));
  }
  const opts = { model: body.model, headers: headers(), azure: false, errorFor: (s, ctl) => switchError(s, ctl, body.model) };
  const route = {
    '/v1/chat/completions': [chat.validate, (b) => chat.answer(res, b, opts, ctx.base)],
    '/v1/embeddings': [validateEmbeddings, (b) => answerEmbeddings(res, b, opts, ctx.base)],
    '/v1/completions': [validateCompletions, (b) => answerCompletions(res, b, opts, ctx.base)],
    '/v1/responses': [responses.validate, (b) => responses.answer(res, b, opts, ctx.base)],
  }[url.pathname];
  const bad = route[0](body);
  if (bad) return fail(res, bad);
  return route[1](body);
}
