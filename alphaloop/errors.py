"""One error type per kind of user mistake.

Every error message names *what* is wrong and *where* (file, key, symbol, bar), and, where
it applies, the allowed values. The CLI turns these into a one-line message and exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class AlphaLoopError(Exception):
    """Base class of every error the lab raises on purpose for bad input."""


class ConfigError(AlphaLoopError, ValueError):
    """A configuration file or value is wrong (unknown key, out-of-range limit...)."""


class DataSpecError(AlphaLoopError, ValueError):
    """A ``--data SPEC`` string cannot be understood."""


class DataQualityError(AlphaLoopError, ValueError):
    """Market data failed validation under a ``raise`` policy."""


class DataSourceUnavailable(AlphaLoopError, RuntimeError):
    """A data provider cannot be reached and nothing is cached for the request."""


class RayClusterUnavailable(AlphaLoopError, ConnectionError):
    """The Ray cluster the user named (``--ray-address``, ``RAY_ADDRESS``) cannot be joined."""


class GenomeError(AlphaLoopError, ValueError):
    """A strategy genome is malformed or out of bounds."""


class StrategyParamError(AlphaLoopError, ValueError):
    """A reference strategy was given an unknown or invalid parameter."""


class DataWarning(UserWarning):
    """Something about the data a user should know but that is not an error (the CLI prints
    one ``warning:`` line on stderr for each)."""
