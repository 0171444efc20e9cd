"""Broken on purpose: the Budget gives both a fixed page count and a ratio, which are exclusive.

Otherwise the mean-key centroid flow, scored by the group's mean dot product.
"""
from vortex.flow import Flow, Field, Budget, D

class BrokenBudget(Flow):
    centroid = Field(1, D, dtype="int8")
    budget = Budget(pages=16, ratio=1/8, sink=1, recent=2)  # EXPECT-ERROR

    def summarize(self, k, v):
        self.centroid = k.mean(axis=0, keepdims=True)

    def score(self, q):
        return (q * self.centroid).sum(axis=-1).mean(axis=-1)
