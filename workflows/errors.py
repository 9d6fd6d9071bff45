"""The one exception type that the CLI turns into a one-line error message."""


class CoatflowError(Exception):
    """A problem with the user's input or environment, explained in one line."""
