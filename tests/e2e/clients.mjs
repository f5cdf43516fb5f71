// clients.mjs - drive `hearth serve` with the real `openai` and `ollama` npm
// clients over TCP and over the Unix socket: chat (streaming and not),
// completions, models.list / list, generate, show, version, and error shapes.
// Owner: serve tests. Env: E2E_NODE_DIR HEARTH_SOCK HEARTH_PORT HEARTH_MODEL_ID.
import { OpenAI, Ollama, transports, MODEL, check, finish } from './common.mjs';

const messages = [{ role: 'user', content: 'Who made the heaven and the earth?' }];

for (const t of transports) {
  const tag = `[${t.name}]`;
  // ---------------------------------------------------------------- openai
  const oa = new OpenAI({ baseURL: `${t.base}/v1`, apiKey: 'unused', fetch: t.fetch, maxRetries: 0 });
  const models = await oa.models.list();
  check(models.data.length === 1 && models.data[0].id === MODEL, `${tag} openai models.list -> ${JSON.stringify(models.data)}`);

  const chat = await oa.chat.completions.create({ model: MODEL, messages, max_tokens: 24, temperature: 0 });
  check(chat.object === 'chat.completion', `${tag} chat object`);
  check(typeof chat.choices[0].message.content === 'string' && chat.choices[0].message.content.length > 0,
        `${tag} chat content non-empty`);
  check(['stop', 'length'].includes(chat.choices[0].finish_reason), `${tag} chat finish_reason`);
  check(chat.usage.prompt_tokens > 0 && chat.usage.completion_tokens > 0 &&
        chat.usage.total_tokens === chat.usage.prompt_tokens + chat.usage.completion_tokens, `${tag} chat usage`);

  // streaming: same text as non-streaming at temperature 0 (greedy)
  const stream = await oa.chat.completions.create({ model: MODEL, messages, max_tokens: 24, temperature: 0,
                                                    stream: true, stream_options: { include_usage: true } });
  let text = '', finishReason = null, usage = null, chunks = 0;
  for await (const c of stream) {
    chunks++;
    if (c.usage) usage = c.usage;
    if (c.choices.length) {
      text += c.choices[0].delta.content ?? '';
      if (c.choices[0].finish_reason) finishReason = c.choices[0].finish_reason;
    }
  }
  check(chunks > 2, `${tag} stream chunks (${chunks})`);
  check(text === chat.choices[0].message.content, `${tag} stream text equals non-stream text: ${JSON.stringify(text)} vs ${JSON.stringify(chat.choices[0].message.content)}`);
  check(finishReason === chat.choices[0].finish_reason, `${tag} stream finish_reason`);
  check(usage && usage.completion_tokens === chat.usage.completion_tokens, `${tag} include_usage chunk`);

  const cmpl = await oa.completions.create({ model: MODEL, prompt: 'In the beginning', max_tokens: 8, temperature: 0,
                                            stop: ['\n'] });
  check(cmpl.object === 'text_completion' && cmpl.choices[0].text.length > 0, `${tag} completions text`);
  check(cmpl.usage.completion_tokens <= 8, `${tag} completions max_tokens`);
  const cmplLen = await oa.completions.create({ model: MODEL, prompt: 'In the beginning', max_tokens: 3, temperature: 0 });
  check(cmplLen.choices[0].finish_reason === 'length' && cmplLen.usage.completion_tokens === 3, `${tag} finish_reason length`);

  // seeds: same seed, same text
  const s1 = await oa.completions.create({ model: MODEL, prompt: 'And God said', max_tokens: 12, temperature: 1, seed: 42 });
  const s2 = await oa.completions.create({ model: MODEL, prompt: 'And God said', max_tokens: 12, temperature: 1, seed: 42 });
  check(s1.choices[0].text === s2.choices[0].text, `${tag} same seed, same text`);

  try {
    await oa.chat.completions.create({ model: 'no-such-model', messages });
    check(false, `${tag} unknown model must throw`);
  } catch (e) {
    check(e.status === 404 && /not found/.test(e.message), `${tag} openai 404: ${e.status} ${e.message}`);
  }
  try {
    await oa.chat.completions.create({ model: MODEL, messages, n: 2 });
    check(false, `${tag} n=2 must throw`);
  } catch (e) {
    check(e.status === 400 && /'n'/.test(e.message), `${tag} openai n=2 -> 400: ${e.status} ${e.message}`);
  }

  // ---------------------------------------------------------------- ollama
  const ol = new Ollama({ host: t.base, fetch: t.fetch });
  const list = await ol.list();
  check(list.models.length === 1 && list.models[0].name === MODEL, `${tag} ollama list`);
  const ver = await ol.version?.().catch(() => null);
  if (ver) check(ver.version >= '0.6.4', `${tag} ollama version ${ver.version}`);
  const show = await ol.show({ model: MODEL });
  check(show.capabilities?.includes('completion'), `${tag} show capabilities`);
  const arch = show.details.family;
  check(show.model_info[`${arch}.context_length`] > 0, `${tag} show model_info context_length`);

  const oc = await ol.chat({ model: MODEL, messages, options: { temperature: 0, num_predict: 24 } , stream: false });
  check(oc.done === true && oc.message.role === 'assistant' && oc.message.content.length > 0, `${tag} ollama chat`);
  check(oc.eval_count > 0 && oc.prompt_eval_count > 0 && oc.total_duration > 0 && oc.eval_duration > 0,
        `${tag} ollama chat counts/durations`);
  check(oc.message.content === chat.choices[0].message.content, `${tag} ollama chat = openai chat at temperature 0`);

  let otext = '', last = null, lines = 0;
  for await (const part of await ol.chat({ model: MODEL, messages, options: { temperature: 0, num_predict: 24 }, stream: true })) {
    lines++;
    otext += part.message.content;
    last = part;
  }
  check(lines > 2 && last.done === true && ['stop', 'length'].includes(last.done_reason), `${tag} ollama chat stream`);
  check(otext === oc.message.content, `${tag} ollama stream text equals non-stream`);

  const gen = await ol.generate({ model: MODEL, prompt: 'Who made the heaven?', options: { num_predict: 10 }, stream: false });
  check(gen.done && gen.response.length > 0 && gen.eval_count <= 10, `${tag} ollama generate`);
  let gtext = '', glast = null;
  for await (const part of await ol.generate({ model: MODEL, prompt: 'In the beginning', raw: true,
                                                options: { num_predict: 10, temperature: 0 }, stream: true })) {
    gtext += part.response;
    glast = part;
  }
  check(glast?.done === true && glast.eval_count === 10 && glast.done_reason === 'length' && gtext.length > 0,
        `${tag} ollama generate stream raw`);
  try {
    await ol.chat({ model: 'no-such-model', messages });
    check(false, `${tag} ollama unknown model must throw`);
  } catch (e) {
    check(/not found/.test(e.message) && !/object Object/.test(e.message), `${tag} ollama error text: ${e.message}`);
  }
}
finish('clients');
