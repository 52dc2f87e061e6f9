"""User-facing errors: one clear line and a distinct exit code, never a traceback.

The CLI catches StreamCnnError at the top, prints ``stream-cnn: <message>`` to stderr and exits with
``exit_code``. Library code raises the most specific subclass.
"""


class StreamCnnError(Exception):
    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(StreamCnnError):
    """Bad option values or combinations."""
    exit_code = 2


class SourceError(StreamCnnError):
    """No camera at the index, missing / unreadable / non-video input file."""
    exit_code = 3


class StreamInterrupted(StreamCnnError):
    """The stream stopped early: corrupt or truncated file, camera stopped delivering."""
    exit_code = 4


class ModelFileError(StreamCnnError):
    """Bad model config or weights: names the file, the layer and expected vs actual."""
    exit_code = 5


class OutputError(StreamCnnError):
    """An output path cannot be written (checked before processing starts)."""
    exit_code = 6


class DataError(StreamCnnError):
    """A data set (IDX files, labels) is missing or malformed."""
    exit_code = 7


class CameraNotFoundError(SourceError):
    """No camera answers at the given index / device."""
    exit_code = 2
