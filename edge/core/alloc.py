"""Integer allocation (MicroPython subset).

Every amount the engine spreads over lines (a basket discount, wallet credit, bonus
points) goes through :func:`allocate`, which uses cumulative rounding: with weights
w1..wn summing to W, line i gets

    floor(T * (w1 + ... + wi) / W) - floor(T * (w1 + ... + w(i-1)) / W)

The shares add up to T exactly, each is within one unit of its exact proportion, and
no share exceeds its weight when T <= W.  One pass, no sorting.  Refunds use the
same telescoping idea per unit (edge.core.refund).
"""


def allocate(total, weights):
    n = len(weights)
    if total == 0 or n == 0:
        return [0] * n
    s = 0
    for w in weights:
        s += w
    if s == 0:
        weights = [1] * n
        s = n
    shares = []
    cum = 0
    prev = 0
    for w in weights:
        cum += w
        cur = total * cum // s
        shares.append(cur - prev)
        prev = cur
    return shares
