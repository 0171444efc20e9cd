"""Mean-key centroid scored by dot product (block top-k, as in InfLLM/Quest-style page selection).

Each page keeps the mean of its keys, stored in 8 bits. A page's score is the dot product of the
centroid with the query, averaged over the query heads of the KV group: the average logit the
group would give to a typical key of the page. Higher means more attention mass expected there.
"""
from vortex.flow import Flow, Field, Budget, D

class CentroidDot(Flow):
    centroid = Field(1, D, dtype="int8")          # [1, D] per page, KV head, layer
    budget = Budget(ratio=1/8, sink=1, recent=2, dense_layers=[0])

    def summarize(self, k, v):                    # k, v: [P, D]
        self.centroid = k.mean(axis=0, keepdims=True)

    def score(self, q):                           # q: [G, D]; self.centroid: [N, 1, D]
        logits = (q * self.centroid).sum(axis=-1) # [N, G]
        return logits.mean(axis=-1)               # [N]
