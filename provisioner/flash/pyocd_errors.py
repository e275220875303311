"""The one place pyOCD exceptions become provisioner errors (looked up along the MRO)."""

from __future__ import annotations

from collections.abc import Callable

from pyocd.core import exceptions as pe

from provisioner.errors import (
    BoardDisconnected,
    FlashError,
    LinkTimeout,
    ProbeError,
    TargetOperationFailed,
)

Translator = Callable[[Exception, str, "int | None"], FlashError]


def _address(exc: Exception, default: int | None) -> int | None:
    found = getattr(exc, "fault_address", None) or getattr(exc, "address", None)
    return found if isinstance(found, int) else default


def _probe(exc: Exception, operation: str, address: int | None) -> FlashError:
    return ProbeError(f"{operation}: {type(exc).__name__}: {exc}")


def _disconnected(exc: Exception, operation: str, address: int | None) -> FlashError:
    return BoardDisconnected("the debug probe", f"{operation}: {exc}")


def _wait(exc: Exception, operation: str, address: int | None) -> FlashError:
    return LinkTimeout(operation, "waiting for the target (SWD WAIT)", address)


def _no_ack(exc: Exception, operation: str, address: int | None) -> FlashError:
    return LinkTimeout(operation, "from the target (no SWD ACK)", address)


def _timeout(exc: Exception, operation: str, address: int | None) -> FlashError:
    return LinkTimeout(operation, "from the core or flash algorithm", address)


def _fault(exc: Exception, operation: str, address: int | None) -> FlashError:
    return TargetOperationFailed(operation, "memory transfer fault", _address(exc, address))


def _flash_failure(exc: Exception, operation: str, address: int | None) -> FlashError:
    code = getattr(exc, "result_code", None)
    reason = "flash algorithm failed" + (f" (result code 0x{code:X})" if code is not None else "")
    return TargetOperationFailed(operation, reason, _address(exc, address))


def _target(exc: Exception, operation: str, address: int | None) -> FlashError:
    return TargetOperationFailed(operation, f"{type(exc).__name__}: {exc}", address)


def _unsupported(exc: Exception, operation: str, address: int | None) -> FlashError:
    return ProbeError(f"{operation}: pyOCD cannot drive this target: {exc}")


TRANSLATIONS: dict[type[Exception], Translator] = {
    pe.Error: _probe,
    pe.InternalError: _probe,
    pe.TimeoutError: _timeout,
    pe.TargetSupportError: _unsupported,
    pe.ProbeError: _probe,
    pe.ProbeDisconnected: _disconnected,
    pe.TargetError: _target,
    pe.DebugError: _probe,
    pe.CoreRegisterAccessError: _probe,
    pe.TransferError: _no_ack,
    pe.TransferTimeoutError: _wait,
    pe.TransferProtocolError: _probe,
    pe.TransferFaultError: _fault,
    pe.FlashFailure: _flash_failure,
    pe.FlashEraseFailure: _flash_failure,
    pe.FlashProgramFailure: _flash_failure,
    pe.CommandError: _probe,
    pe.RTTError: _probe,
}


def translate(exc: Exception, operation: str, address: int | None = None) -> FlashError:
    """The provisioner error for a pyOCD exception raised during ``operation`` near ``address``."""
    for cls in type(exc).__mro__:
        translator = TRANSLATIONS.get(cls)
        if translator is not None:
            return translator(exc, operation, address)
    return ProbeError(f"{operation}: unexpected {type(exc).__name__}: {exc}")
