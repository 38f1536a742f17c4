"""Market data, market rules, the broker/fill simulator and the fast backtester.

A core package: plain Python/NumPy/numba, no Ray and no MLflow.
"""
