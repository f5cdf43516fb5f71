// structured.mjs - structured output through real client libraries against
// `hearth serve` on the sample model (driven by tests/cli/test_serve_structured.sh):
// the `openai` client's chat.completions.parse with a zod schema
// (openai/helpers/zod: response_format json_schema, strict), and the Vercel AI
// SDK (`ai` + `@ai-sdk/openai-compatible`, a third client library, the one
// many agents are built on): generateText, streamText, and generateObject
// with a zod schema. Every structured answer must parse and validate with zod.
// Owner: serve tests. Env: E2E_NODE_DIR HEARTH_PORT HEARTH_MODEL_ID.
import { OpenAI, load, MODEL, PORT, check, finish } from './common.mjs';

const { z } = await load('zod');
const { zodResponseFormat } = await load('openai/helpers/zod');
const { generateText, streamText, generateObject } = await load('ai');
const { createOpenAICompatible } = await load('@ai-sdk/openai-compatible');

const base = `http://127.0.0.1:${PORT}`;
const Verse = z.object({
  who: z.string().max(10),
  n: z.number().int(),
  kind: z.enum(['law', 'psalm']),
});
const messages = [{ role: 'user', content: 'Who spoke unto Moses? Answer as JSON.' }];

// ---- openai: parse() with a zod response format, several seeds
const oa = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'none', maxRetries: 0 });
let parsed = 0;
for (let seed = 1; seed <= 4; seed++) {
  const r = await oa.chat.completions.parse({
    model: MODEL, messages, response_format: zodResponseFormat(Verse, 'verse'), temperature: 1, seed, max_tokens: 200,
  });
  const m = r.choices[0].message;
  if (r.choices[0].finish_reason === 'stop' && m.parsed && Verse.safeParse(m.parsed).success) parsed++;
}
check(parsed >= 3, `openai chat.completions.parse + zod: ${parsed} of 4 answers parsed and validated`);

// ---- the AI SDK through its OpenAI-compatible provider
const hearth = createOpenAICompatible({ name: 'hearth', baseURL: `${base}/v1`, supportsStructuredOutputs: true });
const t = await generateText({ model: hearth(MODEL), prompt: 'In the beginning', maxOutputTokens: 12, temperature: 0 });
check(typeof t.text === 'string' && t.text.length > 0 && t.usage.outputTokens > 0,
      `ai generateText: ${JSON.stringify(t.text)} (${t.usage.outputTokens} tokens, finish ${t.finishReason})`);
const s = streamText({ model: hearth(MODEL), prompt: 'In the beginning', maxOutputTokens: 12, temperature: 0 });
let streamed = '';
for await (const part of s.textStream) streamed += part;
check(streamed === t.text, `ai streamText gives the same greedy text (${JSON.stringify(streamed)})`);
let objects = 0;
for (let seed = 1; seed <= 3; seed++) {
  try {
    const o = await generateObject({ model: hearth(MODEL), schema: Verse, prompt: messages[0].content,
                                     temperature: 1, seed, maxOutputTokens: 200 });
    if (Verse.safeParse(o.object).success) objects++;
  } catch (e) {
    console.error(`generateObject seed ${seed}: ${e.message}`);
  }
}
check(objects >= 2, `ai generateObject + zod: ${objects} of 3 objects validated`);
finish('structured.mjs');
