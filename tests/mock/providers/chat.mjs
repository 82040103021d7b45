// Chat Completions, shared by OpenAI (/v1/chat/completions) and Azure
// OpenAI (/openai/deployments/{d}/chat/completions). Same checks, reply and
// chunk sequence as the C mock (tests/mock/mock_chat.c); Azure adds its
// content-filter members, passed in as opts.azure.

import { plan, hold, Pacer, failsUpFront } from './control.mjs';
import { openStream, writeEvent, endStream, sendJson, newId, unixNow } from './sse.mjs';

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

export function typeName(v) {
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'boolean') return 'a boolean';
  if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : 'a decimal';
  return 'an object';
}

// OpenAI's error object: {status, error: {message, type, param, code}}
export function oaiError(status, message, param = null, code = null, type = 'invalid_request_error') {
  return { status, error: { message, type, param, code } };
}
export const missing = (param) => oaiError(400, `Missing required parameter: '${param}'.`, param, 'missing_required_parameter');
export const invalidType = (param, want, got) =>
  oaiError(400, `Invalid type for '${param}': expected ${want}, but got ${typeName(got)} instead.`, param, 'invalid_type');
const emptyArray = (param) => oaiError(400, `Invalid '${param}': empty array. Expected an array with minimum length 1, but got an empty array instead.`, param, 'empty_array');

// Text of a message's content: a string, or its text parts joined
export function contentText(content) {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.filter((p) => isObject(p) && typeof p.text === 'string').map((p) => p.text).join('\n');
}

const ROLES = ['system', 'user', 'assistant', 'tool', 'function', 'developer'];

function checkToolCalls(calls, where) {
  const param = `${where}.tool_calls`;
  if (!Array.isArray(calls)) return invalidType(param, 'an array', calls);
  if (!calls.length) return emptyArray(param);
  for (const [i, c] of calls.entries()) {
    const at = `${where}.tool_calls[${i}]`;
    if (!isObject(c)) return invalidType(at, 'an object', c);
    for (const k of ['id', 'type']) {
      if (c[k] === undefined) return missing(`${at}.${k}`);
      if (typeof c[k] !== 'string') return invalidType(`${at}.${k}`, 'a string', c[k]);
    }
    if (c.type !== 'function') return oaiError(400, `Invalid value: '${c.type.slice(0, 64)}'. Supported values are: 'function'.`, `${at}.type`, 'invalid_value');
    if (c.function === undefined) return missing(`${at}.function`);
    if (!isObject(c.function)) return invalidType(`${at}.function`, 'an object', c.function);
    for (const k of ['name', 'arguments']) {
      if (c.function[k] === undefined) return missing(`${at}.function.${k}`);
      if (typeof c.function[k] !== 'string') return invalidType(`${at}.function.${k}`, 'a string', c.function[k]);
    }
  }
  return null;
}

function unanswered(calls, answered, index) {
  const left = calls.map((c) => c.id).filter((id) => !answered.has(id));
  if (!left.length) return null;
  return oaiError(400, "An assistant message with 'tool_calls' must be followed by tool messages responding to each " +
    `'tool_call_id'. The following tool_call_ids did not have response messages: ${left.join(', ')}`, `messages.[${index}].role`);
}

function checkMessages(messages) {
  if (!messages.length) return emptyArray('messages');
  let calling = null; // {calls, index, answered}
  for (const [i, m] of messages.entries()) {
    const where = `messages[${i}]`;
    if (!isObject(m)) return invalidType(where, 'an object', m);
    if (m.role === undefined) return missing(`${where}.role`);
    if (!ROLES.includes(m.role)) {
      return oaiError(400, `Invalid value for '${where}.role': supported values are 'system', 'user', 'assistant', 'tool', 'function' and 'developer'.`, `${where}.role`, 'invalid_value');
    }
    const assistant = m.role === 'assistant';
    const ok = typeof m.content === 'string' || Array.isArray(m.content) || (assistant && m.content == null);
    if (!ok) return m.content === undefined ? missing(`${where}.content`) : invalidType(`${where}.content`, 'one of a string or array of objects', m.content);
    const tool = m.role === 'tool';
    if (calling && !tool) {
      const bad = unanswered(calling.calls, calling.answered, i);
      if (bad) return bad;
      calling = null;
    }
    if (tool) {
      if (m.tool_call_id === undefined) return missing(`${where}.tool_call_id`);
      if (typeof m.tool_call_id !== 'string') return invalidType(`${where}.tool_call_id`, 'a string', m.tool_call_id);
      if (!calling || !calling.calls.some((c) => c.id === m.tool_call_id)) {
        return oaiError(400, "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.", `messages.[${i}].role`);
      }
      calling.answered.add(m.tool_call_id);
    }
    if (assistant && m.tool_calls != null) {
      const bad = checkToolCalls(m.tool_calls, where);
      if (bad) return bad;
      calling = { calls: m.tool_calls, index: i, answered: new Set() };
    }
  }
  return calling ? unanswered(calling.calls, calling.answered, calling.index) : null;
}

function checkTools(tools) {
  if (!Array.isArray(tools)) return invalidType('tools', 'an array', tools);
  if (!tools.length) return emptyArray('tools');
  for (const [i, t] of tools.entries()) {
    const at = `tools[${i}]`;
    if (!isObject(t)) return invalidType(at, 'an object', t);
    if (t.type === undefined) return missing(`${at}.type`);
    if (t.type !== 'function') continue; // other kinds are not the mock's business
    if (t.function === undefined) return missing(`${at}.function`);
    if (!isObject(t.function)) return invalidType(`${at}.function`, 'an object', t.function);
    if (t.function.name === undefined) return missing(`${at}.function.name`);
    if (typeof t.function.name !== 'string') return invalidType(`${at}.function.name`, 'a string', t.function.name);
  }
  return null;
}

// Check top-level fields; null or an oaiError. needModel: false for Azure
// (the deployment names the model).
export function validate(body, needModel = true) {
  if (needModel) {
    if (body.model === undefined || body.model === '') return oaiError(400, 'you must provide a model parameter', 'model');
    if (typeof body.model !== 'string') return invalidType('model', 'a string', body.model);
  }
  if (body.messages === undefined) return missing('messages');
  if (!Array.isArray(body.messages)) return invalidType('messages', 'an array', body.messages);
  if (body.stream != null && typeof body.stream !== 'boolean') return invalidType('stream', 'a boolean', body.stream);
  if (body.stream_options != null) {
    if (!body.stream) return oaiError(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.", 'stream_options');
    if (!isObject(body.stream_options)) return invalidType('stream_options', 'an object', body.stream_options);
    const u = body.stream_options.include_usage;
    if (u != null && typeof u !== 'boolean') return invalidType('stream_options.include_usage', 'a boolean', u);
  }
  const name = body.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens';
  const limit = body[name];
  if (limit != null) {
    if (!Number.isInteger(limit)) return invalidType(name, 'an integer', limit);
    if (limit < 1) return oaiError(400, `Invalid '${name}': integer below minimum value. Expected a value >= 1, but got ${limit} instead.`, name, 'integer_below_min_value');
  }
  return checkMessages(body.messages) ?? (body.tools != null ? checkTools(body.tools) : null);
}

export function conversation(body, base) {
  const texts = [];
  let controlText = '';
  for (const m of body.messages) {
    const text = contentText(m.content);
    texts.push(text);
    if (m.role === 'user') controlText = text;
  }
  const last = body.messages[body.messages.length - 1];
  const tools = (body.tools ?? []).filter((t) => t.type === 'function')
    .map((t) => ({ name: t.function.name, props: t.function.parameters?.properties }));
  return {
    controlText, texts, tools, base,
    toolResult: last.role === 'tool' ? contentText(last.content) : null,
    toolsOff: body.tool_choice === 'none',
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? null,
  };
}

export function usage(p) {
  return {
    prompt_tokens: p.inputTokens, completion_tokens: p.outputTokens, total_tokens: p.inputTokens + p.outputTokens,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  };
}

const FINISH = { stop: 'stop', tool: 'tool_calls', length: 'length' };

// Azure's content-filter verdicts, all clear
const SAFE = { filtered: false, severity: 'safe' };
export const azurePromptFilter = () => [{ prompt_index: 0, content_filter_results: {
  hate: SAFE, jailbreak: { filtered: false, detected: false }, self_harm: SAFE, sexual: SAFE, violence: SAFE } }];
export const azureChoiceFilter = () => ({
  hate: SAFE, protected_material_code: { filtered: false, detected: false },
  protected_material_text: { filtered: false, detected: false }, self_harm: SAFE, sexual: SAFE, violence: SAFE });

// opts: {model, azure, headers, errorFor(status) → {status, body, headers}}
export async function answer(res, body, opts, base) {
  const p = plan(conversation(body, base));
  if (!(await hold(p.ctl, res))) return;
  if (failsUpFront(p.ctl, body.stream === true)) {
    const e = opts.errorFor(p.ctl.status, p.ctl);
    return sendJson(res, e.status, e.body, { ...opts.headers, ...e.headers });
  }
  const id = newId('chatcmpl-', 29);
  const created = unixNow();
  const callId = newId('call_', 24);
  const fingerprint = 'fp_mock';
  if (!body.stream) {
    const msg = p.kind === 'tool'
      ? { role: 'assistant', content: null, tool_calls: [{ id: callId, type: 'function', function: { name: p.toolName, arguments: p.text } }], refusal: null, annotations: [] }
      : { role: 'assistant', content: p.text, refusal: null, annotations: [] };
    const choice = { index: 0, message: msg, logprobs: null, finish_reason: FINISH[p.finish] };
    if (opts.azure) choice.content_filter_results = azureChoiceFilter();
    const out = { id, object: 'chat.completion', created, model: opts.model, choices: [choice], usage: usage(p),
      service_tier: 'default', system_fingerprint: fingerprint };
    if (opts.azure) { delete out.service_tier; out.prompt_filter_results = azurePromptFilter(); }
    return sendJson(res, 200, out, opts.headers, p.ctl);
  }
  openStream(res, opts.headers);
  const withUsage = body.stream_options?.include_usage === true;
  const chunk = (choices, extra = {}) => {
    const c = { id, object: 'chat.completion.chunk', created, model: opts.model };
    if (!opts.azure) c.service_tier = 'default';
    Object.assign(c, { system_fingerprint: fingerprint, choices, ...extra });
    if (withUsage && !('usage' in extra)) c.usage = null;
    return writeEvent(res, null, c);
  };
  const filter = (choice, full) => (opts.azure ? { ...choice, content_filter_results: full ? azureChoiceFilter() : {} } : choice);
  // Azure opens with the prompt's verdicts in a chunk of its own
  if (opts.azure) {
    await writeEvent(res, null, { choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: azurePromptFilter() });
  }
  const role = p.kind === 'tool'
    ? { role: 'assistant', content: null, tool_calls: [{ index: 0, id: callId, type: 'function', function: { name: p.toolName, arguments: '' } }], refusal: null }
    : { role: 'assistant', content: '', refusal: null };
  await chunk([filter({ index: 0, delta: role, logprobs: null, finish_reason: null }, false)]);
  const pacer = new Pacer(p.ctl, res, p.pieces.length);
  for (const piece of p.pieces) {
    const step = await pacer.next();
    if (step === 'drop') return;
    if (step === 'error') {
      const e = opts.errorFor(p.ctl.status || 500, p.ctl);
      await writeEvent(res, null, e.body);
      return endStream(res);
    }
    const delta = p.kind === 'tool' ? { tool_calls: [{ index: 0, function: { arguments: piece } }] } : { content: piece };
    await chunk([filter({ index: 0, delta, logprobs: null, finish_reason: null }, true)]);
  }
  await chunk([filter({ index: 0, delta: {}, logprobs: null, finish_reason: FINISH[p.finish] }, false)]);
  if (withUsage) await chunk([], { usage: usage(p) });
  await writeEvent(res, null, '[DONE]');
  endStream(res);
}
