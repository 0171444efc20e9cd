"""Generator coverage: a per-page score (no cross-page op) with a State that is read and then
written, and reductions over D of each kind (mean, max, min, l2norm), so the cooperative kernel's
split reductions, its shuffles and its one writer per page are all exercised."""
from vortex.flow import Flow, Field, State, D, l2norm


class PageState(Flow):
    c = Field(1, D)
    kmax = Field(1, D)
    acc = State(1, 2)

    def summarize(self, k, v):
        self.c = k.mean(axis=0, keepdims=True)
        self.kmax = k.max(axis=0, keepdims=True)

    def score(self, q):
        dots = (q * self.c).mean(axis=-1)  # [N, G]
        peak = (q * self.kmax).max(axis=-1)
        low = (q * self.kmax).min(axis=-1)
        spread = l2norm(self.kmax - self.c, axis=-1)  # [N, 1]
        a = self.acc
        score = dots.max(axis=-1) + 0.1 * (peak - low).mean(axis=-1) - 0.01 * spread[:, 0]
        self.acc = a * 0.5 + score[:, None, None]
        return score + a.sum(axis=(1, 2))
