"""Not compilable for CUDA: a softmax over pages of every centroid coordinate needs D
statistics per row, more than the generated row kernel keeps."""
from vortex.flow import Flow, Field, D, softmax


class WideSoftmax(Flow):
    c = Field(1, D)

    def summarize(self, k, v):
        self.c = k.mean(axis=0, keepdims=True)

    def score(self, q):
        w = softmax(self.c, axis=0)
        return (q * w).sum(axis=-1).mean(axis=-1)
