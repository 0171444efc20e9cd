#!/usr/bin/env python3
"""Accuracy against the KV budget: runs `vortex eval` for full attention and for every flow at
every budget ratio and context, and writes one markdown table per context (and the raw reports
as JSON lines).

Example (the tables of docs/accuracy.md):
  python3 scripts/accuracy_table.py --vortex build/vortex --model models/needle \\
      --contexts 4096,8192 --device cpu --samples 20 --jobs 4 --out acc-cpu
  python3 scripts/accuracy_table.py --vortex build/vortex --model models/needle \\
      --contexts 16384 --device cuda --samples 50 --out acc-gpu

Each cell is the mean accuracy over the tasks (and the per-task figures are in the markdown
rows); the flows' own budget rules are used (sink, recent, dense layers) with only the ratio
replaced by --ratios. Only the Python standard library is needed.
"""
import argparse
import concurrent.futures
import glob
import json
import os
import subprocess
import sys
import time


def run_eval(vortex, model, context, device, tasks, samples, seed, threads, flow, ratio,
             timeout):
    cmd = [vortex, "eval", "--model", model, "--tasks", ",".join(tasks), "--context",
           str(context), "--samples", str(samples), "--seed", str(seed), "--device", device,
           "--json"]
    if threads:
        cmd += ["--threads", str(threads)]
    if flow:
        cmd += ["--flow", flow, "--topk-ratio", str(ratio)]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    report = json.loads(p.stdout)
    report["wall_s"] = time.time() - t0
    return report


def flow_name(path):
    return os.path.splitext(os.path.basename(path))[0] if path else "full"


def jsonl_row(context, flow, ratio, report):
    """One evaluation as a line of OUT.jsonl (and of OUT.partial.jsonl, which --reuse reads)."""
    return json.dumps({"context": context, "flow": flow_name(flow), "ratio": ratio,
                       "report": report}) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vortex", required=True, help="the vortex binary")
    ap.add_argument("--model", required=True, help="model directory")
    ap.add_argument("--contexts", default="4096,8192", help="comma-separated prompt lengths")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--tasks", default="niah_single,niah_multikey,niah_multivalue,vt")
    ap.add_argument("--flows", default="flows/*.py", help="glob or comma-separated flow files")
    ap.add_argument("--ratios", default="0.25,0.125,0.0625", help="budget ratios")
    ap.add_argument("--samples", type=int, default=20, help="samples per task")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1, help="evaluations run at once")
    ap.add_argument("--threads", type=int, default=0, help="--threads of each evaluation")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per evaluation")
    ap.add_argument("--out", required=True, help="output prefix: OUT.md and OUT.jsonl")
    ap.add_argument("--reuse", action="append", default=[],
                    help="a .jsonl (or .partial.jsonl) of an earlier run of this script: its "
                         "evaluations with the same settings are taken instead of rerun "
                         "(repeatable; resumes an interrupted run)")
    args = ap.parse_args()

    if "*" in args.flows:
        flows = sorted(glob.glob(args.flows))
    else:
        flows = [f for f in args.flows.split(",") if f]
    if not flows:
        sys.exit(f"no flow matches {args.flows}")
    for f in flows:
        if not os.path.isfile(f):
            sys.exit(f"flow file not found: {f}")
    contexts = [int(c) for c in args.contexts.split(",")]
    ratios = [float(r) for r in args.ratios.split(",")]
    tasks = args.tasks.split(",")

    jobs = []
    for c in contexts:
        jobs.append((c, None, None))
        for f in flows:
            for r in ratios:
                jobs.append((c, f, r))
    print(f"{len(jobs)} evaluations: {len(contexts)} contexts x (full + {len(flows)} flows x "
          f"{len(ratios)} ratios), {len(tasks)} tasks x {args.samples} samples, "
          f"device {args.device}", flush=True)

    results = {}
    wanted = {(c, flow_name(f), r): (c, f, r) for (c, f, r) in jobs}
    for path in args.reuse:
        with open(path) as f:
            for line in f:
                row = json.loads(line)
                rep = row["report"]
                key = wanted.get((row["context"], row["flow"], row["ratio"]))
                same = (rep.get("seed") == args.seed and rep.get("samples") ==
                        args.samples * len(tasks) and sorted(rep["tasks"]) == sorted(tasks))
                if key is not None and same and key not in results:
                    results[key] = rep
    if results:
        print(f"reusing {len(results)} evaluations from {', '.join(args.reuse)}", flush=True)
    jobs = [j for j in jobs if j not in results]
    t0 = time.time()
    partial = open(args.out + ".partial.jsonl", "w")  # every report as it arrives
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(run_eval, args.vortex, args.model, c, args.device, tasks,
                               args.samples, args.seed, args.threads, f, r, args.timeout):
                   (c, f, r) for (c, f, r) in jobs}
        for i, fut in enumerate(concurrent.futures.as_completed(futures), 1):
            key = futures[fut]
            results[key] = fut.result()
            c, f, r = key
            acc = results[key]["accuracy"]
            partial.write(jsonl_row(c, f, r, results[key]))
            partial.flush()
            print(f"[{i}/{len(jobs)} {time.time() - t0:.0f} s] context {c} {flow_name(f)}"
                  f"{'' if r is None else f' ratio {r:g}'}: {acc:.3f}", flush=True)

    partial.close()
    os.remove(args.out + ".partial.jsonl")
    with open(args.out + ".jsonl", "w") as out:
        for (c, f, r), rep in sorted(results.items(), key=lambda kv: (kv[0][0], str(kv[0][1]),
                                                                      kv[0][2] or 1.0)):
            out.write(jsonl_row(c, f, r, rep))

    lines = []
    for c in contexts:
        full = results[(c, None, None)]
        lines.append(f"### {c} tokens ({args.device}, {args.samples} samples per task, "
                     f"seed {args.seed})\n")
        head = "| flow | ratio | KV read | " + " | ".join(tasks) + " | mean |"
        lines.append(head)
        lines.append("|" + "---|" * (4 + len(tasks)))

        def row(name, ratio, rep):
            per = [rep["tasks"][t]["accuracy"] for t in tasks]
            kv = rep.get("kv_read_fraction_sparse_layers", rep.get("kv_read_fraction", 1.0))
            cells = " | ".join(f"{a:.2f}" for a in per)
            return (f"| {name} | {ratio} | {kv:.3f} | {cells} | "
                    f"{sum(per) / len(per):.3f} |")

        lines.append(row("full", "-", full))
        for f in flows:
            for r in ratios:
                lines.append(row(flow_name(f), f"{r:g}", results[(c, f, r)]))
        lines.append("")
    lines.append("KV read: share of the KV cache that decode attention read in the sparse layers.")
    with open(args.out + ".md", "w") as out:
        out.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {args.out}.md and {args.out}.jsonl ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
