// Bedrock ConverseStream-shaped response bodies framed by AWS's own eventstream codec
// (@smithy/eventstream-codec): NAME.bin, and NAME.json with the messages that went in.
// Payloads follow Bedrock's (its "p" padding field included). Usage: node bedrock-vectors.mjs DIR
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { toUtf8, fromUtf8 } from "@smithy/util-utf8";
import fs from "node:fs";

const out = process.argv[2];
const codec = new EventStreamCodec(toUtf8, fromUtf8);
const ev = (type, payload) => ({
  headers: {
    ":event-type": { type: "string", value: type },
    ":content-type": { type: "string", value: "application/json" },
    ":message-type": { type: "string", value: "event" },
  },
  body: JSON.stringify(payload),
});
const messages = [
  ev("messageStart", { p: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0", role: "assistant" }),
  ev("contentBlockDelta", { contentBlockIndex: 0, delta: { text: "Hello" }, p: "abcdefghijklmnopq" }),
  ev("contentBlockDelta", { contentBlockIndex: 0, delta: { text: " wörld ሴ!" }, p: "abcd" }),
  ev("contentBlockStop", { contentBlockIndex: 0, p: "abcdefghijklmnopqrstuvwxyzABCDEFGH" }),
  ev("messageStop", { p: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ", stopReason: "end_turn" }),
  ev("metadata", { metrics: { latencyMs: 412 }, p: "abc",
                   usage: { inputTokens: 12, outputTokens: 7, totalTokens: 19 } }),
];
const exception = {
  headers: {
    ":exception-type": { type: "string", value: "throttlingException" },
    ":content-type": { type: "string", value: "application/json" },
    ":message-type": { type: "string", value: "exception" },
  },
  body: JSON.stringify({ message: "Too many requests, please wait before trying again." }),
};
function write(name, list) {
  const frames = list.map((m) => codec.encode({ headers: m.headers, body: fromUtf8(m.body) }));
  fs.writeFileSync(`${out}/${name}.bin`, Buffer.concat(frames.map((f) => Buffer.from(f))));
  // The expectation, from the inputs (not from the encoded bytes).
  const expect = list.map((m) => ({
    headers: Object.entries(m.headers).map(([name, h]) => ({ name, type: 7, value: h.value })),
    payload: m.body,
  }));
  fs.writeFileSync(`${out}/${name}.json`, JSON.stringify(expect, null, 2) + "\n");
}
write("bedrock-converse-stream", messages);
write("bedrock-exception", [messages[0], exception]);
