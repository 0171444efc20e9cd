"""GQA softmax-max: block top-k made fair across the heads of a GQA group.

The centroid estimate of block top-k (mean key per page, as in MoBA, Lu et al., arXiv 2025),
aggregated over the group the way the Vortex paper (Infini-AI-Lab, 2026) proposes for GQA:
each query head turns its scaled centroid logits into a softmax over the row's pages, and a page
keeps its best head's probability. A head with flat logits then cannot drown out a head that
points sharply at one page, which a plain mean of logits allows.
Score: max over heads of softmax over pages of q . centroid / sqrt(D) (an estimated attention
probability per page, in [0, 1]).
"""
from vortex.flow import Flow, Field, Budget, D, softmax, sqrt


class GqaSoftmaxMax(Flow):
    centroid = Field(1, D)
    budget = Budget(ratio=1/16, sink=1, recent=2, dense_layers=[0])

    def summarize(self, k, v):
        self.centroid = k.mean(axis=0, keepdims=True)

    def score(self, q):
        logits = (q * self.centroid).sum(axis=-1) / sqrt(D)  # [N, G]
        probs = softmax(logits, axis=0)  # over pages, per head
        return probs.max(axis=-1)  # [N]
