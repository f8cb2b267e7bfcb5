"""The one exception type that user mistakes become: the CLI prints its message on one line and exits 2."""


class UserError(Exception):
    """Bad input from the user (params, arguments, data files): message names what is wrong and what is allowed."""
