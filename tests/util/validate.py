"""Validates a JSON document against one of the schemas in tests/schemas.

usage: validate.py SCHEMA_FILE DOCUMENT_FILE
Every schema in the schema's folder is registered under its `$id` (or
draft-04 `id`), so the CycloneDX schema's references to its SPDX licence list
and JSF resolve offline; and under its file name next to every `id`, as the
OCI image-spec schemas refer to each other by file name relative to their
`id`.
Exit 0 when valid; otherwise prints each error with its JSON path and exits 1.
"""

import json
import pathlib
import sys
import urllib.parse

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

schema_path = pathlib.Path(sys.argv[1])
document = json.loads(pathlib.Path(sys.argv[2]).read_text())
resources = []
loaded = []
for path in schema_path.parent.glob("*.json"):
    contents = json.loads(path.read_text())
    resource = Resource.from_contents(contents, default_specification=DRAFT7)
    loaded.append((path.name, resource))
    resources.append((path.name, resource))
    for key in ("$id", "id"):
        if isinstance(contents.get(key), str):
            resources.append((contents[key], resource))
ids = [uri for uri, _ in resources if "://" in uri]
for name, resource in loaded:
    for uri in ids:
        resources.append((urllib.parse.urljoin(uri, name), resource))
registry = Registry().with_resources(resources)
schema = json.loads(schema_path.read_text())
validator_class = jsonschema.validators.validator_for(schema)
validator = validator_class(schema, registry=registry, format_checker=validator_class.FORMAT_CHECKER)
errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
for error in errors:
    print(f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}")
sys.exit(1 if errors else 0)
