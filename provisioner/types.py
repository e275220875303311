"""Identifier types shared by the site and the station."""

from __future__ import annotations

from typing import NewType

StationId = NewType("StationId", str)
OperatorId = NewType("OperatorId", str)
OrderId = NewType("OrderId", str)
GrantId = NewType("GrantId", str)
DeviceId = NewType("DeviceId", int)
ChipUid = NewType("ChipUid", str)  # lower-case hex of the chip's unique ID bytes
RequestId = NewType("RequestId", str)
DrbgIndex = NewType("DrbgIndex", int)
