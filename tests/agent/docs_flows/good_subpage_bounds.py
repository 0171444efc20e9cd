"""Sub-page Quest bounds (LServe-style hierarchical paging, Yang et al., 2025; bounds from Quest).

The page is cut into sub-blocks of SUB consecutive tokens. For each sub-block the page keeps the
elementwise key maximum (fold_max) and minimum (fold_min), in 8 bits. A sub-block's bound on a
query's logit is sum_d max(q_d * kmax_d, q_d * kmin_d); a page is as good as its best sub-block,
and the group's heads are averaged, so the score is the mean over heads of the best sub-block
bound. Tighter than whole-page bounds because one outlier key no longer widens the whole page.
"""
from vortex.flow import Flow, Field, Budget, D, P, maximum

SUB = 4

class SubpageBounds(Flow):
    kmax = Field(P // SUB, D, dtype="int8")
    kmin = Field(P // SUB, D, dtype="int8")
    budget = Budget(ratio=1/8, sink=1, recent=2, dense_layers=[0])

    def summarize(self, k, v):                      # k: [P, D]
        self.kmax = k.fold_max(SUB, axis=0)         # [P/SUB, D]
        self.kmin = k.fold_min(SUB, axis=0)

    def score(self, q):                             # q: [G, D]
        qg = q[:, None, :]                          # [G, 1, D]
        hi = self.kmax[:, None, :, :]               # [N, 1, P/SUB, D]
        lo = self.kmin[:, None, :, :]
        bound = maximum(qg * hi, qg * lo).sum(axis=-1)   # [N, G, P/SUB]
        best = bound.max(axis=-1)                   # [N, G]
        return best.mean(axis=-1)                   # [N]
