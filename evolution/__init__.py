"""The DEAP gene pool: fitness, operators, culling, Optuna refinement, promotion gates, store.

Operators are pure; ``evolution/distributed.py`` is the Ray edge and only the driver writes to
MLflow.
"""
