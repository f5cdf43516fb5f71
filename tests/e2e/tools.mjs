// tools.mjs - tool calling and thinking through the real `openai` and `ollama`
// npm clients against `hearth serve` on the agent test model (started by
// tests/cli/test_serve_tools.sh): tools with tool_choice auto / required /
// named, streamed and not, a tool loop, Ollama tools and think. The model's
// argument values are noise (see its README): this checks shapes, not values.
// Owner: serve tests (tools and reasoning).
import { OpenAI, Ollama, MODEL, PORT, check, finish } from './common.mjs';

const base = `http://127.0.0.1:${PORT}`;
const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'none' });
const ollama = new Ollama({ host: base });
const tools = [{
  type: 'function',
  function: {
    name: 'lookup_verse', description: 'Look up a Bible verse',
    parameters: {
      type: 'object', required: ['book', 'chapter', 'verse'],
      properties: { book: { type: 'string' }, chapter: { type: 'integer' }, verse: { type: 'integer' } },
    },
  },
}];
const messages = [{ role: 'user', content: 'What does John 3:16 say?' }];
const argsOk = (s) => { const a = JSON.parse(s); return typeof a.book === 'string' && Number.isInteger(a.chapter); };

for (const tool_choice of ['auto', 'required', { type: 'function', function: { name: 'lookup_verse' } }]) {
  const what = JSON.stringify(tool_choice);
  const r = await openai.chat.completions.create({ model: MODEL, messages, tools, tool_choice, temperature: 0, max_tokens: 200 });
  const m = r.choices[0].message;
  check(r.choices[0].finish_reason === 'tool_calls', `openai ${what}: finish_reason ${r.choices[0].finish_reason}`);
  check(m.tool_calls?.[0]?.function?.name === 'lookup_verse' && argsOk(m.tool_calls[0].function.arguments),
    `openai ${what}: tool_calls ${JSON.stringify(m)}`);
  // streamed: the client's own accumulation helper
  const stream = openai.beta.chat.completions.stream({ model: MODEL, messages, tools, tool_choice, temperature: 0, max_tokens: 200 });
  const fc = await stream.finalChatCompletion();
  const sm = fc.choices[0].message;
  check(sm.tool_calls?.[0]?.function?.name === 'lookup_verse' && sm.tool_calls[0].id.startsWith('call_') &&
    sm.tool_calls[0].function.arguments === m.tool_calls[0].function.arguments,
    `openai stream ${what}: ${JSON.stringify(sm)}`);
  check(!(sm.content ?? '').includes('tool_call'), `openai stream ${what}: call text leaked into content`);
}

// a tool loop: call -> tool message -> answer
const first = await openai.chat.completions.create({ model: MODEL, messages, tools, temperature: 0, max_tokens: 200 });
const call = first.choices[0].message.tool_calls[0];
const second = await openai.chat.completions.create({
  model: MODEL, tools, temperature: 0, max_tokens: 60,
  messages: [...messages, first.choices[0].message,
    { role: 'tool', tool_call_id: call.id, content: JSON.stringify({ text: 'For God so loved the world.' }) }],
});
check(second.choices[0].message.content?.trim() && !second.choices[0].message.tool_calls,
  `tool loop answer: ${JSON.stringify(second.choices[0].message)}`);

// ollama: tools and think
const o = await ollama.chat({ model: MODEL, messages, tools, think: true, options: { temperature: 0, num_predict: 200 } });
check(o.message.tool_calls?.[0]?.function?.name === 'lookup_verse' && typeof o.message.tool_calls[0].function.arguments === 'object',
  `ollama tools: ${JSON.stringify(o.message)}`);
check(o.message.thinking?.trim(), `ollama think: ${JSON.stringify(o.message)}`);
let thinking = '', calls = 0;
for await (const part of await ollama.chat({ model: MODEL, messages, tools, stream: true, options: { temperature: 0, num_predict: 200 } })) {
  thinking += part.message.thinking ?? '';
  calls += part.message.tool_calls?.length ?? 0;
}
check(thinking.trim() && calls === 1, `ollama stream: thinking ${JSON.stringify(thinking)} calls ${calls}`);
finish('tools.mjs');
