"""The one error of orbitcast.energy: bad input a person can fix (a config, a date, samples)."""


class EnergyError(ValueError):
    """Energy accounting or planning cannot go on; the message says why."""
