"""Targets: the servers the REST suite can run against.

A target module exposes ``create(**options)`` returning a started Target (see
tests/rest/README.md for the interface).  ``load()`` picks the module from
the environment:

- ``QZ_REST_URL`` set: an already running server (targets/external.py);
- else ``QZ_REST_TARGET`` = ``quartzd`` (default) or ``worker``.
"""
import importlib
import os


def load():
    if os.environ.get("QZ_REST_URL"):
        name = "external"
    else:
        name = os.environ.get("QZ_REST_TARGET", "quartzd")
    return importlib.import_module("targets." + name)
