"""Generator coverage: reductions over the pages (mean, l2norm, max, min with keepdims), a
softmax of a value computed after one, N as a number, and a State with two dims."""
from vortex.flow import Flow, Field, State, D, N, softmax, exp, l2norm


class RowOps(Flow):
    c = Field(1, D)
    hist = State(1, 2)

    def summarize(self, k, v):
        self.c = k.mean(axis=0, keepdims=True)

    def score(self, q):
        logits = (q * self.c).sum(axis=-1)
        centered = logits - logits.mean(axis=0)
        spread = l2norm(centered, axis=0)
        probs = softmax(centered / (spread + 1.0), axis=0)
        top = probs.max()
        low = logits.min(axis=(0, 1), keepdims=True)
        h = self.hist
        score = probs.max(axis=-1) / top + exp(-N / 100.0) + (logits - low).mean(axis=-1) * 0.01
        self.hist = h * 0.5 + score[:, None, None]
        return score + h.sum(axis=(1, 2))
