"""What `site serve` prints: where it listens, one access line per request, when it stops."""

from __future__ import annotations

import logging
from typing import Any

# uvicorn's lifecycle messages (uvicorn/server.py, uvicorn/config.py) in the site's words.
_RENAMED = {
    "Uvicorn running on %s://%s:%d (Press CTRL+C to quit)": "listening on %s://%s:%d "
                                                             "(Ctrl-C stops)",
    "Shutting down": "shutting down",
}
_STOPPED = "Finished server process"


class LifecycleFilter(logging.Filter):
    """Keep warnings, errors and the start/stop lines of uvicorn's own logger, reworded."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Reword a lifecycle record or drop uvicorn's other informational chatter."""
        message = record.msg if isinstance(record.msg, str) else ""
        if message in _RENAMED:
            record.msg = _RENAMED[message]
            return True
        if message.startswith(_STOPPED):
            record.msg, record.args = "stopped", ()
            return True
        return record.levelno >= logging.WARNING


def log_config() -> dict[str, Any]:
    """Return the ``logging.config.dictConfig`` for uvicorn (plain text on stderr).

    Access lines carry time, client address, request line and status: no header, no body,
    so neither the operator's bearer token nor any PIN reaches the log.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"lifecycle": {"()": LifecycleFilter}},
        "formatters": {
            "plain": {"format": "%(asctime)s %(message)s"},
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": '%(asctime)s %(client_addr)s "%(request_line)s" %(status_code)s',
                "use_colors": False,
            },
        },
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "plain",
                        "filters": ["lifecycle"], "stream": "ext://sys.stderr"},
            "access": {"class": "logging.StreamHandler", "formatter": "access",
                       "stream": "ext://sys.stderr"},
        },
        "loggers": {
            "uvicorn.error": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }
