"""The one exception type for user mistakes: the CLI prints it as a single line, no traceback."""


class FercnnError(Exception):
    """A problem with the user's input (a file, a row, an option), explained in one line."""
