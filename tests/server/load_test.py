#!/usr/bin/python3
"""A bounded load test of vortex serve (the standard library only): 32 client threads, 200
requests over the three endpoints, mostly streamed, every fifth streamed one hung up after a
few events, mixing the server's two flows (one with per-request budgets) and dense attention
in the same batches. Every request that runs to its end must report the right finish_reason and token
count; afterwards /metrics must show nothing running and no KV page held; the server's resident
memory over the last quarter of the requests must stay within 10% of the first quarter (after a
warm-up round that fills the server's small KV pool, which the prefix cache keeps, and wakes its
worker threads and their allocator caches before the first sample).
Under AddressSanitizer (VORTEX_LOAD_TEST_NO_RSS=1, set by the sanitizer build) the memory
criterion is not applied: ASan's quarantine holds freed memory back by design, so resident memory
grows whatever the server does, and LeakSanitizer checks for leaks when the server exits.
Run through tests/server/with_server.py (VORTEX_BASE_URL, VORTEX_SERVER_PID).
"""
import http.client
import json
import os
import random
import re
import sys
import threading
import time
import urllib.parse

CLIENTS = 32
REQUESTS = 200
WARMUP = 800

URL = urllib.parse.urlsplit(os.environ.get("VORTEX_BASE_URL", ""))
PID = os.environ.get("VORTEX_SERVER_PID", "")
CHECK_RSS = os.environ.get("VORTEX_LOAD_TEST_NO_RSS", "") != "1"
MODEL_PREFIX, SECOND_FLOW = "", ""  # from /v1/models


def rss_kib():
    with open("/proc/%s/status" % PID) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def request_body(i, rng):
    """Endpoint, body, expected token count (None: may stop early), streamed, hang up."""
    n = rng.randint(4, 48)
    stream = i % 4 != 0
    hang_up = stream and i % 5 == 0
    kind = i % 3
    if kind == 0:
        body = {"prompt": "request %d says" % i, "max_tokens": n, "temperature": 0.8,
                "seed": i, "ignore_eos": True}
        path = "/v1/completions"
    elif kind == 1:
        body = {"messages": [{"role": "user", "content": "question %d" % i}], "max_tokens": n,
                "temperature": 0, "ignore_eos": True, "stream_options": {"include_usage": True}}
        path = "/v1/chat/completions"
    else:
        body = {"input_ids": [rng.randrange(1, 1000) for _ in range(rng.randint(1, 64))],
                "sampling_params": {"max_new_tokens": n, "temperature": 0, "ignore_eos": True}}
        path = "/generate"
    body["stream"] = stream
    # The attention of the request: the server's default flow, dense, the second flow with a
    # budget of its own, or the second flow by model name (SGLang: its keys in sampling_params).
    mode = (i // 2) % 4
    if mode == 1:
        pick = {"flow": "dense"}
    elif mode == 2:
        pick = {"flow": SECOND_FLOW, "topk_ratio": 0.5, "sink_pages": 0}
    else:
        pick = {}
    if mode == 3 and path != "/generate":
        body["model"] = MODEL_PREFIX + SECOND_FLOW
    elif mode == 3:
        pick = {"flow": SECOND_FLOW}
    if pick and path == "/generate":
        body["sampling_params"].update(pick)
    elif pick:
        body["vortex"] = pick
    return path, body, n, stream, hang_up


def run_one(i, rng):
    """Sends request i; returns None if it checked out, else an error message."""
    path, body, n, stream, hang_up = request_body(i, rng)
    conn = http.client.HTTPConnection(URL.hostname, URL.port, timeout=120)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        r = conn.getresponse()
        if r.status != 200:
            return "%s: HTTP %d %s" % (path, r.status, r.read()[:200])
        if not stream:
            j = json.load(r)
            if path == "/generate":
                got, finish = len(j["output_ids"]), j["meta_info"]["finish_reason"]["type"]
            else:
                got, finish = j["usage"]["completion_tokens"], j["choices"][0]["finish_reason"]
            if got != n or finish != "length":
                return "%s: %d tokens, finish %s, expected %d, length" % (path, got, finish, n)
            return None
        events, done, finish, tokens = 0, False, None, 0
        for raw in r:
            line = raw.decode().strip()
            if not line:
                continue
            if line == "data: [DONE]":
                done = True
                break
            j = json.loads(line[6:])
            events += 1
            if hang_up and events == 3:
                conn.sock.shutdown(2)  # the client goes away mid-stream
                return None
            if path == "/generate":
                tokens = j["meta_info"]["completion_tokens"]
                if j["meta_info"]["finish_reason"]:
                    finish = j["meta_info"]["finish_reason"]["type"]
            else:
                if j.get("usage"):
                    tokens = j["usage"]["completion_tokens"]
                for c in j["choices"]:
                    finish = c["finish_reason"] or finish
                    if path == "/v1/completions" and c["finish_reason"] is None:
                        tokens += 1  # one token per chunk without logprobs held back
        if not done or finish != "length":
            return "%s: stream ended without [DONE] or finish %s" % (path, finish)
        if path != "/v1/completions" and tokens != n:
            return "%s: streamed %d tokens, expected %d" % (path, tokens, n)
        return None
    except Exception as e:  # noqa: BLE001 - every failure is reported
        return "%s: %r" % (path, e)
    finally:
        conn.close()


def run_round(count, first_index, on_done):
    errors = []
    lock = threading.Lock()
    next_i = [first_index]

    def client(seed):
        rng = random.Random(seed)
        while True:
            with lock:
                i = next_i[0]
                if i >= first_index + count:
                    return
                next_i[0] += 1
            err = run_one(i, rng)
            with lock:
                if err:
                    errors.append(err)
                on_done()

    threads = [threading.Thread(target=client, args=(first_index + c,)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def served_flows():
    """The served model's name and its flows, from /v1/models ("NAME" and "NAME:FLOW")."""
    conn = http.client.HTTPConnection(URL.hostname, URL.port, timeout=30)
    conn.request("GET", "/v1/models")
    ids = [m["id"] for m in json.load(conn.getresponse())["data"]]
    conn.close()
    return ids[0], [i.split(":", 1)[1] for i in ids if ":" in i]


def metrics():
    conn = http.client.HTTPConnection(URL.hostname, URL.port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r"^(vortex:[a-z_]+(?:\{[^}]*\})?) ([-0-9.e+]+)$", text, re.M)}


def main():
    if not URL.hostname or not PID:
        sys.exit("run me through tests/server/with_server.py")
    global MODEL_PREFIX, SECOND_FLOW
    name, flows = served_flows()
    if len(flows) < 2:
        sys.exit("start the server with two flows (--flow A --flow B): requests mix them")
    MODEL_PREFIX, SECOND_FLOW = name + ":", flows[1]
    start = time.time()
    errors = run_round(WARMUP, 10_000, lambda: None)
    samples = []
    errors += run_round(REQUESTS, 0, lambda: samples.append(rss_kib()))
    elapsed = time.time() - start
    for e in errors[:20]:
        print("error:", e)
    # Idle: the snapshot taken when the loop went idle.
    m = {}
    for _ in range(500):
        m = metrics()
        if m.get("vortex:num_requests_running") == 0 and m.get("vortex:kv_cache_pages_used") == 0:
            break
        time.sleep(0.01)
    q = len(samples) // 4
    first, last = sum(samples[:q]) / q, sum(samples[-q:]) / q
    print("%d requests (+%d warm-up) from %d clients in %.1f s; RSS first quarter %.0f KiB, "
          "last quarter %.0f KiB (%+.1f%%); running %s, KV pages used %s, aborted %s" %
          (REQUESTS, WARMUP, CLIENTS, elapsed, first, last, 100 * (last - first) / first,
           m.get("vortex:num_requests_running"), m.get("vortex:kv_cache_pages_used"),
           m.get('vortex:requests_finished_total{reason="abort"}')))
    per_flow = {k: v for k, v in m.items() if k.startswith("vortex:requests_total{")}
    print("requests per flow:", per_flow)
    if len(per_flow) != 3 or min(per_flow.values()) == 0 or \
            sum(per_flow.values()) != REQUESTS + WARMUP:
        errors.append("requests per flow: expected the default flow, %s and dense, %d in all"
                      % (SECOND_FLOW, REQUESTS + WARMUP))
        print("error:", errors[-1])
    ok = (not errors and m.get("vortex:num_requests_running") == 0 and
          m.get("vortex:kv_cache_pages_used") == 0 and
          (abs(last - first) <= 0.10 * first or not CHECK_RSS))
    if not CHECK_RSS:
        print("memory criterion not applied (sanitizer build)")
    print("load test:", "passed" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
