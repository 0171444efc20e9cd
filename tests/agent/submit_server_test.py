#!/usr/bin/python3
"""`vortex submit --server URL` against a running `vortex serve` of models/needle (the standard
library only). Run through tests/server/with_server.py (VORTEX_BASE_URL, VORTEX_BINARY,
VORTEX_MODEL) from the repository root, the server started with --page-size 8.

A good flow judged through the server gets the verdict a local submission gives (the same
recall and accuracies: the same engine on the same samples), with full attention's run cached
for the next submission; a flow the server's compiler refuses stops at verify with its located
diagnostic; `vortex explore --server` judges its candidates there too; the flows submitted leave
the server with their verdicts; a server URL that answers
nothing is an error, not a verdict.
"""
import http.client
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse

URL = os.environ.get("VORTEX_BASE_URL", "")
VORTEX = os.environ.get("VORTEX_BINARY", "")
FLOW = os.path.join("flows", "block_topk.py")


def submit(args, db):
    p = subprocess.run([VORTEX, "submit"] + args + ["--quick", "--json", "--db", db],
                       capture_output=True, text=True, timeout=900)
    if p.returncode not in (0, 3):
        raise AssertionError("submit %s: exit %d: %s" % (args, p.returncode, p.stderr[-800:]))
    verdict = json.loads(p.stdout)
    assert verdict["accepted"] == (p.returncode == 0), verdict
    return verdict


def stage(verdict, name):
    return next(s for s in verdict["stages"] if s["stage"] == name)


def loaded_flows():
    u = urllib.parse.urlsplit(URL)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    conn.request("GET", "/v1/flows")
    body = json.loads(conn.getresponse().read())
    conn.close()
    return [f["id"] for f in body["data"]]


def main():
    if not URL or not VORTEX:
        sys.exit("run through tests/server/with_server.py (VORTEX_BASE_URL, VORTEX_BINARY)")
    with tempfile.TemporaryDirectory() as tmp:
        server_db, local_db = os.path.join(tmp, "server.db"), os.path.join(tmp, "local.db")
        remote = submit([FLOW, "--server", URL, "--page-size", "8"], server_db)
        assert remote["parameters"]["server"] == URL.rstrip("/"), remote["parameters"]
        local = submit([FLOW, "--model", os.environ["VORTEX_MODEL"], "--page-size", "8"], local_db)
        for key in ("accepted", "failed_stage", "accuracy", "full_accuracy", "kv_read_fraction",
                    "speedup"):
            a, b = remote[key], local[key]
            same = abs(a - b) < 1e-9 if isinstance(a, float) and isinstance(b, float) else a == b
            assert same, "%s: %r through the server, %r locally" % (key, a, b)
        # The server measures recall live, along the flow's own decode; locally it is replayed on
        # full attention's recorded decode: the same rows, nearly the same mass.
        r, l = stage(remote, "recall")["figures"], stage(local, "recall")["figures"]
        assert r["rows"] == l["rows"] > 0, (r, l)
        assert abs(r["mean"] - l["mean"]) < 0.01 and abs(r["p5"] - l["p5"]) < 0.05, (r, l)
        assert l["traces"].startswith("recorded"), l
        assert not stage(remote, "accuracy")["figures"]["full_cached"]
        print("through the server: recall %.3f, accuracy %.3f vs full %.3f, as locally"
              % (remote["recall"], remote["accuracy"], remote["full_accuracy"]))

        # Full attention comes from the store the second time.
        again = submit(["flows/quest.py", "--server", URL, "--page-size", "8"], server_db)
        assert stage(again, "accuracy")["figures"]["full_cached"], again
        # A flow that compiles for pages of 16 (the local check) but not for the server's pages
        # of 8: the server's compiler refuses it, located.
        broken = os.path.join(tmp, "sixteenths.py")
        with open(broken, "w") as f:
            f.write('"""Sixteenths of a page: needs pages of at least 16 tokens."""\n'
                    "from vortex.flow import Flow, Field, D, P\n\n"
                    "class Sixteenths(Flow):\n"
                    "    c = Field(P // 16, D)\n\n"
                    "    def summarize(self, k, v):\n"
                    "        self.c = k.fold_mean(16, axis=0)\n\n"
                    "    def score(self, q):\n"
                    "        return (self.c @ q.T).max(axis=(1, 2))\n")
        bad = submit([broken, "--server", URL], server_db)
        assert bad["failed_stage"] == "verify", bad
        reason = stage(bad, "verify")["reason"]
        assert reason.startswith(broken + ":5:") and "on the server at" in reason, reason

        # explore judges its candidates through the same server.
        p = subprocess.run([VORTEX, "explore", "--server", URL, "--quick", "--page-size", "8",
                            "--max-submissions", "3", "--flows", "flows/block_topk.py", "--db",
                            os.path.join(tmp, "explore.db"), "--out",
                            os.path.join(tmp, "candidates"), "--json"],
                           capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, (p.returncode, p.stderr[-800:])
        explored = json.loads(p.stdout)
        assert len(explored["submitted"]) == 3, explored
        assert explored["parameters"]["server"] == URL.rstrip("/"), explored["parameters"]

        left = [f for f in loaded_flows() if f.startswith("submit-")]
        assert not left, "flows left on the server: %s" % left

    # Nothing listening: an error naming the URL, exit 1, no verdict.
    p = subprocess.run([VORTEX, "submit", FLOW, "--server", "http://127.0.0.1:9", "--no-store"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and "cannot reach http://127.0.0.1:9" in p.stderr, (p.returncode,
                                                                                 p.stderr)
    print("submit --server test: passed")


if __name__ == "__main__":
    main()
