"""Test flow."""
from vortex.flow import Flow, Field, State, Budget, D, G, P, N, maximum, softmax, zeros


class F(Flow):
    c = Field(P // 3, D)

    def summarize(self, k, v):
        self.c = k.fold_max(3, axis=0)

    def score(self, q):
        return (q[:, None, :] * self.c[:, None, :, :]).sum(axis=-1).max(axis=(1, 2))
