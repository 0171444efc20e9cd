"""Generator coverage: the row's page positions. page_index() in per-page code and inside a
softmax over the pages (a row kernel), num_pages() alone (a row-invariant scalar) and mixed with
page_index() into a recency prior."""
from vortex.flow import Flow, Field, D, softmax, page_index, num_pages, exp


class PagePosition(Flow):
    c = Field(1, D)

    def summarize(self, k, v):
        self.c = k.mean(axis=0, keepdims=True)

    def score(self, q):
        logits = (q * self.c).sum(axis=-1).max(axis=-1)
        age = num_pages() - 1 - page_index()
        recency = exp(-age / (num_pages() + 8.0))
        spread = softmax(logits + 0.01 * page_index(), axis=0)
        return logits + recency + spread + page_index() % 3
