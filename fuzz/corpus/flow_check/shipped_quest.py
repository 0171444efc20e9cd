"""Quest: query-aware page selection (Tang et al., "Quest: Query-Aware Sparsity for Efficient
Long-Context LLM Inference", ICML 2024).

Each page keeps the elementwise max and min of its keys. For a query q the largest possible
q . k over the page's keys is bounded by sum_d max(q_d * kmax_d, q_d * kmin_d); pages are ranked
by that upper bound, taking the most optimistic head of the GQA group.
Score: max over heads of the upper bound on q . k within the page.
"""
from vortex.flow import Flow, Field, Budget, D, maximum


class Quest(Flow):
    kmax = Field(1, D)
    kmin = Field(1, D)
    budget = Budget(ratio=1/16, sink=1, recent=2, dense_layers=[0])

    def summarize(self, k, v):
        self.kmax = k.max(axis=0, keepdims=True)
        self.kmin = k.min(axis=0, keepdims=True)

    def score(self, q):
        bound = maximum(q * self.kmax, q * self.kmin)  # [G, D] with [N, 1, D] -> [N, G, D]
        return bound.sum(axis=-1).max(axis=-1)  # [N, G] -> [N]
