"""Quest with 8-bit bounds (Tang et al., ICML 2024, "Quest: Query-Aware Sparsity").

Each page keeps the elementwise maximum and minimum of its keys, both stored as int8. For each
channel, max(q * kmax, q * kmin) is the largest value q_d * k_d can take inside the page, so the
sum over channels is an upper bound on any key's logit in the page. The score is that bound for
the most optimistic query head of the group: a page is worth reading if some head may attend
to it strongly.
"""
from vortex.flow import Flow, Field, Budget, D, maximum

class QuestInt8(Flow):
    kmax = Field(1, D, dtype="int8")
    kmin = Field(1, D, dtype="int8")
    budget = Budget(ratio=1/8, sink=1, recent=2, dense_layers=[0])

    def summarize(self, k, v):                    # k, v: [P, D]
        self.kmax = k.max(axis=0, keepdims=True)  # [1, D]
        self.kmin = k.min(axis=0, keepdims=True)  # [1, D]

    def score(self, q):                           # q: [G, D]; fields: [N, 1, D]
        bound = maximum(q * self.kmax, q * self.kmin)   # [N, G, D]
        return bound.sum(axis=-1).max(axis=-1)          # [N, G] -> [N]
