"""Every column that holds a blob wrapped under the master key is re-wrapped by a migration."""

from __future__ import annotations

from provisioner.site.db.models import Base
from provisioner.site.keyprovider.migrate import WRAPPED


def test_every_wrapped_column_is_in_the_migration_table() -> None:
    found = {(mapper.class_.__name__, column.key)
             for mapper in Base.registry.mappers
             for column in mapper.columns if column.key.startswith("wrapped_")}
    listed = {(model.__name__, column) for model, column, _ in WRAPPED}
    assert found, "no wrapped column found: the model scan is broken"
    assert found == listed, ("a new wrapped_* column needs its AAD in keyprovider/migrate.py "
                             f"WRAPPED: missing {sorted(found - listed)}, stale "
                             f"{sorted(listed - found)}")
