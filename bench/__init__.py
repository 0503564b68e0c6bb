"""qfexdash benchmarks: ``python -m bench`` prints the P-figures of design.md §4."""
