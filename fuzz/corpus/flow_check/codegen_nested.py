"""Generator coverage: products inside products, a max that must not be distributed."""
from vortex.flow import Flow, Field, D, maximum


class Nested(Flow):
    c = Field(1, D)
    m = Field(1, D)

    def summarize(self, k, v):
        self.c = k.mean(axis=0, keepdims=True)
        self.m = v.max(axis=0, keepdims=True)

    def score(self, q):
        x = ((q * 2.0) * (self.c * self.m)).mean(axis=(1, 2))
        return x + maximum(q * self.c, q * self.m).sum(axis=-1).max(axis=-1)
