#!/usr/bin/python3
"""An SGLang-style client (the standard library only: urllib and http.client), as SGLang's docs
write one: POST /generate with text or input_ids, single and batched, whole and streamed, and
GET /get_model_info. Greedy ids must equal `vortex generate --json` (with the server's flow and
budget when it runs one: VORTEX_GENERATE_ARGS, VORTEX_GENERATE_FLOW, VORTEX_GENERATE_FLOW_ARGS). Run through
tests/server/with_server.py, which sets VORTEX_BASE_URL, VORTEX_BINARY and VORTEX_MODEL.
"""
import http.client
import json
import os
import shlex
import subprocess
import sys
import unittest
import urllib.error
import urllib.parse
import urllib.request

URL = os.environ.get("VORTEX_BASE_URL", "")
PROMPT = "The capital of France is"


def post(path, body):
    req = urllib.request.Request(URL + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def stream(path, body):
    """The JSON payloads of an SSE answer, and whether it ended with [DONE]."""
    u = urllib.parse.urlsplit(URL)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 200, (r.status, r.read())
    assert r.getheader("Content-Type").startswith("text/event-stream")
    chunks, done = [], False
    for raw in r:
        line = raw.decode().rstrip("\n")
        if not line:
            continue
        assert line.startswith("data: "), line
        if line == "data: [DONE]":
            done = True
        else:
            assert not done, "data after [DONE]"
            chunks.append(json.loads(line[6:]))
    conn.close()
    return chunks, done


def vortex_generate(*args):
    # A server started with engine flags or a flow is compared with `vortex generate` under the
    # same: VORTEX_GENERATE_ARGS (engine flags, e.g. --page-size), VORTEX_GENERATE_FLOW (the
    # flow's file) and VORTEX_GENERATE_FLOW_ARGS (its budget flags).
    flow = os.environ.get("VORTEX_GENERATE_FLOW", "")
    more = shlex.split(os.environ.get("VORTEX_GENERATE_ARGS", ""))
    if flow:
        more += ["--flow", flow] + shlex.split(os.environ.get("VORTEX_GENERATE_FLOW_ARGS", ""))
    out = subprocess.run([os.environ["VORTEX_BINARY"], "generate", "--model",
                          os.environ["VORTEX_MODEL"], "--json", "--ignore-eos", *more, *args],
                         check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines()]


class SglangGenerate(unittest.TestCase):
    def test_text_greedy_equals_vortex_generate(self):
        r = post("/generate", {"text": PROMPT, "sampling_params": {
            "max_new_tokens": 16, "temperature": 0, "ignore_eos": True}})
        ref = vortex_generate("--prompt", PROMPT, "--max-tokens", "16")[0]
        self.assertEqual(r["output_ids"], ref["token_ids"])
        self.assertEqual(r["text"], ref["text"])
        meta = r["meta_info"]
        self.assertEqual(meta["finish_reason"], {"type": "length", "length": 16})
        self.assertEqual(meta["prompt_tokens"], ref["prompt_tokens"])
        self.assertEqual(meta["completion_tokens"], 16)
        self.assertIsInstance(meta["id"], str)

    def test_batch_of_input_ids(self):
        r = post("/generate", {"input_ids": [[5, 6, 7], [8, 9]], "sampling_params": {
            "max_new_tokens": 4, "temperature": 0, "ignore_eos": True}})
        self.assertIsInstance(r, list)
        refs = vortex_generate("--prompt-ids", "5,6,7", "--prompt-ids", "8,9", "--max-tokens", "4")
        self.assertEqual([x["output_ids"] for x in r], [ref["token_ids"] for ref in refs])

    def test_stream_is_cumulative_and_ends_with_done(self):
        body = {"text": PROMPT, "stream": True, "sampling_params": {
            "max_new_tokens": 8, "temperature": 0, "ignore_eos": True}}
        chunks, done = stream("/generate", body)
        self.assertTrue(done)
        whole = post("/generate", dict(body, stream=False))
        self.assertEqual(chunks[-1]["text"], whole["text"])
        self.assertEqual(chunks[-1]["output_ids"], whole["output_ids"])
        self.assertEqual(chunks[-1]["meta_info"]["finish_reason"]["type"], "length")
        for a, b in zip(chunks, chunks[1:]):  # cumulative text
            self.assertTrue(b["text"].startswith(a["text"]))

    def test_stop_string_and_logprobs(self):
        r = post("/generate", {"text": PROMPT, "return_logprob": True, "top_logprobs_num": 2,
                               "sampling_params": {"max_new_tokens": 6, "temperature": 0}})
        lps = r["meta_info"]["output_token_logprobs"]
        self.assertEqual(len(lps), len(r["output_ids"]))
        self.assertEqual([x[1] for x in lps], r["output_ids"])
        self.assertTrue(all(x[0] <= 0 for x in lps))
        self.assertEqual(len(r["meta_info"]["output_top_logprobs"][0]), 2)

    def test_bad_request_names_the_field(self):
        with self.assertRaises(urllib.error.HTTPError) as e:
            post("/generate", {"text": "x", "sampling_params": {"temperature": "hot"}})
        self.assertEqual(e.exception.code, 400)
        err = json.load(e.exception)["error"]
        self.assertEqual(err["param"], "sampling_params.temperature")

    def test_model_info(self):
        with urllib.request.urlopen(URL + "/get_model_info", timeout=60) as r:
            info = json.load(r)
        self.assertTrue(info["is_generation"])
        self.assertEqual(info["model_path"], os.environ["VORTEX_MODEL"])
        self.assertIn("tokenizer_path", info)


if __name__ == "__main__":
    if not URL:
        sys.exit("run me through tests/server/with_server.py")
    unittest.main()
