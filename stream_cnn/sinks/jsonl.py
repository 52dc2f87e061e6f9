"""Per-frame predictions as JSON Lines, one object per processed frame, flushed as it goes so a crash or Ctrl-C
leaves every line written so far complete and readable."""
from __future__ import annotations

import json

from stream_cnn.errors import OutputError
from stream_cnn.sinks.video import check_writable_file


class JsonlSink:
    def __init__(self, path: str):
        self.path = check_writable_file(path, "JSONL")
        try:
            self._file = open(self.path, "w", encoding="utf-8")
        except OSError as err:
            raise OutputError(f"cannot write JSONL {self.path}: {err.strerror or err}") from None
        self.lines = 0

    def write(self, record: dict):
        self._file.write(json.dumps(record, separators=(", ", ": ")) + "\n")
        self._file.flush()
        self.lines += 1

    def close(self):
        if not self._file.closed:
            self._file.close()
