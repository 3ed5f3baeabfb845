"""Validates a JSON document against one of the schemas in tests/schemas.

usage: validate.py SCHEMA_FILE DOCUMENT_FILE
Every schema in the schema's folder is registered under its `$id`, so the
CycloneDX schema's references to its SPDX licence list and JSF resolve offline.
Exit 0 when valid; otherwise prints each error with its JSON path and exits 1.
"""

import json
import pathlib
import sys

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

schema_path = pathlib.Path(sys.argv[1])
document = json.loads(pathlib.Path(sys.argv[2]).read_text())
resources = []
for path in schema_path.parent.glob("*.json"):
    contents = json.loads(path.read_text())
    resource = Resource.from_contents(contents, default_specification=DRAFT7)
    resources.append((path.name, resource))
    if "$id" in contents:
        resources.append((contents["$id"], resource))
registry = Registry().with_resources(resources)
schema = json.loads(schema_path.read_text())
validator_class = jsonschema.validators.validator_for(schema)
validator = validator_class(schema, registry=registry, format_checker=validator_class.FORMAT_CHECKER)
errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
for error in errors:
    print(f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}")
sys.exit(1 if errors else 0)
