"""The site's field-update service: releases, entitlement, deliveries, results (issue 13)."""
