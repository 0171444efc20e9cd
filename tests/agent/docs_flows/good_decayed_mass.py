"""Decayed attention mass with State (H2O-style heavy hitters, Zhang et al., NeurIPS 2023).

Each page keeps its mean key in 8 bits. Every decode step estimates each scoreable page's share
of the attention (softmax over pages of the scaled centroid logits, averaged over the group's
heads) and adds it to a per-request running total that decays by DECAY per step. The score is
that running total plus the current step's estimate again, so a page that was important
recently stays selected while the current query still decides the ranking among fresh pages.
"""
from vortex.flow import Flow, Field, State, Budget, D, softmax, sqrt

DECAY = 0.8

class DecayedMass(Flow):
    centroid = Field(1, D, dtype="int8")
    mass = State()                                  # [N] in score, f32, starts at 0
    budget = Budget(ratio=1/4, sink=1, recent=2, dense_layers=[0])

    def summarize(self, k, v):
        self.centroid = k.mean(axis=0, keepdims=True)

    def score(self, q):
        logits = (q * self.centroid).sum(axis=-1) / sqrt(D)    # [N, G]
        share = softmax(logits, axis=0).mean(axis=-1)          # [N]
        mass = DECAY * self.mass + share
        self.mass = mass
        return mass + share
