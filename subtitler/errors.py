"""Every user-facing error of the core and engine: one sentence, no traceback.

The CLI prints ``str(error)``; the window shows it in a dialog.
"""


class SubtitlerError(Exception):
    """Base class: the message is a complete sentence meant for the user."""


class MediaError(SubtitlerError):
    """The input cannot be read as audio."""


class ModelError(SubtitlerError):
    """A model cannot be found, downloaded or loaded."""


class SubtitleFileError(SubtitlerError):
    """A subtitle file is malformed or cannot be written."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


class EncodingUnclear(SubtitleFileError):
    """A subtitle file's text encoding cannot be told; ``candidates`` are the likely ones."""

    def __init__(self, message: str, candidates: tuple[str, ...] = ()):
        super().__init__(message)
        self.candidates = candidates


class MissingTimeLine(SubtitleFileError):
    """An SRT block has no time line (``line`` says where); it can be skipped."""


class EditError(SubtitlerError):
    """An edit was refused; the message says why."""


class Cancelled(SubtitlerError):
    """The user cancelled a long operation."""

    def __init__(self, message: str = "Cancelled."):
        super().__init__(message)


class TranscriptionCancelled(Cancelled):
    """A transcription was cancelled; ``document`` holds the subtitles decoded before it."""

    def __init__(self, document):
        super().__init__("Cancelled: the subtitles decoded so far are kept.")
        self.document = document
