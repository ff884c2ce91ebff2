"""One description of an S3-compatible object store for both clients the store uses: delta-rs
(its ``storage_options``, object_store's ``AWS_*`` keys) and pyarrow (an ``S3FileSystem``).

The options are object_store's documented keys
(https://docs.rs/object_store/latest/object_store/aws/enum.AmazonS3ConfigKey.html); those
pyarrow has a counterpart for are translated, the rest only reach delta-rs. Keys missing
here fall back, in pyarrow as in delta-rs, to the standard AWS environment and config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_mlops.exceptions import ArgumentError

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pyarrow.fs as pafs

#: object_store keys → ``pyarrow.fs.S3FileSystem`` parameters
_PYARROW_PARAMETERS = {
    "AWS_ACCESS_KEY_ID": "access_key",
    "AWS_SECRET_ACCESS_KEY": "secret_key",
    "AWS_SESSION_TOKEN": "session_token",
    "AWS_REGION": "region",
}
_TRUE = ("true", "1", "yes")


def s3_filesystem(storage_options: Mapping[str, str]) -> pafs.S3FileSystem:
    """A pyarrow ``S3FileSystem`` for the store that ``storage_options`` describe.

    ``AWS_ENDPOINT_URL`` (``http://host:port`` or ``https://…``) sets the endpoint and scheme;
    plain ``http`` needs ``AWS_ALLOW_HTTP=true``, as delta-rs requires.

    :raises ArgumentError: an ``http`` endpoint without ``AWS_ALLOW_HTTP=true``, or an
        endpoint that is not an ``http(s)`` URL.
    """
    import pyarrow.fs as pafs

    options = {key.upper(): value for key, value in storage_options.items()}
    parameters: dict[str, object] = {
        parameter: options[key] for key, parameter in _PYARROW_PARAMETERS.items() if key in options
    }
    endpoint = options.get("AWS_ENDPOINT_URL") or options.get("AWS_ENDPOINT")
    if endpoint:
        scheme, _, address = endpoint.partition("://")
        if scheme not in ("http", "https") or not address:
            raise ArgumentError(
                f"The object store endpoint must be an http(s) URL such as "
                f"http://127.0.0.1:8333. Got {endpoint!r} instead."
            )
        if scheme == "http" and str(options.get("AWS_ALLOW_HTTP", "")).lower() not in _TRUE:
            raise ArgumentError(
                f"The object store endpoint {endpoint} is plain http: set AWS_ALLOW_HTTP=true "
                "to allow it (credentials then travel unencrypted), or use https."
            )
        parameters.update(endpoint_override=address.rstrip("/"), scheme=scheme)
    return pafs.S3FileSystem(**parameters)
