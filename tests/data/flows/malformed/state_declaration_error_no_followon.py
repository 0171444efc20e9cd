"""Test flow."""
from vortex.flow import Flow, Field, State, Budget, D, G, P, N, maximum, softmax, sqrt, full, ones, zeros


class F(Flow):
    c = Field(1, D)
    acc = State(1, D, dtype="int8")

    def summarize(self, k, v):
        self.c = k.mean(axis=0, keepdims=True)

    def score(self, q):
        m = (q * self.c).sum(axis=-1) + self.acc.sum(axis=1)
        self.acc = self.acc
        return m.max(axis=-1)
