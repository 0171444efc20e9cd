// The OpenAI Node SDK, unchanged, against vortex serve: chat and completions, whole and
// streamed. Greedy answers must equal `vortex generate --json` (with the server's flow and budget
// when it runs one), and streams must carry the same
// text and token ids as the server's whole answers. Run by run.sh through with_server.py
// (VORTEX_BASE_URL, VORTEX_BINARY, VORTEX_MODEL).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: `${process.env.VORTEX_BASE_URL}/v1`, apiKey: 'unused' });
const MODEL = 'tiny-qwen3';
// Extensions the SDK passes through in the body: no eos stop (fixed lengths), and the ids.
const greedy = { temperature: 0, ignore_eos: true, return_token_ids: true };

// Reference runs take VORTEX_GENERATE_ARGS (the server's engine flags, e.g. --page-size), and,
// unless asked for dense attention, its flow: VORTEX_GENERATE_FLOW with VORTEX_GENERATE_FLOW_ARGS
// (its budget flags).
const words = (v) => (v ?? '').split(/\s+/).filter(Boolean);
const FLOW_FILE = process.env.VORTEX_GENERATE_FLOW ?? '';
const FLOW = FLOW_FILE ? FLOW_FILE.split('/').pop().replace(/\.py$/, '') : '';
const FLOW_ARGS = FLOW_FILE ? ['--flow', FLOW_FILE, ...words(process.env.VORTEX_GENERATE_FLOW_ARGS)] : [];

// `vortex generate` as the server runs requests that name no flow; a last argument
// { dense: true } asks for full attention.
function vortexGenerate(...args) {
  const dense = typeof args[args.length - 1] === 'object' && args.pop().dense;
  const out = execFileSync(process.env.VORTEX_BINARY,
    ['generate', '--model', process.env.VORTEX_MODEL, '--json', '--ignore-eos',
      ...words(process.env.VORTEX_GENERATE_ARGS), ...(dense ? [] : FLOW_ARGS), ...args]);
  return JSON.parse(out.toString().trim().split('\n')[0]);
}

const tests = {
  async models() {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids, FLOW ? [MODEL, `${MODEL}:${FLOW}`] : [MODEL]);
  },

  async chat() {
    const messages = [{ role: 'user', content: 'Hi!' }];
    const whole = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 8, ...greedy });
    assert.equal(whole.object, 'chat.completion');
    const choice = whole.choices[0];
    assert.equal(choice.finish_reason, 'length');
    assert.equal(choice.message.role, 'assistant');
    const ref = vortexGenerate('--chat', 'Hi!', '--max-tokens', '8');
    assert.deepEqual(choice.token_ids, ref.token_ids);
    assert.equal(choice.message.content, ref.text);
    assert.equal(whole.usage.completion_tokens, 8);
    assert.equal(whole.usage.prompt_tokens, ref.prompt_tokens);

    const stream = await client.chat.completions.create({
      model: MODEL, messages, max_tokens: 8, stream: true, stream_options: { include_usage: true }, ...greedy,
    });
    let text = '';
    const ids = [];
    let finish = null;
    let usage = null;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        text += c.delta.content ?? '';
        ids.push(...(c.token_ids ?? []));
        finish = c.finish_reason ?? finish;
      }
    }
    assert.equal(text, choice.message.content);
    assert.deepEqual(ids, choice.token_ids);
    assert.equal(finish, 'length');
    assert.equal(usage.completion_tokens, 8);
  },

  async completions() {
    const prompt = 'The quick brown fox';
    const whole = await client.completions.create({ model: MODEL, prompt, max_tokens: 10, logprobs: 2, ...greedy });
    const choice = whole.choices[0];
    const ref = vortexGenerate('--prompt', prompt, '--max-tokens', '10');
    assert.deepEqual(choice.token_ids, ref.token_ids);
    assert.equal(choice.text, ref.text);
    assert.equal(choice.logprobs.tokens.length, 10);
    ref.logprobs.forEach((lp, i) => assert.ok(Math.abs(choice.logprobs.token_logprobs[i] - lp) < 1e-9));

    const stream = await client.completions.create({ model: MODEL, prompt, max_tokens: 10, stream: true, ...greedy });
    let text = '';
    const ids = [];
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        text += c.text;
        ids.push(...(c.token_ids ?? []));
      }
    }
    assert.equal(text, choice.text);
    assert.deepEqual(ids, choice.token_ids);

    // A list of prompts with n: prompt-major choices.
    const many = await client.completions.create({ model: MODEL, prompt: ['a', 'b'], n: 2, max_tokens: 3, ...greedy });
    assert.deepEqual(many.choices.map((c) => c.index), [0, 1, 2, 3]);
    assert.deepEqual(many.choices[0].token_ids, many.choices[1].token_ids);  // greedy
  },

  // The flow per request through the SDK's pass-through of unknown body fields, and by model
  // name (only against a server that runs a flow).
  async flowPerRequest() {
    if (!FLOW) return;
    const prompt = 'One two three four five six seven eight nine ten';
    const dense = await client.completions.create({
      model: MODEL, prompt, max_tokens: 12, vortex: { flow: 'dense' }, ...greedy,
    });
    assert.deepEqual(dense.choices[0].token_ids,
      vortexGenerate('--prompt', prompt, '--max-tokens', '12', { dense: true }).token_ids);
    const byName = await client.completions.create({
      model: `${MODEL}:${FLOW}`, prompt, max_tokens: 12, ...greedy,
    });
    assert.equal(byName.model, `${MODEL}:${FLOW}`);
    assert.deepEqual(byName.choices[0].token_ids,
      vortexGenerate('--prompt', prompt, '--max-tokens', '12').token_ids);
  },

  async errors() {
    await assert.rejects(
      client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
      (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found' && e.param === 'model');
    await assert.rejects(
      client.completions.create({ model: MODEL, prompt: 'x', max_tokens: 0 }),
      (e) => e instanceof OpenAI.BadRequestError && e.param === 'max_tokens');
  },
};

let failed = 0;
for (const [name, fn] of Object.entries(tests)) {
  try {
    await fn();
    console.log(`ok ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.stack ?? e}`);
  }
}
process.exit(failed ? 1 : 0);
