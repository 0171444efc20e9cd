#!/usr/bin/env python3
"""End-to-end test of `vortex submit` on flows written from the user documentation alone.

Every flow in tests/agent/docs_flows/ was written from docs/flows.md and AGENTS.md only:
  good_*.py    must pass the verify and recall stages (accuracy may pass or fail at --quick);
  broken_*.py  must fail at verify, with a reason naming FILE:LINE: where LINE is the line that
               carries the `# EXPECT-ERROR` marker;
  bad_*.py     compile but select badly on purpose: must fail at recall or accuracy.

The script submits every flow with `vortex submit FLOW --quick --json --db DB` into a fresh
results store in a temporary directory (cwd = the repository root, default model models/needle),
checks each verdict, re-runs one good flow that reached the accuracy stage with
`vortex eval --compare-full` on the submission's own parameters and checks that both accuracies
match the submission's, and checks that `vortex leaderboard --db DB --json` lists every
submission. It prints one line per flow and exits non-zero with a message per failed check.

Usage: docs_flows_submit_test.py path/to/vortex path/to/repo [--jobs 2] [--keep-tmp]
"""

import argparse
import ast
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

FLOW_DIR = os.path.join("tests", "agent", "docs_flows")
MARKER = "# EXPECT-ERROR"
SUBMIT_TIMEOUT_S = 900
STAGES = ["verify", "recall", "accuracy", "throughput"]
# The keys AGENTS.md ("The verdict") documents for `submit --json`, and those this script reads.
VERDICT_KEYS = ["accepted", "failed_stage", "accuracy", "full_accuracy", "accuracy_delta",
                "recall", "speedup", "speedup_estimated", "kv_read_fraction", "stages", "id",
                "parameters"]
STAGE_KEYS = ["stage", "status", "seconds", "reason", "figures"]
EVAL_TIMEOUT_S = 900


class Failures:
    def __init__(self):
        self.items = []

    def add(self, where, message):
        self.items.append(f"{where}: {message}")
        print(f"CHECK FAILED: {where}: {message}", flush=True)


def kind_of(name):
    for kind in ("good", "broken", "bad"):
        if name.startswith(kind + "_"):
            return kind
    return None


def marker_lines(path):
    with open(path, encoding="utf-8") as f:
        return [i for i, line in enumerate(f, start=1) if MARKER in line]


def docstring_first_line(path):
    with open(path, encoding="utf-8") as f:
        doc = ast.get_docstring(ast.parse(f.read()))
    return (doc or "").strip().splitlines()[0] if doc else ""


def run(cmd, cwd, timeout):
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = None, e.stdout or "", f"timed out after {timeout} s"
        if isinstance(out, bytes):
            out = out.decode("utf-8", "replace")
    return rc, out, err, time.monotonic() - start


def submit(vortex, repo, db, rel):
    cmd = [vortex, "submit", rel, "--quick", "--json", "--db", db]
    rc, out, err, secs = run(cmd, repo, SUBMIT_TIMEOUT_S)
    verdict, parse_error = None, None
    try:
        verdict = json.loads(out)
    except ValueError as e:
        parse_error = f"stdout is not one JSON object ({e}); stdout tail: {out[-300:]!r}"
    return {"rel": rel, "cmd": cmd, "rc": rc, "stderr": err, "seconds": secs,
            "verdict": verdict, "parse_error": parse_error}


def stage(verdict, name):
    for s in verdict.get("stages", []):
        if s.get("stage") == name:
            return s
    return None


def check_verdict(name, kind, path, res, fails):
    """The checks that one submission's result must pass; returns True if it has a verdict."""
    where = name
    if res["rc"] not in (0, 3):
        fails.add(where, f"`{' '.join(res['cmd'])}` exited {res['rc']} (expected 0 accepted or "
                         f"3 rejected); stderr tail: {res['stderr'][-500:]!r}")
        return False
    v = res["verdict"]
    if v is None:
        fails.add(where, res["parse_error"])
        return False
    if not isinstance(v.get("accepted"), bool) or not isinstance(v.get("stages"), list) \
            or not v["stages"]:
        fails.add(where, f"no verdict in the JSON (accepted/stages missing): {json.dumps(v)[:300]}")
        return False
    missing = [k for k in VERDICT_KEYS if k not in v]
    if missing:
        fails.add(where, f"the JSON lacks the documented key(s) {missing}")
    for s in v["stages"]:
        lacking = [k for k in STAGE_KEYS if k not in s]
        if lacking:
            fails.add(where, f"stage {s.get('stage')!r} lacks the documented key(s) {lacking}")
    order = [s.get("stage") for s in v["stages"]]
    statuses = [s.get("status") for s in v["stages"]]
    if order != STAGES[:len(order)] or any(x != "passed" for x in statuses[:-1]) \
            or (v["accepted"] and (order != STAGES or statuses[-1] != "passed")) \
            or (not v["accepted"] and statuses[-1] != "failed"):
        fails.add(where, f"stages must run in the order {STAGES} and stop at the first failure; "
                         f"got {list(zip(order, statuses))}")
    if v["accepted"] != (res["rc"] == 0):
        fails.add(where, f"exit status {res['rc']} disagrees with accepted={v['accepted']}")
    failed = v.get("failed_stage")
    if v["accepted"] and failed is not None:
        fails.add(where, f"accepted but failed_stage={failed!r}")
    if not v["accepted"]:
        st = stage(v, failed)
        if st is None or st.get("status") != "failed":
            fails.add(where, f"rejected with failed_stage={failed!r} but that stage is not "
                             f"listed as failed: {[(s.get('stage'), s.get('status')) for s in v['stages']]}")

    if kind == "broken":
        lines = marker_lines(path)
        if len(lines) != 1:
            fails.add(where, f"needs exactly one '{MARKER}' line, found {len(lines)}")
            return True
        line = lines[0]
        verify = stage(v, "verify") or {}
        reason = verify.get("reason", "")
        if failed != "verify":
            fails.add(where, f"expected to fail at verify, failed_stage={failed!r}")
        elif not re.search(r"(^|[\s/\\])" + re.escape(os.path.basename(path)) + ":" + str(line)
                           + ":", reason):
            got = re.findall(re.escape(os.path.basename(path)) + r":(\d+):", reason)
            fails.add(where, f"verify reason should name {os.path.basename(path)}:{line}: (the "
                             f"{MARKER} line); it names line(s) {got or 'none'}: {reason!r}")
    elif kind == "bad":
        if v["accepted"] or failed not in ("recall", "accuracy"):
            fails.add(where, f"a deliberately bad selector must be rejected at recall or accuracy; "
                             f"accepted={v['accepted']} failed_stage={failed!r}")
        first = docstring_first_line(path)
        if "deliberately bad" not in first.lower():
            fails.add(where, f"docstring's first line must say it is deliberately bad: {first!r}")
    elif kind == "good":
        for s_name in ("verify", "recall"):
            st = stage(v, s_name)
            if st is None or st.get("status") != "passed":
                fails.add(where, f"good flow must pass {s_name}; got "
                                 f"{st and st.get('status')!r}: {(st or {}).get('reason', '')!r}")
        if failed not in (None, "accuracy"):
            fails.add(where, f"good flow rejected at {failed!r} (only accuracy may fail at --quick)")
    return True


def eval_command(vortex, rel, params):
    """`vortex eval --compare-full` with the submission's model, suite, seed and budget."""
    cmd = [vortex, "eval", "--model", params["model"], "--tasks", params["tasks"],
           "--context", str(params["context"]), "--samples", str(params["samples"]),
           "--seed", str(params["seed"]), "--page-size", str(params["page_size"]),
           "--device", params.get("device", "cpu"), "--flow", rel, "--compare-full", "--json"]
    b = params.get("budget") or {}
    if b.get("pages") is not None:
        cmd += ["--topk-pages", str(b["pages"])]
    elif b.get("ratio") is not None:
        cmd += ["--topk-ratio", repr(float(b["ratio"]))]
    if b.get("floor") is not None:
        cmd += ["--topk-floor", str(b["floor"])]
    if b.get("cap") is not None:
        cmd += ["--topk-cap", str(b["cap"])]
    if b.get("sink") is not None:
        cmd += ["--sink-pages", str(b["sink"])]
    if b.get("recent") is not None:
        cmd += ["--recent-pages", str(b["recent"])]
    if b.get("dense_layers") is not None:
        layers = b["dense_layers"]
        cmd += ["--dense-layers", ",".join(str(x) for x in layers) if layers else "none"]
    return cmd


def compare_eval(vortex, repo, name, res):
    """Runs eval --compare-full for one submission; returns (messages, failures)."""
    v = res["verdict"]
    acc = stage(v, "accuracy")
    figs = acc["figures"]
    params = v["parameters"]
    cmd = eval_command(vortex, res["rel"], params)
    rc, out, err, secs = run(cmd, repo, EVAL_TIMEOUT_S)
    where = f"eval --compare-full of {name}"
    if rc != 0:
        return [], [(where, f"`{' '.join(cmd)}` exited {rc}; stderr tail: {err[-500:]!r}")]
    try:
        runs = json.loads(out)["runs"]
        full = [r for r in runs if r.get("flow") == "full"]
        flow = [r for r in runs if r.get("flow") != "full"]
        if len(full) != 1 or len(flow) != 1:
            raise ValueError(f"expected one full and one flow run, got {[r.get('flow') for r in runs]}")
        full, flow = full[0], flow[0]
    except (ValueError, KeyError, TypeError) as e:
        return [], [(where, f"cannot read eval's JSON ({e}); stdout tail: {out[-300:]!r}")]
    total = figs.get("samples") or params["samples"] * len(params["tasks"].split(","))
    tol = 1.0 / total + 1e-9
    msgs, fails = [], []
    for label, sub_value, eval_value, eval_samples in (
            ("flow", figs["accuracy"], flow["accuracy"], flow.get("samples")),
            ("full attention", figs["full_accuracy"], full["accuracy"], full.get("samples"))):
        diff = abs(sub_value - eval_value)
        msgs.append(f"  {name} {label}: submit {sub_value:.4f}, eval {eval_value:.4f} "
                    f"(|diff| {diff:.4f}, tolerance 1/{total})")
        if diff > tol:
            fails.append((where, f"{label} accuracy {eval_value} differs from the submission's "
                                 f"{sub_value} by {diff:.4f} > 1/{total}"))
        if eval_samples is not None and eval_samples != total:
            fails.append((where, f"{label} ran {eval_samples} samples, the submission {total}"))
    msgs.append(f"  eval --compare-full took {secs:.1f} s: {' '.join(cmd[1:])}")
    return msgs, fails


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("vortex", help="path to the vortex binary")
    ap.add_argument("repo", help="the repository root (submissions run there: models/needle)")
    ap.add_argument("--jobs", type=int, default=2,
                    help="vortex processes at once (default 2; each uses several threads)")
    ap.add_argument("--keep-tmp", action="store_true",
                    help="keep the temporary directory (the results store) and print its path")
    args = ap.parse_args()

    t0 = time.monotonic()
    vortex = os.path.abspath(args.vortex)
    repo = os.path.abspath(args.repo)
    if not os.access(vortex, os.X_OK):
        sys.exit(f"FAIL: {vortex} is not an executable")
    flow_dir = os.path.join(repo, FLOW_DIR)
    names = sorted(f[:-3] for f in os.listdir(flow_dir) if f.endswith(".py"))
    fails = Failures()
    flows = []
    for n in names:
        k = kind_of(n)
        if k is None:
            fails.add(n, "flow name must start with good_, broken_ or bad_")
        else:
            flows.append((n, k))
    for k in ("good", "broken", "bad"):
        if not any(kind == k for _, kind in flows):
            fails.add(FLOW_DIR, f"no {k}_*.py flow")
    if not any(k == "good" for _, k in flows):
        sys.exit("FAIL: " + "; ".join(fails.items))

    tmp = tempfile.mkdtemp(prefix="vortex-docs-flows-")
    db = os.path.join(tmp, "results.db")
    rel = {n: os.path.join(FLOW_DIR, n + ".py") for n, _ in flows}
    kinds = dict(flows)
    results = {}
    eval_msgs = []

    # Phase A: the broken and bad flows (quick) beside the first good flow, which pays for full
    # attention's run and caches it in the store. Phase B: the other good flows, which must find
    # full attention in the store, beside `eval --compare-full` of the first good flow that
    # reached the accuracy stage.
    goods = [n for n, k in flows if k == "good"]
    phase_a = [goods[0]] + [n for n, k in flows if k != "good"]
    phase_b = goods[1:]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futs = {pool.submit(submit, vortex, repo, db, rel[n]): n for n in phase_a}
        for f in concurrent.futures.as_completed(futs):
            results[futs[f]] = f.result()
        eval_fut, eval_name = None, None
        for n in goods:
            if n in results:
                v = results[n]["verdict"] or {}
                if results[n]["rc"] in (0, 3) and (stage(v, "accuracy") or {}).get("status") \
                        in ("passed", "failed"):
                    eval_name = n
                    eval_fut = pool.submit(compare_eval, vortex, repo, n, results[n])
                    break
        futs = {pool.submit(submit, vortex, repo, db, rel[n]): n for n in phase_b}
        for f in concurrent.futures.as_completed(futs):
            results[futs[f]] = f.result()
        if eval_fut is None:
            for n in goods:
                v = results[n]["verdict"] or {}
                if results[n]["rc"] in (0, 3) and (stage(v, "accuracy") or {}).get("status") \
                        in ("passed", "failed"):
                    eval_name = n
                    eval_fut = pool.submit(compare_eval, vortex, repo, n, results[n])
                    break
        if eval_fut is not None:
            msgs, efails = eval_fut.result()
            eval_msgs = msgs
            for where, m in efails:
                fails.add(where, m)
        else:
            fails.add("eval --compare-full", "no good flow reached the accuracy stage")

    # Verdicts.
    with_verdict = []
    print(f"{'flow':<28} {'verdict':<9} {'failed stage':<13} {'seconds':>8}")
    for n, k in flows:
        res = results[n]
        ok = check_verdict(n, k, os.path.join(repo, rel[n]), res, fails)
        v = res["verdict"] or {}
        verdict = ("ACCEPTED" if v.get("accepted") else "REJECTED") if ok else f"rc={res['rc']}"
        print(f"{n:<28} {verdict:<9} {str(v.get('failed_stage') or '-'):<13} "
              f"{res['seconds']:>8.1f}")
        if ok:
            with_verdict.append(n)
        if n in phase_b and ok:
            acc = stage(v, "accuracy")
            if acc is not None and not acc.get("figures", {}).get("full_cached", False):
                fails.add(n, "full attention's accuracy run was not taken from the store "
                             "(figures.full_cached false) although an earlier submission paid for it")
    if eval_name:
        print(f"eval --compare-full against the submission of {eval_name}:")
        for m in eval_msgs:
            print(m)

    # Leaderboard.
    cmd = [vortex, "leaderboard", "--db", db, "--json"]
    rc, out, err, _ = run(cmd, repo, 120)
    if rc != 0:
        fails.add("leaderboard", f"`{' '.join(cmd)}` exited {rc}: {err[-500:]!r}")
    else:
        try:
            board = {s["id"]: s for s in json.loads(out)["submissions"]}
        except (ValueError, KeyError, TypeError) as e:
            board = None
            fails.add("leaderboard", f"cannot read its JSON ({e}): {out[-300:]!r}")
        if board is not None:
            for n in with_verdict:
                v = results[n]["verdict"]
                s = board.get(v.get("id"))
                if s is None:
                    fails.add("leaderboard", f"submission {v.get('id')} ({n}) is missing")
                elif (s.get("name"), s.get("accepted"), s.get("failed_stage")) != \
                        (n, v["accepted"], v.get("failed_stage")):
                    fails.add("leaderboard", f"submission {v.get('id')} reads "
                                             f"{(s.get('name'), s.get('accepted'), s.get('failed_stage'))}, "
                                             f"submit said {(n, v['accepted'], v.get('failed_stage'))}")
            if len(board) != len(with_verdict):
                fails.add("leaderboard", f"{len(board)} submissions in a fresh store, "
                                         f"expected {len(with_verdict)}")

    elapsed = time.monotonic() - t0
    if args.keep_tmp:
        print(f"results store kept: {db}")
    else:
        shutil.rmtree(tmp)
    if fails.items:
        print(f"FAIL: {len(fails.items)} check(s) failed in {elapsed:.0f} s:")
        for m in fails.items:
            print("  " + m)
        return 1
    print(f"OK: {len(flows)} flows judged, every check passed in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
