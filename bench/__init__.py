"""The benchmark suite (B1-B9, described in docs/BENCHMARKS.md): ``bin/bench``.

Every benchmark measures its baselines in the same run and reports ratios, because the machine
is shared and noisy. See docs/BENCHMARKS.md for the method and the latest figures.
"""
