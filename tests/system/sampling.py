"""Choosing test cases over several dimensions: a seeded pairwise sample for the default suite,
the full cross product for ``--sweep``."""

import itertools
import random


def pairwise(dimensions, seed):
    """A seeded set of cases covering every pair of values of every two dimensions."""
    names = list(dimensions)
    uncovered = {(a, va, b, vb) for a, b in itertools.combinations(names, 2)
                 for va in dimensions[a] for vb in dimensions[b]}
    rng = random.Random(seed)
    cases = []
    while uncovered:
        best, gain = None, -1
        for _ in range(60):
            case = {n: rng.choice(dimensions[n]) for n in names}
            g = sum((a, case[a], b, case[b]) in uncovered
                    for a, b in itertools.combinations(names, 2))
            if g > gain:
                best, gain = case, g
        cases.append(best)
        uncovered -= {(a, best[a], b, best[b]) for a, b in itertools.combinations(names, 2)}
    return cases


def cross_product(dimensions):
    """Every combination of every dimension's values."""
    names = list(dimensions)
    return [dict(zip(names, values)) for values in itertools.product(*dimensions.values())]
