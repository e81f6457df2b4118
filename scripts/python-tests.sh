#!/usr/bin/env bash
# Runs the management-API tests that drive Portico with boto3 and the AWS CLI.
# Creates (once) a virtualenv under target/python-venv with boto3, awscli and pytest from PyPI,
# builds the portico binary, and runs pytest on tests/python. Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=target/python-venv
if [ ! -x "$VENV/bin/pytest" ] || [ ! -x "$VENV/bin/aws" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check boto3 awscli pytest
fi
cargo build -p portico --bin portico
PORTICO_BINARY="$PWD/target/debug/portico" PATH="$PWD/$VENV/bin:$PATH" \
  "$VENV/bin/pytest" -q tests/python "$@"
