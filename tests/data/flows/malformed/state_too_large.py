"""Test flow."""
from vortex.flow import Flow, Field, State, Budget, D, G, P, N, maximum, softmax, sqrt, full, ones, zeros


class F(Flow):
    c = Field(1, D)
    s = State(256, 512)

    def summarize(self, k, v):
        self.c = k.mean(axis=0, keepdims=True)

    def score(self, q):
        m = (q * self.c).sum(axis=-1).max(axis=-1) + self.s.sum(axis=(1, 2))
        self.s = self.s
        return m
