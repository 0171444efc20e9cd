"""Broken on purpose: a Python syntax error (a missing colon after the def of score).

Otherwise the mean-key centroid flow, scored by the group's mean dot product.
"""
from vortex.flow import Flow, Field, Budget, D

class BrokenSyntax(Flow):
    centroid = Field(1, D, dtype="int8")
    budget = Budget(ratio=1/8, sink=1, recent=2)

    def summarize(self, k, v):
        self.centroid = k.mean(axis=0, keepdims=True)

    def score(self, q)  # EXPECT-ERROR
        return (q * self.centroid).sum(axis=-1).mean(axis=-1)
