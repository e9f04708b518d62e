"""Side-by-side timings: ours against the reference, printed as ratios."""
