"""Every pyOCD exception class maps explicitly to a specific provisioner error."""

from __future__ import annotations

import inspect

import pytest
from pyocd.core import exceptions as pe

from provisioner.errors import (
    BoardDisconnected,
    FlashError,
    LinkTimeout,
    ProbeError,
    TargetOperationFailed,
)
from provisioner.flash.pyocd_errors import TRANSLATIONS, translate


def pyocd_exception_classes() -> list[type[Exception]]:
    return [cls for _, cls in inspect.getmembers(pe, inspect.isclass)
            if issubclass(cls, Exception) and cls.__module__ == pe.__name__]


def test_table_covers_every_pyocd_exception_class() -> None:
    missing = [cls.__name__ for cls in pyocd_exception_classes() if cls not in TRANSLATIONS]
    assert missing == []


@pytest.mark.parametrize("cls", pyocd_exception_classes(), ids=lambda c: c.__name__)
def test_each_translates_to_a_specific_flash_error(cls: type[Exception]) -> None:
    error = translate(cls("boom"), "program", 0x08000400)
    assert isinstance(error, FlashError)
    assert type(error) is not FlashError
    assert "program" in str(error)


def test_timeouts_keep_operation_and_address() -> None:
    error = translate(pe.TransferTimeoutError("wait"), "read", 0x08001000)
    assert isinstance(error, LinkTimeout)
    assert (error.command, error.address) == ("read", 0x08001000)
    assert "0x08001000" in str(error)


def test_fault_prefers_the_address_pyocd_reports() -> None:
    error = translate(pe.TransferFaultError("x", fault_address=0x08000800), "read", 0x08000000)
    assert isinstance(error, TargetOperationFailed)
    assert error.address == 0x08000800
    assert "0x08000800" in str(error)


def test_flash_failure_carries_result_code() -> None:
    error = translate(pe.FlashProgramFailure("bad", address=0x08000400, result_code=1), "program")
    assert isinstance(error, TargetOperationFailed)
    assert error.address == 0x08000400
    assert "result code 0x1" in str(error)


def test_subclass_found_through_the_mro() -> None:
    class VendorFault(pe.TransferFaultError):  # type: ignore[misc]
        pass

    assert isinstance(translate(VendorFault("x"), "read"), TargetOperationFailed)
    assert isinstance(translate(pe.ProbeError("x"), "open"), ProbeError)
    gone = translate(pe.ProbeDisconnected("gone"), "open")
    assert isinstance(gone, BoardDisconnected)
    assert str(gone).startswith("board disconnected")
