"""Generator coverage: a mean over a product broadcast on both sides, a fold with keepdims."""
from vortex.flow import Flow, Field, D, P


class BothSides(Flow):
    a = Field(P // 4, 1)
    c = Field(1, D)

    def summarize(self, k, v):
        self.a = v.fold_mean(4, axis=0).mean(axis=-1, keepdims=True)
        self.c = k.mean(axis=0, keepdims=True)

    def score(self, q):
        both = (self.a * self.c).mean(axis=(1, 2))
        return both * (q * self.c).mean(axis=-1).sum(axis=-1)
