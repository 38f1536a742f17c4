"""The daily arena: paper accounts, debate, risk governor, ledger, daily cycle, season replay.

The accounting is plain Python; only ``arena/actors.py`` (the Ray edge) imports Ray.
"""
