#!/usr/bin/env bash
# The server as curl users meet it (run by tests/server/with_server.py, which sets
# VORTEX_BASE_URL): the README's examples, streaming, and errors in OpenAI's shape.
set -euo pipefail
command -v curl >/dev/null || { echo "curl is not installed: skipped"; exit 77; }
url=${VORTEX_BASE_URL:?run me through tests/server/with_server.py}
failures=0

# check NAME JSON PYTHON-EXPRESSION: the expression, over the parsed JSON `j`, must be true.
check() {
  if ! /usr/bin/python3 -c 'import json, sys; j = json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' "$2" "$3"; then
    echo "FAIL: $1: $3"
    echo "  got: ${2:0:400}"
    failures=$((failures + 1))
  fi
}

body=$(curl -sS "$url/v1/models")
check models "$body" 'j["object"] == "list" and j["data"][0]["id"] == "tiny-qwen3"'

body=$(curl -sS "$url/v1/chat/completions" -H "Content-Type: application/json" -d '{
  "model": "tiny-qwen3",
  "messages": [{"role": "user", "content": "What is paged attention?"}],
  "max_tokens": 8, "temperature": 0, "ignore_eos": true}')
check chat "$body" 'j["object"] == "chat.completion" and j["choices"][0]["finish_reason"] == "length" and j["usage"]["completion_tokens"] == 8 and isinstance(j["choices"][0]["message"]["content"], str)'

body=$(curl -sS "$url/v1/completions" -H "Content-Type: application/json" \
  -d '{"prompt": "def fib(n):", "max_tokens": 5, "temperature": 0, "logprobs": 2}')
check completions "$body" 'j["object"] == "text_completion" and len(j["choices"][0]["logprobs"]["tokens"]) == 5 and len(j["choices"][0]["logprobs"]["top_logprobs"][0]) >= 1'

body=$(curl -sS "$url/generate" -d '{"text": "The capital of France is", "sampling_params": {"max_new_tokens": 6, "temperature": 0, "ignore_eos": true}}')
check generate "$body" 'len(j["output_ids"]) == 6 and j["meta_info"]["finish_reason"]["type"] == "length"'

# Streaming: SSE lines, [DONE] last.
stream=$(curl -sSN "$url/v1/chat/completions" -H "Content-Type: application/json" -d '{
  "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "temperature": 0,
  "ignore_eos": true, "stream": true, "stream_options": {"include_usage": true}}')
last=$(printf '%s\n' "$stream" | grep '^data: ' | tail -n 1)
[ "$last" = "data: [DONE]" ] || { echo "FAIL: stream does not end with [DONE]: $last"; failures=$((failures + 1)); }
usage=$(printf '%s\n' "$stream" | grep '^data: {' | tail -n 1 | cut -c 7-)
check stream-usage "$usage" 'j["usage"]["completion_tokens"] == 4 and j["choices"] == []'
first=$(printf '%s\n' "$stream" | grep '^data: {' | head -n 1 | cut -c 7-)
check stream-role "$first" 'j["choices"][0]["delta"]["role"] == "assistant"'

# Errors: status and OpenAI's shape, naming the field.
status=$(curl -sS -o /tmp/vortex_curl_err.$$ -w '%{http_code}' "$url/v1/completions" -d '{"prompt": "x", "max_tokens": 0}')
[ "$status" = 400 ] || { echo "FAIL: max_tokens 0 gave HTTP $status"; failures=$((failures + 1)); }
check error-shape "$(cat /tmp/vortex_curl_err.$$)" 'j["error"]["param"] == "max_tokens" and j["error"]["type"] == "invalid_request_error"'
status=$(curl -sS -o /tmp/vortex_curl_err.$$ -w '%{http_code}' "$url/v1/chat/completions" -d '{"model": "nope", "messages": []}')
[ "$status" = 404 ] || { echo "FAIL: unknown model gave HTTP $status"; failures=$((failures + 1)); }
check model-not-found "$(cat /tmp/vortex_curl_err.$$)" 'j["error"]["code"] == "model_not_found"'
status=$(curl -sS -o /dev/null -w '%{http_code}' "$url/v1/nothing")
[ "$status" = 404 ] || { echo "FAIL: unknown path gave HTTP $status"; failures=$((failures + 1)); }
rm -f /tmp/vortex_curl_err.$$

status=$(curl -sS -o /dev/null -w '%{http_code}' "$url/health")
[ "$status" = 200 ] || { echo "FAIL: /health gave HTTP $status"; failures=$((failures + 1)); }
# The loop publishes its figures after the step that finished the last request, which may come
# a moment after that request's answer: look again for a few seconds at most.
idle=0
for _ in $(seq 50); do
  if curl -sS "$url/metrics" | grep -q '^vortex:kv_cache_pages_used 0$'; then idle=1; break; fi
  sleep 0.1
done
[ "$idle" = 1 ] || { echo "FAIL: /metrics does not show 0 KV pages used when idle"; failures=$((failures + 1)); }

[ "$failures" = 0 ] && echo "curl: all checks passed"
exit $((failures > 0))
