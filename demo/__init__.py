"""``./dev demo``: the whole club on one machine (demo.run), held against the ground truth."""
