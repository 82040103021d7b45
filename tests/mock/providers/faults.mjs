// Fault rules by model: POST /__mock/faults {"rules":[...]} replaces them,
// POST /__mock/reset clears them. A gateway sends the same body to every
// target of a routing plan, so a "[mock ...]" switch in the text would fail
// every target alike; a rule fails one model and not the next.
//
//   {"model":"m-500","status":500}
//   {"model":"m-429","status":429,"retry_after":1}
//   {"model":"flaky","status":503,"times":2}   the first 2 matching requests only
//   {"model":"slow","latency":3000}
//   {"model":"hang","hang":true}
//
// The model is the one the family sees: OpenAI and Anthropic body.model,
// Azure the deployment (or body.model), Bedrock and Vertex the model in the
// path. A rule's effects are the switches' (control.mjs), set as the
// request's defaults: a "[mock ...]" switch in the text still wins.

const EFFECTS = {
  // rule member: [ctl field, check, value → ctl value]
  status: ['status', (v) => Number.isInteger(v) && v >= 200 && v <= 599, (v) => (v === 200 ? 0 : v)],
  retry_after: ['retryAfter', (v) => Number.isInteger(v) && v >= 0 && v <= 600000, (v) => v],
  latency: ['latency', (v) => Number.isInteger(v) && v >= 0 && v <= 600000, (v) => v],
  hang: ['hang', (v) => typeof v === 'boolean', (v) => v],
  chunks: ['chunks', (v) => Number.isInteger(v) && v >= 0 && v <= 100000, (v) => v],
  chunk_delay: ['chunkDelay', (v) => Number.isInteger(v) && v >= 0 && v <= 600000, (v) => v],
  drop: ['dropAfter', (v) => typeof v === 'boolean', (v) => (v ? -2 : -1)],
  drop_after: ['dropAfter', (v) => Number.isInteger(v) && v >= 0 && v <= 100000, (v) => v],
  error_after: ['errorAfter', (v) => Number.isInteger(v) && v >= 0 && v <= 100000, (v) => v],
};

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// {rules} (checked, each with its own count of uses left) or {error}
export function parseRules(body) {
  if (!isObject(body) || !Array.isArray(body.rules)) return { error: 'rules: expected {"rules":[...]}' };
  const rules = [];
  for (const [i, r] of body.rules.entries()) {
    const at = `rules[${i}]`;
    if (!isObject(r)) return { error: `${at}: expected an object` };
    if (typeof r.model !== 'string' || !r.model) return { error: `${at}.model: expected a non-empty string` };
    const rule = { model: r.model, effects: {}, times: null, left: null, hits: 0 };
    for (const [k, v] of Object.entries(r)) {
      if (k === 'model') continue;
      if (k === 'times') {
        if (!Number.isInteger(v) || v < 1) return { error: `${at}.times: expected an integer >= 1` };
        rule.times = v;
        rule.left = v;
        continue;
      }
      const effect = EFFECTS[k];
      if (!effect) return { error: `${at}.${k}: unknown member (model, times, ${Object.keys(EFFECTS).join(', ')})` };
      if (!effect[1](v)) return { error: `${at}.${k}: bad value ${JSON.stringify(v)}` };
      rule.effects[effect[0]] = effect[2](v);
    }
    rules.push(rule);
  }
  return { rules };
}

// The model names a request answers to, first the one the log shows
export function modelsOf(family, path, json) {
  const body = isObject(json) ? json : {};
  const bodyModel = typeof body.model === 'string' ? body.model : null;
  let m;
  switch (family) {
    case 'openai':
    case 'anthropic':
      return bodyModel ? [bodyModel] : [];
    case 'azure':
      m = /^\/openai\/deployments\/([^/]+)\//.exec(path);
      return [m && safeDecode(m[1]), bodyModel].filter(Boolean);
    case 'bedrock':
      m = /^\/model\/([^/]+)\//.exec(path);
      return m ? [safeDecode(m[1])] : [];
    case 'vertex':
      m = /\/models\/([^/:]+):/.exec(path);
      return m ? [safeDecode(m[1])] : [];
    default:
      return [];
  }
}

function safeDecode(s) {
  try { return decodeURIComponent(s); } catch { return s; }
}

// The first rule for one of models that still applies, used up by one; its
// index, or -1
export function take(rules, models) {
  for (const [i, r] of rules.entries()) {
    if (!models.includes(r.model)) continue;
    if (r.left !== null && r.left <= 0) continue;
    if (r.left !== null) r.left--;
    r.hits++;
    return i;
  }
  return -1;
}

// What GET /__mock/faults shows
export function describeRules(rules) {
  return rules.map((r) => ({ model: r.model, times: r.times, left: r.left, hits: r.hits, effects: r.effects }));
}
