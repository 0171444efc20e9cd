#!/usr/bin/python3
"""A flow added to a running server under load, then removed (the standard library only).

Streaming clients keep the server busy with the default flow and dense attention; meanwhile a new
flow is POSTed to /v1/flows. New requests that name it run it: their greedy ids equal `vortex
generate --flow` with that file and budget, and /metrics counts them under its name. Requests in
flight when it arrives, and those running it when it is DELETEd, finish normally with their full
token counts. A source that does not compile is refused with located diagnostics. No request
fails. Run through tests/server/with_server.py (VORTEX_BASE_URL, VORTEX_BINARY, VORTEX_MODEL)
against a server started with --flow flows/quest.py --page-size 4.
"""
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse

URL = urllib.parse.urlsplit(os.environ.get("VORTEX_BASE_URL", ""))
SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOT_FILE = os.path.join(SOURCE_DIR, "flows", "block_topk.py")
HOT_RATIO = 0.25
CLIENTS = 8
TOKENS = 24
LONG_PROMPT = [(i * 37) % 900 + 5 for i in range(160)]  # 40 pages of 4: the flow selects


def request(method, path, body=None):
    conn = http.client.HTTPConnection(URL.hostname, URL.port, timeout=120)
    conn.request(method, path, json.dumps(body) if body is not None else None,
                 {"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, json.loads(data) if data else {}


def stream_completion(flow, prompt, tokens=TOKENS):
    """Streams one greedy completion; returns (token ids, finish_reason)."""
    body = {"model": "tiny-qwen3", "prompt": prompt, "max_tokens": tokens, "temperature": 0,
            "ignore_eos": True, "stream": True, "return_token_ids": True}
    if flow is not None:
        body["vortex"] = {"flow": flow}
    conn = http.client.HTTPConnection(URL.hostname, URL.port, timeout=120)
    conn.request("POST", "/v1/completions", json.dumps(body),
                 {"Content-Type": "application/json"})
    r = conn.getresponse()
    if r.status != 200:
        raise AssertionError("status %d: %s" % (r.status, r.read()[:300]))
    ids, finish, done = [], None, False
    for raw in r:
        line = raw.decode().rstrip("\n")
        if not line:
            continue
        if line == "data: [DONE]":
            done = True
            continue
        chunk = json.loads(line[len("data: "):])
        choice = chunk["choices"][0]
        ids += choice.get("token_ids") or []
        finish = choice.get("finish_reason") or finish
    conn.close()
    if not done:
        raise AssertionError("the stream ended without data: [DONE]")
    return ids, finish


def vortex_generate(prompt, tokens):
    ids = ",".join(str(t) for t in prompt)
    out = subprocess.run(
        [os.environ["VORTEX_BINARY"], "generate", "--model", os.environ["VORTEX_MODEL"], "--json",
         "--ignore-eos", "--page-size", "4", "--flow", HOT_FILE, "--topk-ratio", str(HOT_RATIO),
         "--prompt-ids", ids, "--max-tokens", str(tokens)],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[0])["token_ids"]


class Load:
    """CLIENTS threads streaming completions until stopped, each flow in `flows` in turn."""

    def __init__(self, flows):
        self.flows = flows
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.done = {}  # flow -> completed requests
        self.errors = []
        self.threads = [threading.Thread(target=self.client, args=(i,)) for i in range(CLIENTS)]

    def client(self, i):
        n = 0
        while not self.stop.is_set():
            with self.lock:
                flow = self.flows[(i + n) % len(self.flows)]
            n += 1
            prompt = [(i * 131 + n * 17 + k) % 900 + 5 for k in range(20 + (i * 7 + n) % 60)]
            try:
                ids, finish = stream_completion(flow, prompt)
                if finish != "length" or len(ids) != TOKENS:
                    raise AssertionError("flow %s: finish %s with %d tokens" %
                                         (flow, finish, len(ids)))
                with self.lock:
                    key = flow or "default"
                    self.done[key] = self.done.get(key, 0) + 1
            except Exception as e:  # noqa: BLE001 - every failure is reported
                with self.lock:
                    self.errors.append("client %d, flow %s: %s" % (i, flow, e))

    def start(self):
        for t in self.threads:
            t.start()

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=180)


def metrics_requests(flow):
    conn = http.client.HTTPConnection(URL.hostname, URL.port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    m = re.search(r'^vortex:requests_total\{flow="%s"\} (\d+)' % re.escape(flow), text, re.M)
    return int(m.group(1)) if m else 0


def main():
    if not URL.hostname:
        sys.exit("run through with_server.py (VORTEX_BASE_URL)")
    load = Load([None, "dense"])
    load.start()
    time.sleep(1.0)  # requests in flight when the flow arrives

    # A broken source: refused with its line, nothing registered.
    status, body = request("POST", "/v1/flows", {"name": "broken", "source":
                                                 "from vortex.flow import Flow\n\nclass B(Flow):\n"
                                                 "    x = Field(1, Q)\n"})
    assert status == 400, (status, body)
    assert body["error"]["code"] == "flow_compile_error", body
    assert any(d["line"] == 4 for d in body["diagnostics"]), body

    with open(HOT_FILE) as f:
        source = f.read()
    status, body = request("POST", "/v1/flows", {"name": "hot", "source": source,
                                                 "budget": {"topk_ratio": HOT_RATIO},
                                                 "record_recall": True})
    assert status == 201 and body["record_recall"] is True, (status, body)
    status, body = request("GET", "/v1/flows")
    assert [f["id"] for f in body["data"]] == ["quest", "hot"], body
    status, body = request("GET", "/v1/models")
    assert "tiny-qwen3:hot" in [m["id"] for m in body["data"]], body

    # New requests name it, under load: greedy ids as `vortex generate --flow` gives them.
    with load.lock:
        load.flows = [None, "dense", "hot"]
    ids, finish = stream_completion("hot", LONG_PROMPT, 16)
    assert finish == "length", finish
    expected = vortex_generate(LONG_PROMPT, 16)
    assert ids == expected, "hot flow ids %s != vortex generate --flow %s" % (ids, expected)
    # Its statistics since it was added: rows decoded, pages read, and the recall it records.
    status, body = request("GET", "/v1/flows/hot")
    assert status == 200 and body["id"] == "hot", (status, body)
    stats = body["stats"]
    assert stats["decode_rows"] > 0 and 0 < stats["kv_read_fraction"] < 1, stats
    recall = stats["recall"]
    assert recall["rows"] > 0 and 0 < recall["mean"] <= 1 + 1e-6, recall
    assert all(0 < l["mean"] <= 1 + 1e-6 for l in recall["per_layer"]), recall
    status, body = request("GET", "/v1/flows/quest")
    assert status == 200 and body["default"] is True and body["stats"]["recall"] is None, body
    status, body = request("GET", "/v1/flows/nope")
    assert status == 404 and body["error"]["code"] == "flow_not_found", (status, body)
    time.sleep(2.0)

    # Removed while some of its requests stream: they finish; new ones cannot name it.
    with load.lock:
        load.flows = [None, "dense"]
    in_flight = []
    for k in range(3):
        t = threading.Thread(target=lambda k=k: in_flight.append(
            stream_completion("hot", LONG_PROMPT[k:], 64)))
        t.start()
        in_flight.append(t)
    time.sleep(0.3)
    status, body = request("DELETE", "/v1/flows/hot")
    assert status == 200, (status, body)
    for t in [x for x in in_flight if isinstance(x, threading.Thread)]:
        t.join(timeout=120)
    results = [x for x in in_flight if not isinstance(x, threading.Thread)]
    assert len(results) == 3 and all(f == "length" and len(i) == 64 for i, f in results), results
    status, body = request("POST", "/v1/completions", {"model": "tiny-qwen3", "prompt": [5, 6],
                                                        "max_tokens": 2, "vortex": {"flow": "hot"}})
    assert status == 400 and body["error"]["code"] == "flow_not_found", (status, body)
    status, body = request("DELETE", "/v1/flows/quest")
    assert status == 409, (status, body)

    time.sleep(1.0)
    load.join()
    if load.errors:
        print("\n".join(load.errors[:10]))
        sys.exit(1)
    hot = metrics_requests("hot")
    print("hot swap: %s requests done under load; %d ran the added flow" %
          (json.dumps(load.done, sort_keys=True), hot))
    assert load.done.get("hot", 0) > 0, "no load request ran the added flow"
    assert hot >= load.done.get("hot", 0) + 4, hot
    print("hot swap test: passed")


if __name__ == "__main__":
    main()
