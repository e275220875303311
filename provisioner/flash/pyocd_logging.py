"""pyOCD log records go to our logger at debug level, without ANSI codes, never the terminal."""

from __future__ import annotations

import logging
import re

PYOCD_LOGGER = "pyocd"
TARGET_LOGGER = "provisioner.flash.pyocd"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class _Forward(logging.Handler):
    """Re-emit a pyOCD record as a debug record of ``TARGET_LOGGER`` (engineer detail only)."""

    def emit(self, record: logging.LogRecord) -> None:
        text = _ANSI.sub("", record.getMessage())
        logging.getLogger(TARGET_LOGGER).debug("%s %s: %s", record.levelname.lower(),
                                               record.name, text)


def route_pyocd_logging() -> None:
    """Stop pyOCD records from reaching stderr (Python's last-resort handler or a root handler).

    Idempotent. pyOCD warns about things an operator cannot act on (``T bit in XPSR is
    invalid`` on a blank chip); they stay available with ``--debug`` through our logger.
    """
    pyocd = logging.getLogger(PYOCD_LOGGER)
    if any(isinstance(handler, _Forward) for handler in pyocd.handlers):
        return
    pyocd.addHandler(_Forward())
    pyocd.propagate = False
    pyocd.setLevel(logging.DEBUG if logging.getLogger(TARGET_LOGGER).isEnabledFor(
        logging.DEBUG) else logging.INFO)
