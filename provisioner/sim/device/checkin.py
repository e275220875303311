"""Device-initiated updates: the reference device asks the site itself, at boot and on a schedule.

A connected device needs no technician: it runs the relay's session (report an earlier outcome,
request, package, result) with the site over an in-process link to its own bootloader model.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

from provisioner.errors import UpToDate
from provisioner.relay.carrier import RelaySession, carry_update
from provisioner.relay.site_updates import UpdateSite
from provisioner.sim.device.device import ReferenceDevice
from provisioner.sim.device.link_server import FdStream, serve_link

LINK_JOIN_TIMEOUT_S = 10.0


def check_in(device: ReferenceDevice, site: UpdateSite,
             progress: Callable[[str], None] = lambda _: None) -> RelaySession | None:
    """Run one session between ``device`` and ``site``; None when the device is up to date.

    Raises:
        Refused: any other refusal of the site (its code says why).
        SiteUnreachable: no answer after the relay's retries of the same bytes.
        LinkError: the device model answered something unexpected.
    """
    device_end, site_end = socket.socketpair()
    link = threading.Thread(target=serve_link, args=(device, FdStream(device_end.fileno())),
                            name="device-link", daemon=True)
    link.start()
    try:
        return carry_update(FdStream(site_end.fileno()), site, progress)
    except UpToDate:
        progress("up to date: no release newer than what the device runs")
        return None
    finally:
        site_end.shutdown(socket.SHUT_RDWR)  # the device side reads end-of-link and returns
        link.join(timeout=LINK_JOIN_TIMEOUT_S)
        site_end.close()
        device_end.close()
