"""Speed and accuracy benchmarks (not installed with the package): ``python -m benchmarks NAME``."""
