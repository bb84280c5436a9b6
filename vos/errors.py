"""The pipeline's own error for user mistakes in options (other modules own their input errors).

Entry points catch these, with the file and checkpoint errors, and turn them into one
line and exit status 2; anything else is a bug and keeps its traceback.
"""


class SettingsError(ValueError):
    """An option with a value that cannot work; the message names the option and the value."""
