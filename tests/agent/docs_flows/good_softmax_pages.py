"""Per-head softmax over pages of centroid logits, best head (in the spirit of GQA-aware
page selection, e.g. "gqa_softmax_max").

Each page keeps its mean key (bf16). Each query head turns its scaled centroid logits into a
probability distribution over the scoreable pages; the page's score is the largest probability
any head of the group gives it. A head that points sharply at one page keeps that page even if
the other heads of the group look elsewhere, which a plain mean of logits would average away.
"""
from vortex.flow import Flow, Field, Budget, D, softmax, sqrt

class SoftmaxPages(Flow):
    centroid = Field(1, D)
    budget = Budget(ratio=1/6, sink=1, recent=2, dense_layers=[0])

    def summarize(self, k, v):
        self.centroid = k.mean(axis=0, keepdims=True)              # [1, D]

    def score(self, q):
        logits = (q * self.centroid).sum(axis=-1) / sqrt(D)        # [N, G]
        probs = softmax(logits, axis=0)                            # over pages, per head
        return probs.max(axis=-1)                                  # [N]
