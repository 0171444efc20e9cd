"""Golden: sub-page bounds with fold, slicing, None and a constant `if`."""
from vortex.flow import Flow, Field, D, P, where

GROUP = 4
USE_MIN = True


class Subpage(Flow):
    kmax = Field(P // GROUP, D)
    kmin = Field(P // GROUP, 8)

    def summarize(self, k, v):
        self.kmax = k.fold_max(GROUP, axis=0)
        if USE_MIN:
            self.kmin = k[:, 0:8].fold_min(GROUP)
        else:
            self.kmin = k[:, -8:].fold_mean(GROUP)

    def score(self, q):
        hi = (q[:, None, :] * self.kmax[:, None]).sum(axis=-1)  # [N, G, P/4]
        lo = (q[:, None, :8] * self.kmin[:, None, :, :]).sum(axis=-1)
        best = where(hi > lo, hi, lo)
        return best.max(axis=(1, 2))
