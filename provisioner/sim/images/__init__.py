"""Images built from C in ``fixtures/bootloader/`` (``build.py``), shipped: no toolchain needed."""
