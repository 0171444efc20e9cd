"""Golden: block top-k (page centroid, mean over heads), with dead code and foldable constants."""
from vortex.flow import Flow, Field, Budget, D

SCALE = 2 * 0.5


class Centroid(Flow):
    centroid = Field(1, D)
    budget = Budget(pages=8, sink=2, recent=1, dense_layers=[0, 1])

    def summarize(self, k, v):
        unused = v.max(axis=0)
        self.centroid = k.mean(axis=0, keepdims=True) * SCALE

    def score(self, q):
        logits = (q * self.centroid).sum(axis=-1) + (1 - 1)
        return logits.mean(axis=-1)
