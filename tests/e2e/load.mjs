// load.mjs - load test for `hearth serve`: N concurrent streaming clients
// (default 32) for a bounded time over TCP loopback, mixing OpenAI SSE and
// Ollama NDJSON streams; every response must be complete and well-formed.
// Then clients that disconnect mid-stream; afterwards the server must be
// alive with no KV pages in use (GET /metrics). Prints one JSON summary line.
// Owner: serve tests. Env: E2E_NODE_DIR HEARTH_PORT HEARTH_MODEL_ID
// LOAD_CLIENTS LOAD_SECONDS.
import { tcpFetch, PORT, MODEL, check, finish } from './common.mjs';

const base = `http://127.0.0.1:${PORT}`;
const CLIENTS = Number(process.env.LOAD_CLIENTS || 32);
const SECONDS = Number(process.env.LOAD_SECONDS || 8);
const prompts = ['Who made the heaven?', 'What is the name of the LORD?', 'Who was Moses?', 'Where is Jerusalem?'];

async function metrics() {
  const r = await tcpFetch(`${base}/metrics`);
  const out = {};
  for (const line of (await r.text()).split('\n')) {
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

// One streaming request; returns {ok, tokens, ttft, ms, why}.
async function oneStream(kind, i) {
  const t0 = performance.now();
  const max = 16 + (i % 48);
  const content = prompts[i % prompts.length];
  const isOllama = kind === 'ollama';
  const url = isOllama ? `${base}/api/chat` : `${base}/v1/chat/completions`;
  const body = isOllama
    ? { model: MODEL, messages: [{ role: 'user', content }], options: { num_predict: max } }
    : { model: MODEL, messages: [{ role: 'user', content }], max_tokens: max, stream: true, stream_options: { include_usage: true } };
  const r = await tcpFetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (r.status !== 200) return { ok: false, why: `status ${r.status}: ${await r.text()}` };
  const dec = new TextDecoder();
  let buf = '', ttft = 0, text = '', finishReason = null, done = false, usage = null;
  for await (const chunk of r.body) {
    if (!ttft) ttft = performance.now() - t0;
    buf += dec.decode(chunk, { stream: true });
    const sep = isOllama ? '\n' : '\n\n';
    let k;
    while ((k = buf.indexOf(sep)) >= 0) {
      const ev = buf.slice(0, k);
      buf = buf.slice(k + sep.length);
      if (!ev.trim()) continue;
      if (isOllama) {
        const o = JSON.parse(ev);
        if (o.error) return { ok: false, why: o.error };
        if (done) return { ok: false, why: 'line after done' };
        text += o.message.content;
        if (o.done) { done = true; finishReason = o.done_reason; usage = { completion_tokens: o.eval_count }; }
      } else {
        if (!ev.startsWith('data: ')) return { ok: false, why: `bad SSE event ${ev.slice(0, 40)}` };
        const d = ev.slice(6);
        if (d === '[DONE]') { done = true; continue; }
        if (done) return { ok: false, why: 'event after [DONE]' };
        const o = JSON.parse(d);
        if (o.error) return { ok: false, why: o.error.message };
        if (o.usage) usage = o.usage;
        if (o.choices.length) {
          text += o.choices[0].delta.content ?? '';
          if (o.choices[0].finish_reason) finishReason = o.choices[0].finish_reason;
        }
      }
    }
  }
  if (buf.trim()) return { ok: false, why: `trailing bytes ${buf.slice(0, 40)}` };
  if (!done || !finishReason || !usage) return { ok: false, why: `incomplete: done=${done} finish=${finishReason} usage=${!!usage}` };
  if (usage.completion_tokens < 1 || usage.completion_tokens > max) return { ok: false, why: `token count ${usage.completion_tokens} > ${max}` };
  if (finishReason === 'length' && usage.completion_tokens !== max) return { ok: false, why: 'length before max_tokens' };
  return { ok: true, tokens: usage.completion_tokens, ttft, ms: performance.now() - t0 };
}

const before = await metrics();
const deadline = performance.now() + SECONDS * 1000;
const results = [];
let started = 0;
async function client(c) {
  for (let n = 0; performance.now() < deadline; n++) {
    const i = started++;
    try { results.push(await oneStream(c % 2 ? 'ollama' : 'openai', i)); }
    catch (e) { results.push({ ok: false, why: String(e) }); }
  }
}
const t0 = performance.now();
await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
const wall = (performance.now() - t0) / 1000;
const bad = results.filter((r) => !r.ok);
for (const b of bad.slice(0, 5)) console.error('bad response:', b.why);
check(results.length >= CLIENTS, `at least one request per client (${results.length})`);
check(bad.length === 0, `every response complete and well-formed (${bad.length} bad of ${results.length})`);
const good = results.filter((r) => r.ok);
const ttfts = good.map((r) => r.ttft).sort((a, b) => a - b);
const pct = (p) => ttfts.length ? ttfts[Math.min(ttfts.length - 1, Math.floor(p * ttfts.length))] : 0;
const tokens = good.reduce((s, r) => s + r.tokens, 0);

// ---------------------------------------------------------------- disconnects mid-stream
const cancelledBefore = (await metrics()).hearth_requests_cancelled_total;
const N_ABORT = 4;
await Promise.all(Array.from({ length: N_ABORT }, async (_, i) => {
  const ac = new AbortController();
  const r = await tcpFetch(`${base}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, signal: ac.signal,
    body: JSON.stringify({ model: MODEL, prompt: `In the beginning ${i}`, max_tokens: 480, ignore_eos: true, stream: true }),
  });
  const it = r.body[Symbol.asyncIterator]();
  await it.next(); // first bytes arrived: the generation is running
  ac.abort();
}).map((p) => p.catch(() => {})));
let m = null;
for (let k = 0; k < 50; k++) { // bounded: 5 s
  m = await metrics();
  if (m.hearth_kv_pages_used === 0 && m.hearth_requests_running === 0 && m.hearth_requests_waiting === 0) break;
  await new Promise((r) => setTimeout(r, 100));
}
check(m.hearth_kv_pages_used === 0, `KV pages used back to 0 (${m.hearth_kv_pages_used})`);
check(m.hearth_requests_cancelled_total - cancelledBefore >= 1,
      `aborted clients cancel their generations (${m.hearth_requests_cancelled_total - cancelledBefore} of ${N_ABORT}; the rest may have finished)`);
const health = await tcpFetch(`${base}/health`);
check(health.status === 200, 'server alive afterwards');

console.log(JSON.stringify({
  clients: CLIENTS, seconds: +wall.toFixed(2), requests: results.length, bad: bad.length,
  req_per_s: +(results.length / wall).toFixed(1), tokens, tok_per_s: +(tokens / wall).toFixed(1),
  ttft_ms_p50: +pct(0.5).toFixed(1), ttft_ms_p99: +pct(0.99).toFixed(1),
  kv_pages_total: m.hearth_kv_pages_total, prefix_hits: m.hearth_prefix_cache_hits_total - (before.hearth_prefix_cache_hits_total || 0),
}));
finish('load');
