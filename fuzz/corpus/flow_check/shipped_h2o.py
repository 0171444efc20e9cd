"""H2O-style heavy hitters: keep the pages that have gathered the most attention so far.

After H2O (Zhang et al., "H2O: Heavy-Hitter Oracle for Efficient Generative Inference of Large
Language Models", NeurIPS 2023), at page granularity and without evicting anything: every decode
step adds each page's estimated attention probability (a softmax over pages of the centroid
logits, per head, best head) to a per-request running mass that decays by 0.9 per step, so a
page that was important recently or often stays selected.
Score: the updated decayed attention mass of the page (also written back as the page's state).
"""
from vortex.flow import Flow, Field, State, Budget, D, softmax, sqrt

DECAY = 0.9


class H2O(Flow):
    centroid = Field(1, D)
    mass = State()  # per request and page; 0 the first time a page is scored
    budget = Budget(ratio=1/16, sink=1, recent=2, dense_layers=[0])

    def summarize(self, k, v):
        self.centroid = k.mean(axis=0, keepdims=True)

    def score(self, q):
        logits = (q * self.centroid).sum(axis=-1) / sqrt(D)  # [N, G]
        attention = softmax(logits, axis=0).max(axis=-1)  # [N]
        mass = DECAY * self.mass + attention
        self.mass = mass
        return mass
