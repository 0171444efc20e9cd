"""StreamingLLM: attention sinks plus a recent window (Xiao et al., "Efficient Streaming Language
Models with Attention Sinks", ICLR 2024).

The first tokens act as attention sinks and the latest tokens carry the local context; nothing
in between is read. Here the first page (it holds the paper's 4 sink tokens) and the last 63
pages are reserved and the budget gives zero pages by score, so 64 pages (1024 tokens at P = 16)
are read at any context length.
Score: a constant; it never matters because no page is chosen by score.
"""
from vortex.flow import Flow, Budget, N, zeros


class Streaming(Flow):
    budget = Budget(pages=0, sink=1, recent=63, dense_layers=[0])

    def summarize(self, k, v):
        pass

    def score(self, q):
        return zeros(N)
