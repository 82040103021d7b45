// Anthropic Messages API: POST /v1/messages and /v1/messages/count_tokens.
//
// The body checks, the message object and the stream event sequence are
// shared with Bedrock InvokeModel and Vertex rawPredict (bedrock.mjs,
// vertex.mjs), which carry the same Messages body with their own version
// member and framing.

import { plan, hold, Pacer, failsUpFront } from './control.mjs';
import { openStream, writeEvent, endStream, sendJson, sameSecret, newId } from './sse.mjs';

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// Text of a content value: a string, or the text of its text blocks
export function blockText(content) {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.filter((b) => isObject(b) && b.type === 'text' && typeof b.text === 'string')
    .map((b) => b.text).join('\n');
}

// Validate a Messages body the way the API does for the common cases; the
// first problem as Anthropic words it (field path first), or null.
// variant: 'anthropic' (model required) or 'bedrock'/'vertex' (model must
// be absent: the model is in the URL; their version member is checked by
// the caller).
export function validate(body, variant = 'anthropic') {
  if (!isObject(body)) return 'Input should be a valid dictionary or object to extract fields from';
  if (variant === 'anthropic') {
    if (body.model === undefined) return 'model: Field required';
    if (typeof body.model !== 'string' || !body.model) return 'model: Input should be a valid string';
  }
  if (body.max_tokens === undefined) return 'max_tokens: Field required';
  if (!Number.isInteger(body.max_tokens)) return 'max_tokens: Input should be a valid integer';
  if (body.max_tokens < 1) return 'max_tokens: Input should be greater than or equal to 1';
  if (body.messages === undefined) return 'messages: Field required';
  if (!Array.isArray(body.messages)) return 'messages: Input should be a valid list';
  if (body.messages.length === 0) return 'messages: at least one message is required';
  if (body.stream !== undefined && typeof body.stream !== 'boolean') return 'stream: Input should be a valid boolean';
  if (body.system !== undefined && typeof body.system !== 'string' && !Array.isArray(body.system)) {
    return 'system: Input should be a valid string';
  }
  const bad = checkTools(body.tools) ?? checkMessages(body.messages);
  return bad;
}

function checkTools(tools) {
  if (tools === undefined) return null;
  if (!Array.isArray(tools)) return 'tools: Input should be a valid list';
  for (const [i, t] of tools.entries()) {
    if (!isObject(t)) return `tools.${i}: Input should be a valid dictionary`;
    if (t.type !== undefined && t.type !== 'custom') continue; // server tools: not ours to check
    if (typeof t.name !== 'string') return `tools.${i}.custom.name: Field required`;
    if (!/^[a-zA-Z0-9_-]{1,128}$/.test(t.name)) return `tools.${i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'`;
    if (!isObject(t.input_schema)) return `tools.${i}.custom.input_schema: Field required`;
  }
  return null;
}

function checkMessages(messages) {
  let pending = null; // tool_use ids of the previous assistant message
  for (const [i, m] of messages.entries()) {
    if (!isObject(m)) return `messages.${i}: Input should be a valid dictionary`;
    if (m.role !== 'user' && m.role !== 'assistant') return `messages.${i}.role: Input should be 'user' or 'assistant'`;
    if (i === 0 && m.role !== 'user') return 'messages: first message must use the "user" role';
    if (typeof m.content !== 'string' && !Array.isArray(m.content)) return `messages.${i}.content: Input should be a valid list`;
    const blocks = typeof m.content === 'string' ? [] : m.content;
    const uses = [];
    const results = [];
    for (const [j, b] of blocks.entries()) {
      const at = `messages.${i}.content.${j}`;
      if (!isObject(b) || typeof b.type !== 'string') return `${at}: Input tag 'undefined' found using 'type' does not match any of the expected tags`;
      if (b.type === 'text' && typeof b.text !== 'string') return `${at}.text.text: Field required`;
      if (b.type === 'tool_use') {
        if (m.role !== 'assistant') return `${at}: tool_use blocks can only be in assistant messages`;
        if (typeof b.id !== 'string' || typeof b.name !== 'string' || !isObject(b.input)) return `${at}.tool_use: id, name and input are required`;
        uses.push(b.id);
      }
      if (b.type === 'tool_result') {
        if (m.role !== 'user') return `${at}: tool_result blocks can only be in user messages`;
        if (typeof b.tool_use_id !== 'string') return `${at}.tool_result.tool_use_id: Field required`;
        if (!pending || !pending.includes(b.tool_use_id)) {
          return `${at}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${b.tool_use_id}. ` +
            'Each `tool_result` block must have a corresponding `tool_use` block in the previous message.';
        }
        results.push(b.tool_use_id);
      }
    }
    if (pending) {
      const missing = pending.filter((id) => !results.includes(id));
      if (missing.length) {
        return `messages.${i - 1}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(', ')}. ` +
          'Each `tool_use` block must have a corresponding `tool_result` block in the next message.';
      }
    }
    pending = uses.length ? uses : null;
  }
  return null;
}

// The request boiled down for plan() (see control.mjs)
export function conversation(body, base) {
  const texts = [];
  if (typeof body.system === 'string') texts.push(body.system);
  else if (Array.isArray(body.system)) texts.push(blockText(body.system));
  let controlText = '';
  let toolResult = null;
  for (const m of body.messages) {
    const text = blockText(m.content);
    if (text) texts.push(text);
    const results = Array.isArray(m.content) ? m.content.filter((b) => b.type === 'tool_result') : [];
    for (const r of results) texts.push(blockText(r.content));
    if (m.role === 'user' && text) controlText = text;
    toolResult = m.role === 'user' && results.length ? results.map((r) => blockText(r.content)).join('\n') : null;
  }
  const tools = (body.tools ?? []).filter((t) => t.type === undefined || t.type === 'custom')
    .map((t) => ({ name: t.name, props: t.input_schema?.properties }));
  return {
    controlText, toolResult, texts, tools, base,
    toolsOff: body.tool_choice?.type === 'none',
    maxTokens: body.max_tokens,
  };
}

const STOP = { stop: 'end_turn', tool: 'tool_use', length: 'max_tokens' };

function parsedArgs(text) {
  try { return JSON.parse(text); } catch { return {}; } // cut short by max_tokens
}

// The non-stream message. idTag: '' (Anthropic), 'bdrk_' or 'vrtx_'
// (Bedrock and Vertex put their tag in every id).
export function message(p, model, idTag = '', extraUsage = {}) {
  const content = p.kind === 'tool'
    ? [{ type: 'tool_use', id: newId(`toolu_${idTag}01`, 22), name: p.toolName, input: parsedArgs(p.text) }]
    : [{ type: 'text', text: p.text }];
  return {
    id: newId(`msg_${idTag}01`, 22),
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: STOP[p.finish],
    stop_sequence: null,
    usage: {
      input_tokens: p.inputTokens,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      output_tokens: p.outputTokens,
      ...extraUsage,
    },
  };
}

const ERRORS = {
  400: ['invalid_request_error', 'Mock bad request.'],
  401: ['authentication_error', 'invalid x-api-key'],
  403: ['permission_error', 'Your API key does not have permission to use the specified resource.'],
  404: ['not_found_error', 'Not found'],
  413: ['request_too_large', 'Request exceeds the maximum allowed number of bytes.'],
  429: ['rate_limit_error', 'Number of request tokens has exceeded your per-minute rate limit ' +
    '(https://docs.anthropic.com/en/api/rate-limits); see the response headers for current usage. ' +
    'Please reduce the prompt length or the maximum tokens requested, or try again later.'],
  500: ['api_error', 'Internal server error'],
  529: ['overloaded_error', 'Overloaded'],
};

// {type, message} of the error Anthropic gives for a status
export function errorFor(status) {
  if (ERRORS[status]) return { type: ERRORS[status][0], message: ERRORS[status][1] };
  return status >= 500 ? { type: 'api_error', message: 'Internal server error' }
    : { type: 'invalid_request_error', message: `Mock error with status ${status}.` };
}

// Play the real event sequence through emit(name, event). pacer paces the
// content deltas; onError(status) writes the mid-stream error (error_after);
// stopExtra (or a function giving it) joins message_stop.
// Returns false if the connection was cut.
export async function streamMessage(p, model, idTag, emit, pacer, onError, stopExtra = {}) {
  const full = message(p, model, idTag);
  const start = { ...full, content: [], stop_reason: null, stop_sequence: null,
    usage: { ...full.usage, output_tokens: 1 } };
  await emit('message_start', { type: 'message_start', message: start });
  const block = p.kind === 'tool' ? { ...full.content[0], input: {} } : { type: 'text', text: '' };
  await emit('content_block_start', { type: 'content_block_start', index: 0, content_block: block });
  await emit('ping', { type: 'ping' });
  // A tool's input opens with an empty piece, as the real stream does
  if (p.kind === 'tool') {
    await emit('content_block_delta', { type: 'content_block_delta', index: 0,
      delta: { type: 'input_json_delta', partial_json: '' } });
  }
  for (const piece of p.pieces) {
    const step = await pacer.next();
    if (step === 'drop') return false;
    if (step === 'error') {
      await onError(p.ctl.status || 500);
      return true;
    }
    const delta = p.kind === 'tool' ? { type: 'input_json_delta', partial_json: piece } : { type: 'text_delta', text: piece };
    await emit('content_block_delta', { type: 'content_block_delta', index: 0, delta });
  }
  await emit('content_block_stop', { type: 'content_block_stop', index: 0 });
  await emit('message_delta', { type: 'message_delta',
    delta: { stop_reason: full.stop_reason, stop_sequence: null },
    usage: { output_tokens: p.outputTokens } });
  const extra = typeof stopExtra === 'function' ? stopExtra() : stopExtra;
  await emit('message_stop', { type: 'message_stop', ...extra });
  return true;
}

// --- the direct API ------------------------------------------------------

function headers() {
  return { 'request-id': newId('req_011C', 20) };
}

function fail(res, status, type, msg, extra = {}, ctl = null) {
  const h = { ...headers(), ...extra };
  sendJson(res, status, { type: 'error', error: { type, message: msg }, request_id: h['request-id'] }, h, ctl);
}

// Answer an Anthropic-shaped request after auth: shared with Vertex
// rawPredict (idTag 'vrtx_'). SSE event stream when body.stream.
export async function answer(res, body, model, base, idTag, extraHeaders = {}, errorHook = null) {
  const p = plan(conversation(body, base));
  if (!(await hold(p.ctl, res))) return;
  if (failsUpFront(p.ctl, body.stream === true)) {
    if (errorHook && errorHook(p.ctl)) return;
    const e = errorFor(p.ctl.status);
    const retry = p.ctl.retryAfter >= 0 ? p.ctl.retryAfter : (p.ctl.status === 429 ? 1 : -1);
    return fail(res, p.ctl.status, e.type, e.message, retry >= 0 ? { 'retry-after': String(retry) } : {});
  }
  if (!body.stream) {
    const extra = idTag ? {} : { cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 }, service_tier: 'standard' };
    return sendJson(res, 200, message(p, model, idTag, extra), { ...headers(), ...extraHeaders }, p.ctl);
  }
  openStream(res, { ...headers(), ...extraHeaders });
  const pacer = new Pacer(p.ctl, res, p.pieces.length);
  const emit = (name, data) => writeEvent(res, name, data);
  const onError = (status) => emit('error', { type: 'error', error: errorFor(status) });
  if (await streamMessage(p, model, idTag, emit, pacer, onError)) endStream(res);
}

export async function handle(ctx) {
  const { req, res, url, config } = ctx;
  // x-api-key, or the key as a Bearer token: the official SDK (1.x) sends
  // the latter, so the real API takes both; x-api-key wins if both come
  const key = req.headers['x-api-key'];
  const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '');
  if (key === undefined && !bearer) return fail(res, 401, 'authentication_error', 'x-api-key header is required');
  if (key !== undefined && !sameSecret(key, config.anthropicKey)) return fail(res, 401, 'authentication_error', 'invalid x-api-key');
  if (key === undefined && !sameSecret(bearer[1], config.anthropicKey)) return fail(res, 401, 'authentication_error', 'Invalid bearer token');
  if (!req.headers['anthropic-version']) return fail(res, 400, 'invalid_request_error', 'anthropic-version: header is required');
  if (ctx.json === undefined) return fail(res, 400, 'invalid_request_error', 'There was an error parsing the body of your request: invalid JSON.');
  const body = ctx.json;
  if (url.pathname === '/v1/messages/count_tokens') {
    // Same checks but max_tokens, which counting does not take
    const bad = validate({ max_tokens: 1, ...body, stream: undefined });
    if (bad) return fail(res, 400, 'invalid_request_error', bad);
    return sendJson(res, 200, { input_tokens: plan(conversation(body, ctx.base)).inputTokens }, headers());
  }
  const bad = validate(body);
  if (bad) return fail(res, 400, 'invalid_request_error', bad);
  // Anthropic serves Claude models only; anything else is not found, as the real API says.
  if (!/^claude-/.test(body.model)) return fail(res, 404, 'not_found_error', `model: ${body.model}`);
  return answer(res, body, body.model, ctx.base, '');
}
