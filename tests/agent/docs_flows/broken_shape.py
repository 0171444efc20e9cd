"""Broken on purpose: score returns one score per page and head, [N, G], not [N].

The centroid dot product is computed per head but never reduced over the group's heads.
"""
from vortex.flow import Flow, Field, Budget, D

class BrokenShape(Flow):
    centroid = Field(1, D, dtype="int8")
    budget = Budget(ratio=1/8, sink=1, recent=2)

    def summarize(self, k, v):
        self.centroid = k.mean(axis=0, keepdims=True)

    def score(self, q):
        logits = (q * self.centroid).sum(axis=-1)     # [N, G]
        return logits  # EXPECT-ERROR
