"""Test flow."""
from vortex.flow import Flow, Field, State, Budget, D, G, P, N, maximum, softmax, zeros


class F(Flow):
    c = Field(1, D)
    acc = State()

    def summarize(self, k, v):
        self.c = k.mean(axis=0, keepdims=True)
        self.acc = 0.0

    def score(self, q):
        self.acc = self.acc + 1.0
        return (q * self.c).sum(axis=-1).max(axis=-1) + self.acc
