"""Broken on purpose: a Field (the mean value norm) is written in summarize but never read.

The intent was value_gated-style weighting; the score forgot to use vnorm, so its bytes would be
stored and read for nothing. The compiler refuses such a field.
"""
from vortex.flow import Flow, Field, Budget, D, l2norm

class BrokenUnusedField(Flow):
    centroid = Field(1, D, dtype="int8")
    vnorm = Field()  # EXPECT-ERROR
    budget = Budget(ratio=1/8, sink=1, recent=2)

    def summarize(self, k, v):
        self.centroid = k.mean(axis=0, keepdims=True)
        self.vnorm = l2norm(v, axis=-1).mean()

    def score(self, q):
        return (q * self.centroid).sum(axis=-1).mean(axis=-1)
