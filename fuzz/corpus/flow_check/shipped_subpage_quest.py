"""Sub-page Quest: Quest bounds on groups of 4 tokens, the page scored by its best group.

Follows LServe's hierarchical paging (Yang et al., "LServe: Efficient Long-sequence LLM Serving
with Unified Sparse Attention", MLSys 2025): a physical page is split into logical sub-pages that
each keep their keys' elementwise max and min, so one outlier key does not widen the bound of
the whole page; a physical page is as important as its most important sub-page.
Score: max over heads and over the page's P/4 groups of sum_d max(q_d * kmax_d, q_d * kmin_d).
"""
from vortex.flow import Flow, Field, Budget, D, P, maximum

GROUP = 4


class SubpageQuest(Flow):
    kmax = Field(P // GROUP, D)
    kmin = Field(P // GROUP, D)
    budget = Budget(ratio=1/16, sink=1, recent=2, dense_layers=[0])

    def summarize(self, k, v):
        self.kmax = k.fold_max(GROUP, axis=0)  # [P, D] -> [P/4, D]
        self.kmin = k.fold_min(GROUP, axis=0)

    def score(self, q):
        qg = q[:, None, :]  # [G, 1, D]
        kmax = self.kmax[:, None, :, :]  # [N, 1, P/4, D]
        kmin = self.kmin[:, None, :, :]
        bound = maximum(qg * kmax, qg * kmin).sum(axis=-1)  # [N, G, P/4]
        return bound.max(axis=(1, 2))  # best group of the best head: [N]
