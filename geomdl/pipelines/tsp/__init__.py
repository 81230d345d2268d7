"""The TinvNN combinatorial-optimisation experiment: an invariant neural TSP solver on random Euclidean
instances, compared with a coordinate-based one and with exact / heuristic solvers."""
