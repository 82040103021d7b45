// A small JSON Schema checker for the subset our schemas/ use (type, enum, required,
// properties, additionalProperties, items, pattern, minimum, maximum, maxLength), so the
// tests hold the implementation to the published schemas without another dependency.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export function loadSchema(rel) {
  return JSON.parse(fs.readFileSync(path.join(ROOT, 'schemas', rel), 'utf8'));
}

function typeOf(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

// Every violation as "path: what"; [] when value conforms.
export function violations(schema, value, at = '$') {
  const out = [];
  if (schema.type) {
    const types = [].concat(schema.type);
    const t = typeOf(value);
    if (!types.includes(t) && !(t === 'integer' && types.includes('number')))
      return [`${at}: ${t} is not ${types.join('|')}`];
  }
  if (schema.enum && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value)))
    out.push(`${at}: ${JSON.stringify(value)} not in enum`);
  if (typeof value === 'string') {
    if (schema.pattern && !new RegExp(schema.pattern).test(value)) out.push(`${at}: does not match ${schema.pattern}`);
    if (schema.maxLength !== undefined && value.length > schema.maxLength) out.push(`${at}: longer than ${schema.maxLength}`);
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) out.push(`${at}: below ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) out.push(`${at}: above ${schema.maximum}`);
  }
  if (typeOf(value) === 'object') {
    for (const key of schema.required || [])
      if (!(key in value)) out.push(`${at}: missing ${key}`);
    for (const [key, v] of Object.entries(value)) {
      if (schema.properties && key in schema.properties) out.push(...violations(schema.properties[key], v, `${at}.${key}`));
      else if (schema.additionalProperties === false) out.push(`${at}: unexpected ${key}`);
      else if (typeof schema.additionalProperties === 'object') out.push(...violations(schema.additionalProperties, v, `${at}.${key}`));
    }
  }
  if (Array.isArray(value) && schema.items)
    value.forEach((v, i) => out.push(...violations(schema.items, v, `${at}[${i}]`)));
  return out;
}

export function assertConforms(assert, rel, value) {
  const found = violations(loadSchema(rel), value);
  assert.deepEqual(found, [], `${rel}: ${JSON.stringify(value).slice(0, 300)}`);
}
