// editors.mjs - replays, over TCP 127.0.0.1, the request sequences that the
// editor integrations send, with the body shapes and headers read from their
// own sources (the fixtures below are written from those facts; the source
// file of each is named in its section and in docs/API.md "Editors and
// tools"), and checks what each client reads from the answers: fields and
// their types, NDJSON / SSE framing, tool_calls, done_reason, usage, the
// context length and capabilities in /api/show. Cline's Ollama provider is
// the real `ollama` npm client, as Cline uses it.
// Two servers: HEARTH_PORT (the sample model, HEARTH_MODEL_ID, started with
// a context smaller than what the editors ask for in options.num_ctx) and
// HEARTH_AGENT_PORT (the agent model, HEARTH_AGENT_ID: tools and thinking).
// Owner: serve tests (editors).
import { check, finish, tcpFetch, Ollama, OpenAI } from './common.mjs';

const BASE = `http://127.0.0.1:${process.env.HEARTH_PORT}`;
const ABASE = `http://127.0.0.1:${process.env.HEARTH_AGENT_PORT}`;
const MODEL = process.env.HEARTH_MODEL_ID;
const AGENT = process.env.HEARTH_AGENT_ID;
const CTX = Number(process.env.HEARTH_CTX); // the sample server's -c

const isStr = (v) => typeof v === 'string';
const isInt = (v) => Number.isInteger(v) && v >= 0;
const short = (v) => JSON.stringify(v).slice(0, 300);

async function call(base, method, path, { body, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const r = await tcpFetch(base + path, init);
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, type: r.headers.get('content-type') || '', text, json };
}
const post = (base, path, body, headers = { 'Content-Type': 'application/json' }) =>
  call(base, 'POST', path, { body, headers });

// NDJSON as Zed (BufReader::lines), Continue and litellm (split on "\n") read it
function ndjson(r, what) {
  check(r.status === 200, `${what}: status ${r.status} ${r.text.slice(0, 300)}`);
  check(r.type.startsWith('application/x-ndjson'), `${what}: content-type ${r.type}`);
  check(r.text.endsWith('\n'), `${what}: the last line ends with a newline`);
  const lines = [];
  for (const l of r.text.split('\n')) {
    if (!l.trim()) continue;
    try { lines.push(JSON.parse(l)); } catch { check(false, `${what}: a line that is not JSON: ${l.slice(0, 200)}`); }
  }
  check(lines.length > 0 && lines.at(-1).done === true, `${what}: the last line has done:true`);
  check(lines.slice(0, -1).every((l) => l.done === false), `${what}: the other lines have done:false`);
  check(lines.every((l) => !('error' in l)), `${what}: no error line`);
  return lines;
}
// SSE as the openai client and Continue's streamSse read it
function sse(r, what) {
  check(r.status === 200, `${what}: status ${r.status} ${r.text.slice(0, 300)}`);
  check(r.type.startsWith('text/event-stream'), `${what}: content-type ${r.type}`);
  const data = r.text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
  return data.map((d) => (d === '[DONE]' ? d : JSON.parse(d)));
}
// the final NDJSON line as Zed's ChatResponseDelta / Continue / litellm read it
function checkFinal(last, what) {
  check(isStr(last.model) && isStr(last.created_at), `${what}: model, created_at strings`);
  check(['stop', 'length'].includes(last.done_reason), `${what}: done_reason ${last.done_reason}`);
  check(isInt(last.prompt_eval_count) && last.prompt_eval_count > 0 && isInt(last.eval_count),
        `${what}: prompt_eval_count, eval_count (${last.prompt_eval_count}, ${last.eval_count})`);
  for (const k of ['total_duration', 'load_duration', 'prompt_eval_duration', 'eval_duration'])
    check(isInt(last[k]), `${what}: ${k} a whole number of nanoseconds`);
}
const chatLines = (lines, what) => {
  check(lines.every((l) => l.message && l.message.role === 'assistant' && isStr(l.message.content)),
        `${what}: every line has message.role assistant and a string content`);
  return lines.map((l) => l.message.content).join('');
};

const verseTool = {
  type: 'function',
  function: {
    name: 'lookup_verse', description: 'Look up a Bible verse',
    parameters: { type: 'object', properties: { book: { type: 'string' }, chapter: { type: 'integer' },
                  verse: { type: 'integer' } }, required: ['book', 'chapter', 'verse'] },
  },
};
const question = 'What does John 3:16 say?';

// ---------------------------------------------------------------- VS Code Copilot Chat
// microsoft/vscode-copilot-chat src/extension/byok/vscode-node/ollamaProvider.ts (GET /api/version,
// GET /api/tags, POST /api/show {model}); the chat goes through OpenAIEndpoint
// (src/extension/byok/node/openAIEndpoint.ts): OpenAI chat completions, streamed, max_tokens
// deleted, stream_options.include_usage added, Authorization "Bearer <key or empty>".
async function copilot() {
  const v = await call(BASE, 'GET', '/api/version');
  const parts = String(v.json?.version).split('.').map((n) => parseInt(n, 10));
  const min = [0, 6, 4];
  let ok = true;
  for (let i = 0; i < 3; i++) { if ((parts[i] || 0) > min[i]) break; if ((parts[i] || 0) < min[i]) { ok = false; break; } }
  check(v.status === 200 && ok, `copilot: /api/version ${v.text} is at least 0.6.4`);
  const tags = await call(BASE, 'GET', '/api/tags');
  const models = tags.json?.models;
  check(Array.isArray(models) && models.some((m) => m.model === MODEL), `copilot: /api/tags lists ${MODEL} as .model`);
  for (const [base, id, tools] of [[BASE, MODEL, false], [ABASE, AGENT, true]]) {
    const s = await post(base, '/api/show', { model: id });
    const mi = s.json?.model_info || {};
    const ctx = mi[`${mi['general.architecture']}.context_length`];
    check(s.status === 200 && isInt(ctx) && ctx > 0, `copilot: model_info["<arch>.context_length"] of ${id}: ${ctx}`);
    check(isStr(mi['general.basename']), `copilot: model_info general.basename of ${id}`);
    check(Array.isArray(s.json?.capabilities) && s.json.capabilities.includes('tools') === tools,
          `copilot: capabilities of ${id} ${tools ? 'include' : 'lack'} tools: ${short(s.json?.capabilities)}`);
    if (base === BASE) check(ctx === CTX, `copilot: the context length is the server's (${ctx} vs ${CTX})`);
  }
  const headers = { 'Content-Type': 'application/json', Authorization: 'Bearer ', 'X-Request-Id': 'e2e-1',
                    'OpenAI-Intent': 'conversation-panel', 'X-GitHub-Api-Version': '2025-05-01' };
  const body = { messages: [{ role: 'system', content: 'You are an AI programming assistant.' },
                            { role: 'user', content: 'Who made the heaven?' }],
                 model: MODEL, temperature: 0, top_p: 1, n: 1, stream: true,
                 stream_options: { include_usage: true } };
  // older releases post to <url>/v1/chat/completions, the newest stored one (url = the Ollama
  // endpoint) to <url>/chat/completions: both are served
  for (const path of ['/v1/chat/completions', '/chat/completions']) {
    const what = `copilot chat ${path}`;
    const ev = sse(await post(BASE, path, body, headers), what);
    check(ev.at(-1) === '[DONE]', `${what}: ends with [DONE]`);
    const chunks = ev.filter((e) => e !== '[DONE]');
    const text = chunks.map((c) => c.choices?.[0]?.delta?.content || '').join('');
    const fin = chunks.map((c) => c.choices?.[0]?.finish_reason).filter(Boolean);
    const usage = chunks.at(-1)?.usage;
    check(text.length > 0, `${what}: delta.content text`);
    check(fin.length === 1 && ['stop', 'length'].includes(fin[0]), `${what}: one finish_reason ${short(fin)}`);
    check(usage && isInt(usage.prompt_tokens) && isInt(usage.completion_tokens) && chunks.at(-1).choices.length === 0,
          `${what}: include_usage gives a last chunk with usage and no choices: ${short(chunks.at(-1))}`);
  }
  // agent mode: tools, tool_choice auto
  const tb = { ...body, model: AGENT, messages: [{ role: 'user', content: question }], tools: [verseTool],
               tool_choice: 'auto' };
  const tev = sse(await post(ABASE, '/v1/chat/completions', tb, headers), 'copilot tools');
  const calls = {};
  let tfin;
  for (const c of tev.filter((e) => e !== '[DONE]')) {
    for (const t of c.choices?.[0]?.delta?.tool_calls || []) {
      const k = (calls[t.index] ??= { id: '', name: '', args: '' });
      if (t.id) k.id = t.id;
      k.name += t.function?.name || '';
      k.args += t.function?.arguments || '';
    }
    tfin = c.choices?.[0]?.finish_reason || tfin;
  }
  let args;
  try { args = JSON.parse(calls[0]?.args); } catch { args = undefined; }
  check(tfin === 'tool_calls' && calls[0]?.name === 'lookup_verse' && calls[0].id && args && isInt(args.chapter),
        `copilot tools: a streamed call with id, name and JSON arguments: ${short(calls)}`);
}

// ---------------------------------------------------------------- Zed
// zed-industries/zed crates/ollama/src/ollama.rs (get_models, show_model, stream_chat_completion and
// the serde shapes) and crates/language_models/src/provider/ollama.rs (to_ollama_request). serde
// writes the unset Options as null; num_ctx comes from Zed's table of model names (4096 for a name
// it does not know, at most 16384), never from /api/show; keep_alive -1; tools always present.
async function zed() {
  const tags = await call(BASE, 'GET', '/api/tags', { headers: { Accept: 'application/json' } });
  const m = tags.json?.models?.find((x) => x.name === MODEL);
  const d = m?.details || {};
  check(m && isStr(m.modified_at) && isInt(m.size) && isStr(m.digest), `zed: LocalModelListing fields ${short(m)}`);
  check(isStr(d.format) && isStr(d.family) && (d.families == null || Array.isArray(d.families)) &&
        isStr(d.parameter_size) && isStr(d.quantization_level), `zed: ModelDetails fields ${short(d)}`);
  const show = await post(ABASE, '/api/show', { model: AGENT });
  const caps = show.json?.capabilities;
  check(Array.isArray(caps) && caps.every(isStr) && caps.includes('tools') && caps.includes('thinking'),
        `zed: capabilities (supports_tools, supports_thinking) ${short(caps)}`);
  const body = {
    model: MODEL,
    messages: [{ role: 'system', content: 'You are a helpful assistant.' },
               { role: 'user', content: 'Who made the heaven?' },
               { role: 'assistant', content: 'God.', tool_calls: [], thinking: null },
               { role: 'user', content: 'And the earth?' }],
    stream: true, keep_alive: -1,
    options: { num_ctx: 4096, num_predict: null, stop: [], temperature: 1.0, top_p: null },
    tools: [], think: null,
  };
  const lines = ndjson(await post(BASE, '/api/chat', body), 'zed chat (num_ctx 4096 > the server\'s)');
  chatLines(lines, 'zed chat'); // at Zed's temperature 1.0 the text itself is not pinned
  checkFinal(lines.at(-1), 'zed chat');
  // the agent panel: tools, think, and a history with a tool result (Zed's ChatMessage::Tool has
  // tool_name and no id). temperature is request.temperature (the agent profile's setting; 1.0
  // only when unset): 0 here, so that the tiny agent model's call is deterministic
  const tbody = {
    model: AGENT,
    messages: [{ role: 'user', content: question }],
    stream: true, keep_alive: -1,
    options: { num_ctx: 4096, num_predict: null, stop: [], temperature: 0, top_p: null },
    tools: [{ type: 'function', function: verseTool.function }], think: true,
  };
  const tl = ndjson(await post(ABASE, '/api/chat', tbody), 'zed tools');
  chatLines(tl, 'zed tools');
  const thinking = tl.map((l) => l.message.thinking || '').join('');
  const calls = tl.flatMap((l) => l.message.tool_calls || []);
  const f = calls[0]?.function;
  check(thinking.trim().length > 0, 'zed tools: message.thinking (a Thinking event)');
  check(f && f.name === 'lookup_verse' && f.arguments && typeof f.arguments === 'object' && !Array.isArray(f.arguments),
        `zed tools: tool_calls[0].function {name, arguments object} ${short(calls)}`);
  const hist = { ...tbody, think: false, messages: [
    { role: 'user', content: question },
    { role: 'assistant', content: '', tool_calls: [{ function: { name: 'lookup_verse', arguments: f?.arguments || {} } }],
      thinking: thinking || null },
    { role: 'tool', tool_name: 'lookup_verse', content: '{"text": "For God so loved the world."}' }] };
  const hl = ndjson(await post(ABASE, '/api/chat', hist), 'zed tool result');
  chatLines(hl, 'zed tool result');
  checkFinal(hl.at(-1), 'zed tool result');
  // keep_alive as a duration string (Zed's KeepAlive::Duration)
  const ka = ndjson(await post(BASE, '/api/chat', { ...body, keep_alive: '10m', options: { ...body.options, num_predict: 4 } }),
                    'zed keep_alive "10m"');
  check(ka.at(-1).eval_count <= 4, `zed: options.num_predict is honoured (${ka.at(-1).eval_count})`);
}

// ---------------------------------------------------------------- Continue
// continuedev/continue core/llm/llms/Ollama.ts: POST /api/show {name} (reads parameters lines and
// template.includes(".Suffix") for FIM), /api/chat and /api/generate with keep_alive 1800 (seconds),
// options from _getModelFileParams (undefined keys dropped by JSON.stringify; num_thread,
// use_mmap and mirostat only when the user sets them), tools only with stream:false;
// core/llm/llms/LlamaCpp.ts: POST /completion, SSE, Authorization "Bearer undefined" without a key.
async function continueDev() {
  const show = await post(BASE, '/api/show', { name: MODEL });
  check(show.status === 200 && isStr(show.json?.parameters) && isStr(show.json?.template),
        `continue: /api/show {name} gives parameters and template strings (${show.status})`);
  for (const line of (show.json?.parameters || '').split('\n').filter(Boolean))
    check(/^(\S+)\s+((?:".*")|\S+)$/.test(line), `continue: parameters line its regex reads: ${line}`);
  const fim = !!show.json?.template?.includes('.Suffix');
  check(!fim, 'continue: no ".Suffix" in the template, so autocomplete sends a raw prompt, not suffix');
  const options = { temperature: 0, top_p: 0.9, top_k: 40, num_predict: 24, stop: ['<|im_end|>'], num_ctx: 8192 };
  const lines = ndjson(await post(BASE, '/api/chat', {
    model: MODEL, messages: [{ role: 'user', content: 'Who made the heaven?' }], options, keep_alive: 1800, stream: true,
  }), 'continue chat');
  check(chatLines(lines, 'continue chat').length > 0, 'continue chat: text');
  checkFinal(lines.at(-1), 'continue chat');
  // agent mode: tools, stream false, the last message a user one
  const t = await post(ABASE, '/api/chat', {
    model: AGENT, messages: [{ role: 'user', content: question }],
    options: { temperature: 0, num_predict: 300, num_ctx: 8192 }, keep_alive: 1800, stream: false,
    tools: [verseTool],
  });
  const tc = t.json?.message?.tool_calls;
  check(t.status === 200 && Array.isArray(tc) && tc[0]?.function?.name === 'lookup_verse' &&
        typeof tc[0].function.arguments === 'object', `continue tools: message.tool_calls ${short(t.json)}`);
  // autocomplete: a FIM prompt formatted by Continue, raw
  const g = ndjson(await post(BASE, '/api/generate', {
    model: MODEL, prompt: '<|fim_prefix|>In the beginning<|fim_suffix|> and the earth.<|fim_middle|>', raw: true,
    options: { temperature: 0.01, num_predict: 16, stop: ['<|fim_pad|>', '\n\n'], num_ctx: 8192 },
    keep_alive: 1800, stream: true,
  }), 'continue autocomplete');
  check(g.every((l) => isStr(l.response)), 'continue autocomplete: every line has a string response');
  checkFinal(g.at(-1), 'continue autocomplete');
  // the options Continue sends only when configured: each works or is a 400 naming it
  for (const [k, v, works] of [['min_p', 0.05, true], ['mirostat', 0, true], ['mirostat', 2, false],
                               ['num_thread', 4, false], ['use_mmap', true, false]]) {
    const r = await post(BASE, '/api/chat', { model: MODEL, messages: [{ role: 'user', content: 'Hi' }],
                                              options: { num_predict: 2, [k]: v }, keep_alive: 1800, stream: false });
    if (works) check(r.status === 200, `continue: options.${k} ${v} works (${r.status} ${r.text.slice(0, 200)})`);
    else check(r.status === 400 && r.json?.error?.includes(k), `continue: options.${k} ${v}: 400 naming it (${r.status} ${r.text.slice(0, 200)})`);
  }
  // a pasted image becomes messages[].images (_convertToOllamaMessage): Hearth has no vision
  const img = await post(BASE, '/api/chat', { model: MODEL, messages: [{ role: 'user', content: 'What is this?', images: ['aGVsbG8='] }],
                                              options: { num_predict: 2 }, keep_alive: 1800, stream: false });
  check(img.status === 400 && img.json?.error?.includes('messages[0].images'), `continue: an image: 400 naming it (${img.status} ${img.text.slice(0, 200)})`);
  const sfx = await post(BASE, '/api/generate', { model: MODEL, prompt: 'In the', suffix: 'earth.', stream: false });
  check(sfx.status === 400 && sfx.json?.error?.includes('suffix'), `continue: suffix on /api/generate: 400 naming it (${sfx.status})`);
  // the llama.cpp provider
  const lc = sse(await post(BASE, '/completion', { prompt: 'In the beginning', stream: true, n_predict: 12,
                                                   stop: ['\n'], temperature: 0.2, top_k: 40, top_p: 0.9 },
                            { 'Content-Type': 'application/json', Authorization: 'Bearer undefined' }),
                 'continue llama.cpp /completion');
  check(lc.length > 0 && lc.filter((e) => e !== '[DONE]').every((e) => 'content' in e) &&
        lc.some((e) => isStr(e.content) && e.content.length > 0), `continue llama.cpp: data {content} events ${short(lc.slice(0, 2))}`);
}

// ---------------------------------------------------------------- Cline
// cline/cline src/core/api/providers/ollama.ts: the ollama npm client, chat stream:true, a system
// message first, options {num_ctx} (its default 32768); reads message.content, prompt_eval_count,
// eval_count. src/core/api/providers/openai.ts: the openai client, stream with
// stream_options.include_usage, temperature 0 (openAiModelInfoSaneDefaults), max_tokens when set.
async function cline() {
  const ollama = new Ollama({ host: BASE, fetch: tcpFetch });
  let text = '', last;
  for await (const chunk of await ollama.chat({
    model: MODEL, stream: true, options: { num_ctx: 32768 },
    messages: [{ role: 'system', content: 'You are Cline, a highly skilled software engineer.' },
               { role: 'user', content: 'Who made the heaven?' }],
  })) {
    if (typeof chunk.message.content === 'string') text += chunk.message.content;
    last = chunk;
  }
  check(last?.done && last.eval_count >= 1 && isInt(last.prompt_eval_count) && isInt(last.eval_count),
        `cline ollama: text and the counts (num_ctx 32768 > the server's) ${short(last)}`);
  const openai = new OpenAI({ baseURL: `${BASE}/v1`, apiKey: 'cline', fetch: tcpFetch });
  let otext = '', usage;
  for await (const chunk of await openai.chat.completions.create({
    model: MODEL, messages: [{ role: 'system', content: 'You are Cline.' }, { role: 'user', content: 'Who made the heaven?' }],
    temperature: 0, max_tokens: 24, stream: true, stream_options: { include_usage: true },
  })) {
    otext += chunk.choices[0]?.delta?.content || '';
    if (chunk.usage) usage = chunk.usage;
  }
  check(otext.length > 0 && usage && isInt(usage.prompt_tokens) && isInt(usage.completion_tokens),
        `cline openai: text and usage ${short(usage)}`);
}

// ---------------------------------------------------------------- aider (litellm ollama_chat/)
// BerriAI/litellm litellm/llms/ollama/chat/transformation.py: /api/chat {model, messages, options,
// stream}, every mapped OpenAI parameter inside options (max_tokens -> num_predict, reasoning_effort
// -> options.think), keep_alive and format at the top; aider adds num_ctx (its token count x 1.25
// + 8192) to options for ollama models and asks with temperature 0.
async function aider() {
  const lines = ndjson(await post(BASE, '/api/chat', {
    model: MODEL, messages: [{ role: 'system', content: 'Act as an expert software developer.' },
                             { role: 'user', content: 'Who made the heaven?' }],
    options: { temperature: 0, num_ctx: 8192 + 40, num_predict: 24 }, stream: true,
  }), 'aider chat');
  check(chatLines(lines, 'aider chat').length > 0, 'aider chat: text');
  checkFinal(lines.at(-1), 'aider chat');
  const r = await post(ABASE, '/api/chat', {
    model: AGENT, messages: [{ role: 'user', content: 'Recite Genesis 1:1.' }],
    options: { temperature: 0, num_ctx: 8192, num_predict: 120, think: true }, stream: false,
  });
  const m = r.json?.message;
  check(r.status === 200 && isStr(m?.thinking) && m.thinking.trim() && !m.content.includes('<think>'),
        `aider --reasoning-effort: options.think gives message.thinking ${short(r.json)}`);
  const off = await post(ABASE, '/api/chat', {
    model: AGENT, messages: [{ role: 'user', content: 'Recite Genesis 1:1.' }],
    options: { temperature: 0, num_predict: 40, think: false }, stream: false,
  });
  check(off.status === 200 && !(off.json?.message?.thinking || '').trim(), `options.think false: no thinking ${short(off.json)}`);
  const gen = await post(BASE, '/api/generate', { model: MODEL, prompt: 'Hi', options: { think: true }, stream: false });
  check(gen.status === 400 && gen.json?.error?.includes('options.think'), `options.think on /api/generate: 400 (${gen.status})`);
  const bad = await post(BASE, '/api/chat', { model: MODEL, messages: [{ role: 'user', content: 'Hi' }],
                                              options: { think: 'high' }, stream: false });
  check(bad.status === 400 && bad.json?.error?.includes('options.think'), `options.think of the wrong type: 400 (${bad.status})`);
}

for (const [name, fn] of [['copilot', copilot], ['zed', zed], ['continue', continueDev], ['cline', cline], ['aider', aider]]) {
  try { await fn(); } catch (e) { check(false, `${name}: ${e.stack || e}`); }
}
finish('editors.mjs');
