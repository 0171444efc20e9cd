"""Generator coverage: per-page matmul, transpose, strided slice, softmax over heads, where,
clip, abs, sigmoid, a scalar field."""
from vortex.flow import Flow, Field, D, P, softmax, where, sqrt, l2norm, sigmoid, abs


class PageOps(Flow):
    c = Field(1, D)
    kf = Field(P // 4, D)
    vn = Field()

    def summarize(self, k, v):
        self.c = k.mean(axis=0, keepdims=True)
        self.kf = k.fold_max(4, axis=0)
        self.vn = l2norm(v, axis=-1).max()

    def score(self, q):
        logits = (self.c @ q.T)[:, 0, :] / sqrt(D)
        weights = softmax(logits, axis=-1)
        sub = (self.kf @ q.T).transpose(0, 2, 1)
        best = sub[:, :, ::2].max(axis=-1)
        gated = where(best > 0, best, 0.25 * best).clip(-3.0, 3.0)
        return (gated * weights).sum(axis=-1) + sigmoid(self.vn) - abs(logits).mean(axis=-1)
