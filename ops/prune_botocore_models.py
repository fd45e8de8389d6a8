"""Keep only the AWS service models the functions call in a built botocore (run by ``make build``).

botocore ships a model for every AWS service, about 440 folders and 27 MB. Each client a function creates
lists all of them to check that its service exists, and Lambda fetches all of them with the layer. The
functions call the services in ``dog_breeds.adapters.clients.AWS_SERVICES`` and no others (``aws_client``
refuses any other name, so a new call fails in the offline tests, not in AWS).

botocore's ``endpoints.json`` (1.2 MB) is parsed whole by the first client of every cold start; it keeps
only the entries of those services (by their models' ``endpointPrefix``), with every partition and region.

    python -m ops.prune_botocore_models .aws-sam/build
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
from pathlib import Path

from dog_breeds.adapters.clients import AWS_SERVICES


def prune_botocore_models(build_dir: Path, keep: frozenset[str] = AWS_SERVICES) -> list[Path]:
    """Remove every service folder but ``keep``'s from each ``botocore/data`` under ``build_dir``; return them."""
    removed = []
    for data in sorted(build_dir.glob("**/botocore/data")):
        missing = keep - {folder.name for folder in data.iterdir()}
        if missing:
            raise SystemExit(f"{data} has no model for {sorted(missing)}: is this botocore too old?")
        for folder in sorted(data.iterdir()):
            if folder.is_dir() and folder.name not in keep:
                shutil.rmtree(folder)
                removed.append(folder)
        prune_endpoints(data, {endpoint_prefix(data / service) for service in keep})
    return removed


def endpoint_prefix(service_folder: Path) -> str:
    """The ``endpointPrefix`` of the newest model in ``service_folder``: ``runtime.sagemaker`` for sagemaker-runtime."""
    newest = max(folder for folder in service_folder.iterdir() if folder.is_dir())
    model = newest / "service-2.json"
    text = model.read_text() if model.exists() else gzip.decompress((newest / "service-2.json.gz").read_bytes())
    return json.loads(text)["metadata"]["endpointPrefix"]


def prune_endpoints(data: Path, prefixes: set[str]) -> None:
    """Rewrite ``data/endpoints.json`` with only ``prefixes``' services in each partition, compactly."""
    endpoints_file = data / "endpoints.json"
    endpoints = json.loads(endpoints_file.read_text())
    for partition in endpoints["partitions"]:
        partition["services"] = {
            prefix: service for prefix, service in partition["services"].items() if prefix in prefixes
        }
    endpoints_file.write_text(json.dumps(endpoints, separators=(",", ":")))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build_dir", type=Path, help="the output of sam build, e.g. .aws-sam/build")
    build_dir = parser.parse_args(argv).build_dir
    if not build_dir.is_dir():
        parser.error(f"{build_dir} is not a directory: run sam build first")
    removed = prune_botocore_models(build_dir)
    print(f"kept the models and endpoints of {', '.join(sorted(AWS_SERVICES))}; removed {len(removed)} others")


if __name__ == "__main__":
    main()
