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

With --perplexity-data (text files), each context also gets a perplexity table: `vortex eval
--perplexity --compare-full` with every flow at each ratio (one process per ratio, full
attention's run shared), the paired NLL difference per token with its 95% interval over the
documents, and the perplexity ratio. --recall adds --record-recall (CPU only) to both kinds of
run: the mean attention recall of the flow's decode steps.
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
             timeout, recall=False):
    cmd = [vortex, "eval", "--model", model, "--tasks", ",".join(tasks), "--context",
           str(context), "--samples", str(samples), "--seed", str(seed), "--device", device,
           "--json"]
    if threads:
        cmd += ["--threads", str(threads)]
    if flow:
        cmd += ["--flow", flow, "--topk-ratio", str(ratio)]
        if recall:
            cmd.append("--record-recall")
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    report = json.loads(p.stdout)
    report["wall_s"] = time.time() - t0
    return report


def run_perplexity(args, context, flows, ratio):
    cmd = [args.vortex, "eval", "--model", args.model, "--perplexity", "--data",
           args.perplexity_data, "--context", str(context), "--samples",
           str(args.perplexity_documents), "--score-tokens", str(args.perplexity_score_tokens),
           "--device", args.device, "--compare-full", "--topk-ratio", str(ratio), "--json"]
    for f in flows:
        cmd += ["--flow", f]
    if args.recall:
        cmd.append("--record-recall")
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return json.loads(p.stdout)


def perplexity_tables(args, contexts, flows, ratios):
    lines = []
    for c in contexts:
        reports = {}
        for r in ratios:
            t0 = time.time()
            reports[r] = run_perplexity(args, c, flows, r)
            print(f"perplexity, context {c}, ratio {r:g}: {time.time() - t0:.0f} s", flush=True)
        first = reports[ratios[0]]
        full = first["runs"][0]
        lines.append(f"### Perplexity at {c} tokens ({args.device}, {first['documents']} documents, "
                     f"last {first['score_tokens']} tokens of each scored)\n")
        lines.append("| flow | ratio | KV read | NLL/token | NLL diff (95% CI) | perplexity |"
                     + (" recall |" if args.recall else ""))
        lines.append("|---|---|---|---|---|---|" + ("---|" if args.recall else ""))
        lines.append(f"| full | - | 1.000 | {full['nll_mean']:.4f} | - | "
                     f"{full['perplexity']:.3f} |" + (" - |" if args.recall else ""))
        for f in flows:
            for r in ratios:
                run = next(x for x in reports[r]["runs"][1:]
                           if x["flow"] == f or flow_name(x["flow"]) == flow_name(f))
                d = run["vs_full"]
                ci = "" if d["nll_diff_ci95"] is None else f" ± {d['nll_diff_ci95']:.4f}"
                kv = run.get("kv_read_fraction_sparse_layers", run.get("kv_read_fraction", 1.0))
                cell = (f"| {flow_name(f)} | {r:g} | {kv:.3f} | {run['nll_mean']:.4f} | "
                        f"{d['nll_diff_mean']:+.4f}{ci} | "
                        f"{100 * (d['perplexity_ratio'] - 1):+.2f}% |")
                if args.recall:
                    cell += f" {run.get('recall_mean', float('nan')):.3f} |"
                lines.append(cell)
        lines.append("")
        with open(f"{args.out}.perplexity-{c}.json", "w") as out:
            json.dump({str(r): rep for r, rep in reports.items()}, out)
    return lines


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
    ap.add_argument("--perplexity-data", default="",
                    help="text files (comma-separated): add perplexity tables")
    ap.add_argument("--perplexity-documents", type=int, default=8)
    ap.add_argument("--perplexity-score-tokens", type=int, default=64)
    ap.add_argument("--recall", action="store_true",
                    help="record attention recall (--record-recall, CPU only)")
    ap.add_argument("--skip-tasks", action="store_true",
                    help="only the perplexity tables (with --perplexity-data)")
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

    if args.recall and args.device != "cpu":
        sys.exit("--recall needs --device cpu (recall is recorded by the CPU runner)")
    if args.skip_tasks:
        if not args.perplexity_data:
            sys.exit("--skip-tasks needs --perplexity-data")
        lines = perplexity_tables(args, contexts, flows, ratios)
        with open(args.out + ".md", "w") as out:
            out.write("\n".join(lines) + "\n")
        print("\n".join(lines))
        return 0

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
                               args.samples, args.seed, args.threads, f, r, args.timeout,
                               args.recall):
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
        lines.append(head + (" recall |" if args.recall else ""))
        lines.append("|" + "---|" * (4 + len(tasks) + (1 if args.recall else 0)))

        def row(name, ratio, rep):
            per = [rep["tasks"][t]["accuracy"] for t in tasks]
            kv = rep.get("kv_read_fraction_sparse_layers", rep.get("kv_read_fraction", 1.0))
            cells = " | ".join(f"{a:.2f}" for a in per)
            out = (f"| {name} | {ratio} | {kv:.3f} | {cells} | "
                   f"{sum(per) / len(per):.3f} |")
            if args.recall:
                rec = rep.get("recall_mean", rep.get("run", {}).get("recall_mean"))
                out += " - |" if rec is None else f" {rec:.3f} |"
            return out

        lines.append(row("full", "-", full))
        for f in flows:
            for r in ratios:
                lines.append(row(flow_name(f), f"{r:g}", results[(c, f, r)]))
        lines.append("")
    lines.append("KV read: share of the KV cache that decode attention read in the sparse layers.")
    if args.perplexity_data:
        lines.append("")
        lines += perplexity_tables(args, contexts, flows, ratios)
    with open(args.out + ".md", "w") as out:
        out.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {args.out}.md and {args.out}.jsonl ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
