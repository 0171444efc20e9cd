"""Golden: per-head softmax over pages feeding a decayed per-request state (H2O style)."""
from vortex.flow import Flow, Field, State, D, softmax, sqrt, exp

DECAY = 0.5 + 0.25


class SoftmaxState(Flow):
    """Class docstring wins over the module's."""
    centroid = Field(1, D)
    mass = State()

    def summarize(self, k, v):
        self.centroid = k.mean(axis=0, keepdims=True)

    def score(self, q):
        logits = (q @ self.centroid.transpose(0, 2, 1))[..., 0] / sqrt(D)  # [N, G]
        probs = softmax(logits, axis=0)
        best = probs.max(axis=-1)
        self.mass = self.mass * DECAY + best
        return self.mass - exp(0.0)
