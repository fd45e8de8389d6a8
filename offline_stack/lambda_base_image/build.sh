#!/usr/bin/env bash
# Build the Lambda python3.12 base image SAM looks for, from Debian's packages and PyPI only.
#
# For air-gapped machines and CI: users with a registry let SAM pull the real image. Idempotent: does
# nothing when the tag exists. Needs root (debootstrap), a running Docker engine, and a CPython 3.12
# that runs against Debian bookworm's libraries (on pyenv machines: `pyenv prefix 3.12`).
set -euo pipefail

TAG="${LAMBDA_BASE_IMAGE:-public.ecr.aws/lambda/python:3.12-x86_64}"
HERE="$(cd "$(dirname "$0")" && pwd)"

if docker image inspect "$TAG" >/dev/null 2>&1; then
    echo "lambda base image $TAG: present"
    exit 0
fi

PYTHON_PREFIX="${PYTHON312_PREFIX:-$(pyenv prefix 3.12.1 2>/dev/null || dirname "$(dirname "$(command -v python3.12)")")}"
if [ ! -x "$PYTHON_PREFIX/bin/python3.12" ]; then
    echo "no CPython 3.12 found (set PYTHON312_PREFIX to its prefix)" >&2
    exit 2
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/rootfs"

echo "lambda base image: debootstrap bookworm (minbase) into $ROOT"
debootstrap --variant=minbase \
    --include=ca-certificates,libssl3,libffi8,libsqlite3-0,libexpat1,libuuid1,libreadline8,libbz2-1.0,liblzma5,zlib1g,libncursesw6,libgdbm6 \
    bookworm "$ROOT" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }

# The interpreter keeps its built-in prefix, so it lives at the same path inside the image.
mkdir -p "$ROOT$PYTHON_PREFIX" "$ROOT/var/lang/bin" "$ROOT/var/runtime" "$ROOT/var/task" "$ROOT/opt"
cp -a "$PYTHON_PREFIX/." "$ROOT$PYTHON_PREFIX/"
ln -sf "$PYTHON_PREFIX/bin/python3.12" "$ROOT/var/lang/bin/python3.12"
ln -sf python3.12 "$ROOT/var/lang/bin/python3"
ln -sf python3.12 "$ROOT/var/lang/bin/python"

# What the managed runtime provides: the runtime interface client and boto3.
"$PYTHON_PREFIX/bin/python3.12" -m pip install --quiet --no-compile --target "$ROOT/var/runtime" awslambdaric==4.2.2 boto3==1.43.108
install -m 0755 "$HERE/bootstrap" "$ROOT/var/runtime/bootstrap"
rm -rf "$ROOT/var/cache/apt/archives"/*.deb "$ROOT$PYTHON_PREFIX/lib/python3.12/test"

tar -C "$ROOT" -c . | docker import \
    --change 'ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV LAMBDA_TASK_ROOT=/var/task' \
    --change 'ENV LAMBDA_RUNTIME_DIR=/var/runtime' \
    --change 'WORKDIR /var/task' \
    --change 'ENTRYPOINT ["/var/runtime/bootstrap"]' \
    - "$TAG" >/dev/null
echo "lambda base image $TAG: built ($(docker image inspect "$TAG" --format '{{.Size}}') bytes)"
