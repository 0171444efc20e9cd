"""Generator coverage: a mean count no single reduction takes, a whole-page field, a mean over
every axis including the pages."""
from vortex.flow import Flow, Field, D, P


class OddScale(Flow):
    big = Field(P, D)
    s = Field(1, 1)

    def summarize(self, k, v):
        self.big = k
        self.s = v.mean(axis=(0, 1), keepdims=True)

    def score(self, q):
        return (self.big * self.s).sum(axis=-1).mean(axis=-1) + (q * self.s).mean()
