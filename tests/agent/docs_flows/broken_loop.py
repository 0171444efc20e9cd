"""Broken on purpose: a for loop over the group's heads, which the flow language forbids.

The intent is the best head's centroid dot product; reductions (max over axis -1) say it
without a loop.
"""
from vortex.flow import Flow, Field, Budget, D, G, maximum

class BrokenLoop(Flow):
    centroid = Field(1, D, dtype="int8")
    budget = Budget(ratio=1/8, sink=1, recent=2)

    def summarize(self, k, v):
        self.centroid = k.mean(axis=0, keepdims=True)

    def score(self, q):
        logits = (q * self.centroid).sum(axis=-1)     # [N, G]
        best = logits[:, 0]
        for h in range(G):  # EXPECT-ERROR
            best = maximum(best, logits[:, h])
        return best
