"""The one exception type that user mistakes become: the CLI prints its message on one line and exits 2."""


class UserError(Exception):
    """Bad input from the user (params, arguments, data files): message names what is wrong and what is allowed."""


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message for a one-line error; its type's name where it has none (an empty file's
    error may say nothing)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
