"""Test flow."""
from vortex.flow import Flow, Field, State, Budget, D, G, P, N, maximum, softmax, zeros


class F(Flow):
    c = Field(1, D)
    budget = Budget(floor=8, cap=4)

    def summarize(self, k, v):
        self.c = k.mean(axis=0, keepdims=True)

    def score(self, q):
        return (q * self.c).sum(axis=-1).max(axis=-1)
