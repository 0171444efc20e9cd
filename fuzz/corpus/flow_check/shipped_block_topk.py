"""Block top-k: rank pages by the query's affinity to the page's mean key.

Follows the block-gating of MoBA (Lu et al., "MoBA: Mixture of Block Attention for Long-Context
LLMs", arXiv 2025) with one page as the block: each page is summarised by the mean of its keys
(the centroid) and scored by the dot product of the query with that centroid, averaged over the
G query heads that share the KV head, so one selection serves the whole GQA group.
Score: mean over heads of q . centroid (higher = the page is expected to get more attention).
The centroid is stored in 8 bits (integers and one power-of-two scale per page block): the score
pass reads it for every page in every sparse layer, and ranking pages needs no more precision
(docs/accuracy.md measures it against the bf16 centroid).
"""
from vortex.flow import Flow, Field, Budget, D


class BlockTopK(Flow):
    centroid = Field(1, D, dtype="int8")
    budget = Budget(ratio=1/16, sink=1, recent=2, dense_layers=[0])

    def summarize(self, k, v):
        self.centroid = k.mean(axis=0, keepdims=True)  # [P, D] -> [1, D]

    def score(self, q):
        logits = (q * self.centroid).sum(axis=-1)  # [G, D] * [N, 1, D] -> [N, G]
        return logits.mean(axis=-1)  # [N]
