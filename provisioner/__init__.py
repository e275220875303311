"""Open, vendor-neutral secure manufacturing provisioning: protected site and station."""
