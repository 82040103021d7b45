// Generates actors/optimizer/data/o200k_base.inc (rank table) and o200k_golden.inc (test
// vectors) from published npm packages. Run by hand; the build never runs it:
//
//   mkdir /tmp/tokgen && cd /tmp/tokgen && npm init -y &&
//     npm install js-tiktoken@1.0.21 tiktoken@1.0.22
//   NODE_PATH=/tmp/tokgen/node_modules node actors/optimizer/tools/gen_o200k.mjs
//
// Rank data: js-tiktoken's ranks/o200k_base (lines "<prefix> <first-rank> <b64 token>...").
// Golden counts/ids: the `tiktoken` package (OpenAI's Rust tiktoken built to WASM) with
// encode_ordinary, cross-checked against js-tiktoken; any disagreement is reported.
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(join(process.env.NODE_PATH || process.cwd(), "x.js"));
const JS_VER = "1.0.21", TT_VER = "1.0.22";
const modDir = process.env.NODE_PATH || join(process.cwd(), "node_modules");
const pkgJson = (n) => JSON.parse(readFileSync(join(modDir, n, "package.json"), "utf8"));
const jsPkg = pkgJson("js-tiktoken");
const ttPkg = pkgJson("tiktoken");
if (jsPkg.version !== JS_VER || ttPkg.version !== TT_VER)
    throw new Error(`want js-tiktoken@${JS_VER} tiktoken@${TT_VER}`);
const ranks = require("js-tiktoken/ranks/o200k_base");
const { Tiktoken } = require("js-tiktoken/lite");
const { get_encoding } = require("tiktoken");

const PAT =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+" +
    "('s|'S|'t|'T|'re|'rE|'Re|'RE|'ve|'vE|'Ve|'VE|'m|'M|'ll|'lL|'Ll|'LL|'d|'D)?|" +
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*" +
    "('s|'S|'t|'T|'re|'rE|'Re|'RE|'ve|'vE|'Ve|'VE|'m|'M|'ll|'lL|'Ll|'LL|'d|'D)?|" +
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
if (ranks.pat_str !== PAT) throw new Error("pat_str changed; update ar_tokenizer.c's pattern");

// rank -> bytes
const byRank = [];
for (const line of ranks.bpe_ranks.split("\n").filter(Boolean)) {
    const [, off, ...toks] = line.split(" ");
    toks.forEach((t, i) => (byRank[Number(off) + i] = Buffer.from(t, "base64")));
}
let maxLen = 0, total = 0, gaps = 0;
for (let r = 0; r < byRank.length; r++) {
    if (!byRank[r]) { gaps++; continue; }
    maxLen = Math.max(maxLen, byRank[r].length);
    total += byRank[r].length;
}
if (maxLen > 255) throw new Error("token longer than 255 bytes");
for (let b = 0; b < 256; b++)
    if (!byRank.some((t) => t && t.length === 1 && t[0] === b)) throw new Error("missing byte " + b);

// C string literal, octal escapes for anything not plain printable ASCII.
function cstr(buf) {
    let out = [], line = '"';
    for (const c of buf) {
        let s;
        if (c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c && c !== 0x3f) s = String.fromCharCode(c);
        else s = "\\" + c.toString(8).padStart(3, "0");
        line += s;
        if (line.length >= 96) { out.push(line + '"'); line = '"'; }
    }
    if (line.length > 1 || out.length === 0) out.push(line + '"');
    return out.join("\n    ");
}

const here = dirname(fileURLToPath(import.meta.url));
const dataDir = join(here, "..", "data");
const head = (what) =>
    `/* GENERATED, DO NOT EDIT. ${what}\n` +
    ` * Made by actors/optimizer/tools/gen_o200k.mjs from npm js-tiktoken@${JS_VER} (MIT)\n` +
    ` * ranks/o200k_base and tiktoken@${TT_VER} (MIT). See data/README.md. */\n`;

// Blob: for each rank in order, one length byte (0 = unused rank) then the token's bytes.
const parts = [];
for (let r = 0; r < byRank.length; r++) {
    const t = byRank[r] || Buffer.alloc(0);
    parts.push(Buffer.from([t.length]), t);
}
const blob = Buffer.concat(parts);
writeFileSync(join(dataDir, "o200k_base.inc"),
    head("o200k_base BPE ranks: per rank, a length byte then the token bytes.") +
    `#define AR_O200K_NRANKS  ${byRank.length}\n` +
    `#define AR_O200K_MAXLEN  ${maxLen}\n` +
    `#define AR_O200K_BLOBLEN ${blob.length}\n` +
    `static const char s_o200k_blob[AR_O200K_BLOBLEN + 1] =\n    ${cstr(blob)};\n`);

// ---- golden vectors
const enc = get_encoding("o200k_base");
const jsEnc = new Tiktoken(ranks);
const ref = (s) => Array.from(enc.encode_ordinary(s));
const E = [
    ["empty", ""],
    ["hello", "Hello, world!"],
    ["english", "The quick brown fox jumps over the lazy dog. It wasn't me, they'd said; we'll see what you've got."],
    ["contractions", "I'M HERE, YOU'RE THERE. We'Ve it'S they'LL he'D don't can't I've"],
    ["code_c", "int main (int argc, char **argv)\n{\n    for (int i = 0; i < argc; i++)\n        printf (\"%s\\n\", argv[i]);\n    return 0;\n}\n"],
    ["code_py", "def f(x):\n\tif x >= 10:\n\t\treturn x ** 2  # square\n\treturn None\n\n\n"],
    ["json", '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi there"}],"max_tokens":256,"temperature":0.7,"stream":true}'],
    ["whitespace", "a  b   c    d\t\te\n\n\nf \n \n g   \r\n\r\n  h     "],
    ["spaces_only", "                                "],
    ["newlines", "\n\n\n\r\n\r\r\n \n\t\n"],
    ["numbers", "1 12 123 1234 12345 123456789 3.14159 -42 1,000,000 0x1F 2024-11-21 ½ ² ٣٤٥"],
    ["cjk", "我们今天去公园散步，天气非常好。日本語のテキストも試します。한국어 문장도 있습니다."],
    ["emoji", "Hi 👋🏽 family: 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵 ❤️ ✅ 🤖🤖🤖"],
    ["accented", "Ça va très bien, naïve café, Øresund, Straße, İstanbul, ǅemal, ﬁne, e\u0301te\u0301"],
    ["cyrillic_greek", "Привет, как дела? Καλημέρα κόσμε! Ελλάδα"],
    ["arabic_hebrew", "مرحبا بالعالم שלום עולם"],
    ["hindi_thai", "नमस्ते दुनिया สวัสดีชาวโลก"],
    ["punct", "!!! ??? ... --- /// \\\\ @@@ ### $$$ %%% ^^^ &&& *** ((( ))) <<>> {{}} [[]] ||| ~~~ ```"],
    ["slashes", "path/to/file.c:10:5 http://example.com/a/b?c=d&e=f#g\n//comment\n/*x*/"],
    ["mixed_case", "camelCaseIdentifier PascalCase snake_case SCREAMING_CASE XMLHttpRequest iPhone eBay"],
    ["long_word", "a".repeat(3000)],
    ["long_mixed_word", "supercalifragilisticexpialidocious".repeat(40)],
    ["long_digits", "0123456789".repeat(100)],
    ["long_punct", "=-".repeat(600)],
    ["long_spaces", " ".repeat(1000) + "x"],
    ["long_cjk", "漢字".repeat(500)],
    ["special_text", "<|endoftext|> and <|endofprompt|> are plain text here"],
    ["marks", "\u0301\u0301abc \u0300 x\u20dd"],
    ["control", "a\u0000b\u0001c\u007f\u0085d\u00a0e\u2028f\u3000g"],
    ["unicode_space", "a\u180e b\u180e\u180e  c\ufeff d \u2000\u2001x\u200b\u202f\u205f y\u1680z \u180e  \u0085\u0085w"],
    ["markdown", "# Title\n\n- item **bold** _it_\n- `code`\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n> quote\n"],
];
const vec = [];
for (const [name, text] of E) {
    const ids = ref(text);
    const jsIds = jsEnc.encode(text, [], []);
    if (jsIds.join() !== ids.join())
        console.error(`note: js-tiktoken differs from tiktoken on ${name}: ${jsIds.length} vs ${ids.length}`);
    vec.push({ name, text, ids });
}
// Regression corpus: every vector's text joined, repeated to >= 100 KB. The speed corpus is
// the same without the pathological long_* runs, i.e. ordinary mixed prose, code and JSON.
const corpusOf = (keep) => {
    const unit = E.filter(keep).map(([, t]) => t).join("");
    const reps = Math.ceil(100000 / Buffer.byteLength(unit));
    return { reps, count: ref(unit.repeat(reps)).length, bytes: Buffer.byteLength(unit) * reps };
};
const all = corpusOf(() => true);
const speed = corpusOf(([n]) => !n.startsWith("long_"));
const MAXIDS = 64;
let g = head("o200k_base golden vectors from tiktoken's encode_ordinary.");
g += `typedef struct {\n    const char *name;\n    const char *text;\n    size_t len;\n` +
     `    size_t count;\n    size_t nids; /* ids below: the first nids */\n` +
     `    uint32_t ids[${MAXIDS}];\n} s_golden_t;\n\n`;
g += "static const s_golden_t s_golden[] = {\n";
for (const v of vec) {
    const b = Buffer.from(v.text, "utf8");
    const ids = v.ids.slice(0, MAXIDS);
    g += `    {"${v.name}",\n     ${cstr(b).replace(/\n    /g, "\n     ")},\n     ${b.length}, ${v.ids.length}, ${ids.length},\n     {${ids.join(", ")}}},\n`;
}
g += "};\n";
g += `#define AR_GOLDEN_CORPUS_REPS  ${all.reps}\n#define AR_GOLDEN_CORPUS_COUNT ${all.count}\n`;
g += `#define AR_GOLDEN_SPEED_REPS   ${speed.reps}\n#define AR_GOLDEN_SPEED_COUNT  ${speed.count}\n`;
writeFileSync(join(dataDir, "o200k_golden.inc"), g);
enc.free();
console.log(`ranks=${byRank.length} gaps=${gaps} maxlen=${maxLen} tokenbytes=${total} blob=${blob.length}`);
console.log(`golden=${vec.length} corpus=${all.bytes} bytes x${all.reps}, ${all.count} tokens; ` +
            `speed corpus=${speed.bytes} bytes x${speed.reps}, ${speed.count} tokens`);
