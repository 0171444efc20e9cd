"""Value-gated block top-k: the centroid score weighted by how large the page's values are.

After the value-aware token importance of Guo, Kamigaito and Watanabe ("Attention Score is not
All You Need for Token Importance Indicator in KV Cache Reduction: Value Also Matters",
EMNLP 2024): a token's contribution to the output is its attention times its value, so pages
whose values are small matter less at equal attention. Each page keeps its centroid key and the
mean L2 norm of its value vectors.
Score: mean over heads of q . centroid, times the page's mean value norm.
"""
from vortex.flow import Flow, Field, Budget, D, l2norm


class ValueGated(Flow):
    centroid = Field(1, D)
    vnorm = Field()  # scalar per page
    budget = Budget(ratio=1/16, sink=1, recent=2, dense_layers=[0])

    def summarize(self, k, v):
        self.centroid = k.mean(axis=0, keepdims=True)
        self.vnorm = l2norm(v, axis=-1).mean()  # [P] -> []

    def score(self, q):
        logits = (q * self.centroid).sum(axis=-1).mean(axis=-1)  # [N]
        return logits * self.vnorm
