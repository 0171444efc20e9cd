"""Generator coverage: a row-invariant value that uses N (the query scaled by the row's number of
scoreable pages, computed once per row before any page is scored), with an int8 Field."""
from vortex.flow import Flow, Field, D, N


class RowInvariantN(Flow):
    c = Field(1, D, dtype="int8")

    def summarize(self, k, v):
        self.c = k.mean(axis=0, keepdims=True)

    def score(self, q):
        scaled = q * (1.0 + N / 64.0)
        return (scaled * self.c).sum(axis=-1).max(axis=-1)
