import copy


def corrupted(value, **fields):
    """A copy of a frozen ``value`` with ``fields`` set, its constructor's validation bypassed (as unpickling does)."""
    bad = copy.copy(value)
    for name, field in fields.items():
        object.__setattr__(bad, name, field)
    return bad
