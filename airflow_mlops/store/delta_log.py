"""A Delta feature table's transaction log, as the store uses it: the commits that carry a
partition's versions, and the one commit that replaces a partition.

Each publish or rollback is one commit whose metadata (commit info) holds, under
:data:`METADATA_KEY`, ``{"operation": "publish" | "rollback", "manifest": <the version's
manifest>}``; commits without it (vacuums, other engines' writes) are not partition versions.
A partition's kept versions are the newest ``keep_versions`` it published; a rollback commits
one of them again, so it becomes current without becoming a new version.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.exceptions import ConcurrentPublishError, PartitionNotFoundError, format_names
from airflow_mlops.store.layout import PARTITION_COLUMN

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pyarrow as pa
    from deltalake import DeltaTable

    from airflow_mlops.store.publish import Manifest

#: The commit metadata key holding ``{"operation": …, "manifest": …}``.
METADATA_KEY = "airflow_mlops"
#: Table properties set at creation: keep the whole log (history and rollback need it).
TABLE_CONFIGURATION = {"delta.enableExpiredLogCleanup": "false"}


@dataclass(frozen=True)
class PartitionCommit:
    """A commit that published or restored one version of a partition.

    :param table_version: the Delta table version the commit created.
    :param operation: ``publish`` or ``rollback``.
    :param manifest: the partition version's manifest.
    """

    table_version: int
    operation: str
    manifest: Manifest


def open_table(
    uri: str, storage_options: Mapping[str, str] | None, version: int | None = None
) -> DeltaTable | None:
    """The Delta table at ``uri`` (at ``version``), or None where there is none."""
    from deltalake import DeltaTable

    options = dict(storage_options) if storage_options else None
    if not DeltaTable.is_deltatable(uri, options):
        return None
    return DeltaTable(uri, version=version, storage_options=options)


def create_table(
    uri: str, schema: pa.Schema, storage_options: Mapping[str, str] | None
) -> DeltaTable:
    """The Delta table at ``uri``, created empty (partitioned by ``ds``, with ``schema`` and
    :data:`TABLE_CONFIGURATION`) unless it exists.

    Data is never committed with the creation: two writers racing to create a table could
    otherwise both commit theirs into one partition (delta-rs 1.6.6 retries a lost creation
    as a plain commit). Each publish's own commit then conflicts as it should.
    """
    import pyarrow as pa
    from deltalake import DeltaTable

    options = dict(storage_options) if storage_options else None
    return DeltaTable.create(
        uri,
        schema.append(pa.field(PARTITION_COLUMN, pa.date32())),
        mode="ignore",
        partition_by=[PARTITION_COLUMN],
        configuration=TABLE_CONFIGURATION,
        storage_options=options,
    )


def table_schema(delta: DeltaTable) -> pa.Schema:
    """The table's schema without the partition column."""
    import pyarrow as pa

    schema = pa.schema(delta.schema().to_arrow())
    return schema.remove(schema.get_field_index(PARTITION_COLUMN))


def partition_commits(delta: DeltaTable, partition: str | None) -> list[PartitionCommit]:
    """The partition's (or, for None, every partition's) commits, newest first."""
    commits = []
    for info in delta.history():
        facts = info.get(METADATA_KEY)
        if not isinstance(facts, dict):
            continue
        manifest = facts["manifest"]
        if partition is None or manifest["partition"] == partition:
            commits.append(PartitionCommit(info["version"], facts["operation"], manifest))
    return commits


def kept_versions(commits: list[PartitionCommit], keep: int) -> list[str]:
    """The newest ``keep`` versions the commits (newest first) published, oldest first."""
    published = [c.manifest["version"] for c in reversed(commits) if c.operation == "publish"]
    return list(dict.fromkeys(published))[-keep:]


def kept_table_versions(delta: DeltaTable, keep: int) -> list[int]:
    """The table versions whose files a vacuum must keep: the current one, and the commit that
    published each partition's newest ``keep`` versions."""
    commits = partition_commits(delta, None)
    versions = {delta.version()}
    for partition in {c.manifest["partition"] for c in commits}:
        mine = [c for c in commits if c.manifest["partition"] == partition]
        kept = set(kept_versions(mine, keep))
        versions |= {c.table_version for c in mine if c.manifest["version"] in kept}
    return sorted(versions)


def check_kept(table: str, partition: str, version: str, kept: list[str]) -> None:
    """:class:`PartitionNotFoundError` unless ``version`` is one of the ``kept`` versions."""
    if version not in kept:
        raise PartitionNotFoundError(
            f"Partition {partition} of table {table!r} has no version {version!r}. "
            f"Kept versions: {format_names(kept)}."
        )


def version_before(versions: list[str], current: str) -> str | None:
    """The version before ``current`` in ``versions`` (the last one if ``current`` left)."""
    position = versions.index(current) if current in versions else len(versions)
    return versions[position - 1] if position > 0 else None


def commit_partition(
    delta: DeltaTable, manifest: Manifest, schema: pa.Schema, operation: str
) -> None:
    """One commit replacing the manifest's partition with its files, the table's schema set
    to ``schema`` (the partition column added).

    :raises ConcurrentPublishError: another writer committed to the partition (or changed
        the table's schema) since ``delta`` was loaded.
    """
    import pyarrow as pa
    from deltalake.exceptions import CommitFailedError
    from deltalake.transaction import CommitProperties

    partition = manifest["partition"]
    metadata = {METADATA_KEY: {"operation": operation, "manifest": manifest}}
    try:
        delta.create_write_transaction(
            _add_actions(manifest),
            "overwrite",
            schema.append(pa.field(PARTITION_COLUMN, pa.date32())),
            partition_by=[PARTITION_COLUMN],
            partition_filters=[(PARTITION_COLUMN, "=", partition)],
            commit_properties=CommitProperties(custom_metadata=metadata),
        )
    except CommitFailedError as exc:
        raise ConcurrentPublishError(_lost(manifest, exc)) from exc


def _add_actions(manifest: Manifest) -> list[Any]:
    from deltalake.transaction import AddAction

    partition, now = manifest["partition"], int(time.time() * 1000)
    return [
        AddAction(
            f"{PARTITION_COLUMN}={partition}/{entry['path']}",
            entry["bytes"],
            {PARTITION_COLUMN: partition},
            now,
            True,
            json.dumps({"numRecords": entry["rows"]}),
        )
        for entry in manifest["files"]
    ]


def _lost(manifest: Manifest, exc: Exception) -> str:
    table, partition = manifest["table"], manifest["partition"]
    return (
        f"Another writer committed to table {table!r} (partition {partition} or its schema) "
        f"while version {manifest['version']} of partition {partition} was committing "
        f"({exc}). Nothing of it is visible; run it again (an Airflow retry does)."
    )
