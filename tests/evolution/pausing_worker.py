"""A test's own evaluator actor: it sleeps before each batch.

The pause keeps a batch in flight long enough for a fault test to kill (or freeze) its actor
in the middle of it. It lives here, not in ``evolution/distributed.py``: the pool takes the
actor class it is given (``RayEvaluatorPool(worker=...)``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from evolution.distributed import BatchResult, EvaluatorWorker
from genome.genes import Genome


def pausing_worker(seconds: float) -> type[EvaluatorWorker]:
    """Return an :class:`EvaluatorWorker` subclass that sleeps ``seconds`` before a batch.

    The class is made in a function, so Ray ships it by value (its workers cannot import
    this test module).
    """

    class PausingWorker(EvaluatorWorker):
        def evaluate_batch(self, genomes: Sequence[Genome]) -> BatchResult:
            time.sleep(seconds)
            return super().evaluate_batch(genomes)

    return PausingWorker
