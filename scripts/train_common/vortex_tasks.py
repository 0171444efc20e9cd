"""Training samples from `vortex eval --dump-tasks --dump-ids`: the evaluation's own generator
and tokenization, so a model trains on exactly what `vortex eval` scores. Shared by the
training scripts of models/needle and models/natural."""
import concurrent.futures
import json
import os
import random
import subprocess
import time

import torch


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class TooShort(Exception):
    """The task does not fit the requested context (vortex says so)."""


class Vortex:
    """Runs `vortex eval --dump-tasks` and reads the samples back."""

    def __init__(self, binary, model_dir, scratch):
        self.binary, self.model_dir, self.scratch = binary, model_dir, scratch
        self.calls = 0

    def dump(self, task, context, samples, seed, model_dir=None, with_ids=True, variant=None):
        """variant: training-only task variants, e.g. {"vt_chains": 4, "vt_hops": 2,
        "vt_value_digits": 1} (the `--vt-chains` / `--vt-hops` / `--vt-value-digits` flags of
        vortex eval); None = the evaluation's tasks."""
        self.calls += 1
        path = os.path.join(self.scratch, f"dump_{os.getpid()}_{self.calls}_{task}_{context}.jsonl")
        cmd = [self.binary, "eval", "--model", model_dir or self.model_dir, "--tasks", task,
               "--context", str(context), "--samples", str(samples), "--seed", str(seed),
               "--dump-tasks", path]
        for key, value in (variant or {}).items():
            cmd += ["--" + key.replace("_", "-"), str(value)]
        if with_ids:
            cmd.append("--dump-ids")
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            if "too short" in r.stderr:
                raise TooShort(r.stderr.strip())
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
        try:
            with open(path, encoding="utf-8") as f:
                return [json.loads(line) for line in f if line.strip()]
        finally:
            os.remove(path)


def to_example(row, eos_id):
    """Input ids and next-token labels, loss only on the answer tokens and the final eos."""
    prompt, target = row["prompt_ids"], row["target_ids"] + [eos_id]
    seq = prompt + target
    labels = [-100] * (len(prompt) - 1) + target
    return seq[:-1], labels


def collate(examples, pad_id, device):
    # Right padding: causal attention keeps real tokens from seeing the pads after them, so no
    # attention mask is needed (and SDPA can take its causal fast path).
    width = max(len(x) for x, _ in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    for i, (x, y) in enumerate(examples):
        ids[i, :len(x)] = torch.tensor(x)
        labels[i, :len(y)] = torch.tensor(y)
    return ids.to(device, non_blocking=True), labels.to(device, non_blocking=True)


class TaskStream:
    """Batches of fresh samples: each chunk picks a context of the stage, asks vortex for
    samples of every task (in proportion to the task weights) and cuts them into batches of
    about tokens_per_batch tokens. Chunks are generated ahead on a worker thread."""

    def __init__(self, vortex, batches_per_chunk, seed, eos_id, prefetch=3):
        self.vortex = vortex
        self.batches_per_chunk = batches_per_chunk
        self.rng = random.Random(seed)
        self.next_seed = seed  # a checkpoint stores it: a resumed run draws new samples
        self.eos_id = eos_id
        self.too_short = set()  # (task, context) pairs vortex refused
        self.prefetch = prefetch
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=prefetch)
        self.pending = []

    def _chunk(self, context, seed, weights, tokens_per_batch, max_samples, variant=None):
        batch = max(1, min(max_samples, tokens_per_batch // context))
        want = batch * self.batches_per_chunk
        total_w = sum(weights.values())
        rows = []
        for i, (task, w) in enumerate(sorted(weights.items())):
            if w <= 0:
                continue
            if (task, context) in self.too_short:
                continue
            n = max(1, round(want * w / total_w))
            try:
                rows += self.vortex.dump(task, context, n, seed * 16 + i, variant=variant)
            except TooShort:
                self.too_short.add((task, context))
        random.Random(seed).shuffle(rows)
        examples = [to_example(r, self.eos_id) for r in rows]
        return [examples[i:i + batch] for i in range(0, len(examples), batch)], rows

    def _submit(self, contexts, *chunk_args):
        context = self.rng.choice(contexts)
        self.next_seed += 1
        return self.pool.submit(self._chunk, context, self.next_seed, *chunk_args)

    def batches(self, contexts, weights, tokens_per_batch, max_samples, variant=None):
        """Yields (examples, rows_of_chunk) forever for a stage: its contexts, task weights and
        batch size (tokens_per_batch // context samples, at most max_samples)."""
        for f in self.pending:  # chunks of the previous stage's contexts
            f.cancel()
        args = (weights, tokens_per_batch, max_samples, variant)
        self.pending = [self._submit(contexts, *args) for _ in range(self.prefetch)]
        while True:
            chunk, rows = self.pending.pop(0).result()
            self.pending.append(self._submit(contexts, *args))
            for b in chunk:
                yield b, rows


def final_eval(vortex_bin, out_dir, fcfg, tasks, timeout_s=None):
    """The model's real scores: vortex eval itself, greedy, on evaluation seeds. Falls back to
    the CPU (with fewer samples: long prompts are slow there) when the GPU run fails."""
    results = {}
    for context in fcfg["contexts"]:
        def run(device, samples):
            cmd = [vortex_bin, "eval", "--model", out_dir, "--tasks", ",".join(tasks),
                   "--context", str(context), "--samples", str(samples),
                   "--seed", str(fcfg["seed"]), "--device", device, "--json"]
            try:
                return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
            except subprocess.TimeoutExpired:
                return subprocess.CompletedProcess(cmd, 124, "", f"timed out after {timeout_s} s")
        t_eval = time.time()
        r = run(fcfg["device"], fcfg["samples_per_task"])
        if r.returncode != 0 and fcfg["device"] != "cpu":
            log(f"vortex eval on {fcfg['device']} failed ({r.stderr.strip()[-300:]}); "
                f"trying the CPU with {fcfg['cpu_samples_per_task']} samples per task")
            r = run("cpu", fcfg["cpu_samples_per_task"])
        if r.returncode != 0:
            log(f"vortex eval at context {context} failed: {r.stderr.strip()}")
            continue
        results[context] = json.loads(r.stdout)
        accs = ", ".join(f"{t} {v['accuracy']:.3f}" for t, v in results[context]["tasks"].items())
        log(f"vortex eval, context {context}: {accs} ({time.time() - t_eval:.0f} s)")
    return results
