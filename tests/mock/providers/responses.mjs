// OpenAI Responses API: POST /v1/responses, the response object and the
// real streaming event sequence (every event named and numbered), shapes
// as in openai-node's resources/responses/responses.ts.

import { randomBytes } from 'node:crypto';
import { plan, hold, Pacer, failsUpFront } from './control.mjs';
import { openStream, writeEvent, endStream, sendJson, newId, unixNow } from './sse.mjs';
import { oaiError, missing, invalidType, contentText } from './chat.mjs';

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const hexId = (prefix) => prefix + randomBytes(24).toString('hex'); // resp_/msg_/fc_ + 48 hex

// Input as a list of items (a string is one user message)
const items = (input) => (typeof input === 'string' ? [{ type: 'message', role: 'user', content: input }] : input);
const kind = (item) => item.type ?? (item.role ? 'message' : undefined);

export function validate(body) {
  if (body.model === undefined || body.model === '') return missing('model');
  if (typeof body.model !== 'string') return invalidType('model', 'a string', body.model);
  if (body.input === undefined && !body.previous_response_id) return missing('input');
  if (body.input !== undefined && typeof body.input !== 'string' && !Array.isArray(body.input)) return invalidType('input', 'a string or array', body.input);
  if (body.stream != null && typeof body.stream !== 'boolean') return invalidType('stream', 'a boolean', body.stream);
  if (body.max_output_tokens != null) {
    if (!Number.isInteger(body.max_output_tokens)) return invalidType('max_output_tokens', 'an integer', body.max_output_tokens);
    if (body.max_output_tokens < 16) {
      return oaiError(400, `Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got ${body.max_output_tokens} instead.`, 'max_output_tokens', 'integer_below_min_value');
    }
  }
  const calls = new Set();
  for (const [i, item] of items(body.input ?? []).entries()) {
    const at = `input[${i}]`;
    if (!isObject(item)) return invalidType(at, 'an object', item);
    const k = kind(item);
    if (k === 'message') {
      if (!['user', 'assistant', 'system', 'developer'].includes(item.role)) {
        return oaiError(400, `Invalid value: '${String(item.role).slice(0, 64)}'. Supported values are: 'assistant', 'system', 'developer', and 'user'.`, `${at}.role`, 'invalid_value');
      }
      if (typeof item.content !== 'string' && !Array.isArray(item.content)) return invalidType(`${at}.content`, 'a string or array', item.content);
    } else if (k === 'function_call') {
      for (const f of ['call_id', 'name', 'arguments']) if (typeof item[f] !== 'string') return missing(`${at}.${f}`);
      calls.add(item.call_id);
    } else if (k === 'function_call_output') {
      if (typeof item.call_id !== 'string') return missing(`${at}.call_id`);
      if (item.output === undefined) return missing(`${at}.output`);
      // Calls made in an earlier response are not kept: trust previous_response_id
      if (!calls.has(item.call_id) && !body.previous_response_id) {
        return oaiError(400, `No tool call found for function call output with call_id ${item.call_id}.`, 'input');
      }
    }
  }
  if (body.tools != null) {
    if (!Array.isArray(body.tools)) return invalidType('tools', 'an array', body.tools);
    for (const [i, t] of body.tools.entries()) {
      if (!isObject(t)) return invalidType(`tools[${i}]`, 'an object', t);
      if (t.type === undefined) return missing(`tools[${i}].type`);
      if (t.type === 'function' && typeof t.name !== 'string') return missing(`tools[${i}].name`);
    }
  }
  return null;
}

function conversation(body, base) {
  const list = items(body.input ?? []);
  const texts = typeof body.instructions === 'string' ? [body.instructions] : [];
  let controlText = '';
  for (const item of list) {
    const k = kind(item);
    if (k === 'message') {
      const t = contentText(item.content);
      texts.push(t);
      if (item.role === 'user') controlText = t;
    } else if (k === 'function_call_output') texts.push(contentText(item.output));
  }
  const last = list[list.length - 1];
  return {
    controlText, texts, base,
    toolResult: last && kind(last) === 'function_call_output' ? contentText(last.output) : null,
    tools: (body.tools ?? []).filter((t) => t.type === 'function').map((t) => ({ name: t.name, props: t.parameters?.properties })),
    toolsOff: body.tool_choice === 'none',
    maxTokens: body.max_output_tokens ?? null,
  };
}

// The response object; status and output change as the stream goes on
function shell(body, model) {
  return {
    id: hexId('resp_'), object: 'response', created_at: unixNow(), status: 'in_progress',
    background: false, error: null, incomplete_details: null,
    instructions: body.instructions ?? null, max_output_tokens: body.max_output_tokens ?? null, max_tool_calls: null,
    model, output: [], parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    reasoning: { effort: null, summary: null }, service_tier: 'auto', store: body.store ?? true,
    temperature: body.temperature ?? 1, text: { format: { type: 'text' }, verbosity: 'medium' },
    tool_choice: body.tool_choice ?? 'auto',
    tools: (body.tools ?? []).map((t) => (t.type === 'function' ? { description: null, strict: true, ...t } : t)),
    top_logprobs: 0, top_p: body.top_p ?? 1, truncation: 'disabled', usage: null, user: null, metadata: body.metadata ?? {},
  };
}

function usage(p) {
  return { input_tokens: p.inputTokens, input_tokens_details: { cached_tokens: 0 }, output_tokens: p.outputTokens,
    output_tokens_details: { reasoning_tokens: 0 }, total_tokens: p.inputTokens + p.outputTokens };
}

function finalItem(p, ids) {
  return p.kind === 'tool'
    ? { id: ids.item, type: 'function_call', status: 'completed', arguments: p.text, call_id: ids.call, name: p.toolName }
    : { id: ids.item, type: 'message', status: 'completed', role: 'assistant',
      content: [{ type: 'output_text', annotations: [], logprobs: [], text: p.text }] };
}

function finish(resp, p, item) {
  const cut = p.finish === 'length';
  return { ...resp, status: cut ? 'incomplete' : 'completed', incomplete_details: cut ? { reason: 'max_output_tokens' } : null,
    output: [item], usage: usage(p) };
}

// opts: {model, headers, errorFor(status, ctl)}
export async function answer(res, body, opts, base) {
  const p = plan(conversation(body, base));
  if (!(await hold(p.ctl, res))) return;
  if (failsUpFront(p.ctl, body.stream === true)) {
    const e = opts.errorFor(p.ctl.status, p.ctl);
    return sendJson(res, e.status, e.body, { ...opts.headers, ...e.headers });
  }
  const resp = shell(body, opts.model);
  const ids = { item: hexId(p.kind === 'tool' ? 'fc_' : 'msg_'), call: newId('call_', 24) };
  const item = finalItem(p, ids);
  if (!body.stream) return sendJson(res, 200, finish(resp, p, item), opts.headers, p.ctl);

  openStream(res, opts.headers);
  let seq = 0;
  const emit = (type, fields) => writeEvent(res, type, { type, sequence_number: seq++, ...fields });
  const at = { item_id: ids.item, output_index: 0 };
  await emit('response.created', { response: resp });
  await emit('response.in_progress', { response: resp });
  const opening = p.kind === 'tool' ? { ...item, status: 'in_progress', arguments: '' } : { ...item, status: 'in_progress', content: [] };
  await emit('response.output_item.added', { output_index: 0, item: opening });
  const part = { type: 'output_text', annotations: [], logprobs: [], text: '' };
  if (p.kind === 'text') await emit('response.content_part.added', { ...at, content_index: 0, part });
  const pacer = new Pacer(p.ctl, res, p.pieces.length);
  for (const piece of p.pieces) {
    const step = await pacer.next();
    if (step === 'drop') return;
    if (step === 'error') {
      const e = opts.errorFor(p.ctl.status || 500, p.ctl).body.error;
      await emit('error', { code: e.code ?? e.type, message: e.message, param: e.param });
      return endStream(res);
    }
    if (p.kind === 'tool') await emit('response.function_call_arguments.delta', { ...at, delta: piece });
    else await emit('response.output_text.delta', { ...at, content_index: 0, delta: piece, logprobs: [] });
  }
  if (p.kind === 'tool') {
    await emit('response.function_call_arguments.done', { ...at, name: p.toolName, arguments: p.text });
  } else {
    await emit('response.output_text.done', { ...at, content_index: 0, text: p.text, logprobs: [] });
    await emit('response.content_part.done', { ...at, content_index: 0, part: { ...part, text: p.text } });
  }
  await emit('response.output_item.done', { output_index: 0, item });
  const done = finish(resp, p, item);
  await emit(done.status === 'completed' ? 'response.completed' : 'response.incomplete', { response: done });
  endStream(res);
}
