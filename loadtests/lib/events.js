// Generated platform events for the load tests: CloudEvents 1.0 JSON, ids
// unique per VU and iteration, dated now. Mostly LLM conversations (the
// platform's bulk), with workflow steps and billing events mixed in.
const MODELS = [
  ['openai', 'gpt-4o'], ['openai', 'gpt-4o-mini'], ['anthropic', 'claude-sonnet-4'],
  ['google', 'gemini-2.5-pro'], ['openai', 'o3'],
];
const TENANTS = 300;

function tenantOf(n) {
  return `tenant-${String(n % TENANTS).padStart(4, '0')}`;
}

function conversation(id, tenant, time, n) {
  const [provider, model] = MODELS[n % MODELS.length];
  const input = 200 + (n % 1800);
  const cached = n % 3 === 0 ? Math.floor(input / 2) : 0;
  const output = 50 + (n % 700);
  const reasoning = model === 'o3' ? Math.floor(output / 3) : 0;
  return `{"specversion":"1.0","id":"${id}","source":"/loadtest/chat","type":"soma.conversation.v1","time":"${time}","tenantid":"${tenant}","data":{"user_id":"user-${n % 5000}","session_id":"s-${n % 20000}","provider":"${provider}","model":"${model}","input_tokens":${input},"output_tokens":${output},"cached_input_tokens":${cached},"reasoning_tokens":${reasoning},"latency_ms":${300 + (n % 4000)},"status":"ok"}}`;
}

function workflowStep(id, tenant, time, n) {
  return `{"specversion":"1.0","id":"${id}","source":"/loadtest/kamachiq","type":"soma.workflow_step.v1","time":"${time}","tenantid":"${tenant}","data":{"workflow_id":"wf-${n % 50}","run_id":"run-${n % 10000}","step_id":"step-${n % 12}","step_type":"tool_call","status":"succeeded","agent_pool":"general","attempt":1,"duration_ms":${100 + (n % 9000)},"quality_score":0.9}}`;
}

function billing(id, tenant, time, n) {
  return `{"specversion":"1.0","id":"${id}","source":"/loadtest/billing","type":"soma.billing.v1","time":"${time}","tenantid":"${tenant}","data":{"meter":"egress_gb","quantity":"${(n % 100) / 10 + 0.5}","unit":"GB","idempotency_key":"${id}"}}`;
}

// `count` events as CloudEvents JSON strings; `prefix` makes their ids unique.
export function events(prefix, count) {
  const time = new Date().toISOString();
  const out = new Array(count);
  for (let i = 0; i < count; i++) {
    const n = Math.floor(Math.random() * 1e9);
    const id = `${prefix}-${i}`;
    const tenant = tenantOf(n);
    const pick = n % 10;
    out[i] = pick < 8 ? conversation(id, tenant, time, n)
      : pick === 8 ? workflowStep(id, tenant, time, n)
        : billing(id, tenant, time, n);
  }
  return out;
}

// The request body and content type for a batch of `count` events: one
// event as application/cloudevents+json, more as a JSON array
// (application/cloudevents-batch+json).
export function body(prefix, count) {
  const list = events(prefix, count);
  if (count === 1) {
    return { body: list[0], contentType: 'application/cloudevents+json' };
  }
  return { body: `[${list.join(',')}]`, contentType: 'application/cloudevents-batch+json' };
}

// A cheaper `body` for heavy load: the events' content is drawn once per
// `refresh` calls and kept split around the ids, so each call only joins
// fresh ids in (unique events, dated within the last `refresh` calls,
// without paying the JavaScript to build 500 events each time).
export function bodyMaker(count, refresh = 50) {
  const marker = '\u0000ID\u0000';
  let parts = null;
  let calls = 0;
  const contentType = count === 1 ? 'application/cloudevents+json' : 'application/cloudevents-batch+json';
  return function (prefix) {
    if (parts === null || calls % refresh === 0) {
      const list = events(marker, count).map((e, i) => e.replace(`${marker}-${i}`, marker));
      parts = (count === 1 ? list[0] : `[${list.join(',')}]`).split(marker);
    }
    calls += 1;
    // One join: repeated `+=` on a 200 KB string copies it every time.
    const pieces = new Array(parts.length * 2 - 1);
    pieces[0] = parts[0];
    for (let i = 1; i < parts.length; i++) {
      pieces[2 * i - 1] = `${prefix}-${i}`;
      pieces[2 * i] = parts[i];
    }
    return { body: pieces.join(''), contentType };
  };
}
