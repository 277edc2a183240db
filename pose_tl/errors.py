"""The one family of user-facing errors.

Everything a user can cause (a bad recipe, a corrupt depth file, weights that do not fit) raises a subclass of
`PoseTLError`; the CLI turns it into one line on stderr and exit code 2. Anything else is a bug in pose_tl.
"""


class PoseTLError(Exception):
    """Base class of every error a user can cause and fix."""


class RecipeError(PoseTLError):
    """A recipe file (or a `--set` override) is malformed or has an invalid value.

    The message always names the file, the dotted field path, what was expected and what was received.
    """

    def __init__(self, source, field, expected, received=None, *, has_received=True):
        self.source = str(source)
        self.field = _one_line(str(field))
        self.expected = expected
        where = f"{self.source}: {self.field}" if self.field else self.source
        message = f"{where}: {expected}"
        if has_received:
            message += f"; received {received!r}"
        super().__init__(_one_line(message))


def _one_line(text):
    """Escape line breaks and other control characters so an error stays one line."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


class DataError(PoseTLError):
    """A data file or dataset folder is missing, corrupt or inconsistent; the message names the file."""


class WeightsError(PoseTLError):
    """Pretrained weights cannot be obtained or do not fit the architecture."""


class ModelFileError(PoseTLError):
    """A checkpoint or exported model cannot be read."""


class OutputError(PoseTLError):
    """An output folder cannot be written, or would overwrite a previous run."""
