"""A deliberately bad selector: the negated centroid score, so it picks the least relevant pages.

Each page keeps its mean key (int8, as block top-k does), but the score is minus the group's mean
dot product with the query: the pages the query attends to least win the top-k. It compiles and
runs; the judge should reject it at the recall or accuracy stage.
"""
from vortex.flow import Flow, Field, Budget, D

class NegatedCentroid(Flow):
    centroid = Field(1, D, dtype="int8")
    budget = Budget(ratio=1/8, sink=1, recent=2, dense_layers=[0])

    def summarize(self, k, v):
        self.centroid = k.mean(axis=0, keepdims=True)

    def score(self, q):
        return -(q * self.centroid).sum(axis=-1).mean(axis=-1)
