"""Generator coverage: a chain of sums and means with keepdims (merged by the rewrite)."""
from vortex.flow import Flow, Field, D


class Chain(Flow):
    c = Field(1, D)

    def summarize(self, k, v):
        self.c = k.mean(axis=0, keepdims=True)

    def score(self, q):
        return (q * self.c).sum(axis=-1, keepdims=True).mean(axis=1).sum(axis=-1)
