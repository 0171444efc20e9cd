"""Generator coverage: int8 Fields beside bf16 ones, of odd and vector-friendly sizes, read by
per-page reductions (split over lane groups) and elementwise code."""
from vortex.flow import Flow, Field, D, P


class Int8Fields(Flow):
    bias = Field()                           # bf16 scalar: the int8 Field after it is realigned
    centroid = Field(1, D, dtype="int8")
    norm = Field(dtype="int8")                # one code and its own scale
    groups = Field(P // 4, D, dtype="int8")

    def summarize(self, k, v):
        self.bias = v.mean()
        self.centroid = k.mean(axis=0, keepdims=True)
        self.norm = k.l2norm(axis=-1).max()
        self.groups = k.fold_max(4, axis=0)

    def score(self, q):
        best = (self.groups @ q.T).max(axis=(1, 2))  # [N, P/4, D] @ [D, G] -> [N, P/4, G]
        return (q * self.centroid).sum(axis=-1).mean(axis=-1) + best / self.norm + self.bias
