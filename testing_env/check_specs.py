#!/usr/bin/env python3
"""Checks every components/*/spec.yaml against components/spec.schema.json and for consistency.

Checks, per spec:
- the spec validates against the spec schema (JSON Schema 2020-12);
- `name` equals the directory name and `x-runtime.driver` equals `name`;
- `configSchema` is a valid JSON Schema, closed (additionalProperties: false), every property has
  a description and a type, every `default` and every `required` name fits the properties;
- every `x-connection-fields` name, the first segment of every `secrets`, `x-secret`,
  `redaction.extras` and `loggingPolicy.sensitivePaths` pointer, every `llmHints.inputAliases` key
  and every field a constraint names is a configSchema property; constraint values fit the
  field's schema;
- every example's config validates against configSchema and satisfies the constraints. An
  example with `connection` counts the x-connection-fields as provided (they come from the
  connection at run time), as validation does when connections are not resolved.

Prints one line per problem (file, JSON path, message) and exits 1 if there is any.
Usage: python3 testing_env/check_specs.py [repo root]
"""

import copy
import json
import sys
from pathlib import Path

try:
    import yaml
    from jsonschema import Draft202012Validator
except ImportError as e:  # pragma: no cover
    sys.exit(f"check_specs.py needs pyyaml and jsonschema: pip install pyyaml jsonschema ({e})")

# Stands for a value a connection provides but the checker cannot know.
FROM_CONNECTION = object()


def json_path(parts):
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def pointer_head(pointer):
    return pointer.split("/")[1].replace("~1", "/").replace("~0", "~")


def connection_fields(spec):
    fields = spec.get("x-connection-fields") or []
    return [f if isinstance(f, str) else f.get("name") for f in fields]


def is_set(value):
    return value is not None and value != ""


class Checker:
    def __init__(self, root):
        self.root = root
        self.problems = []
        schema_path = root / "components" / "spec.schema.json"
        self.schema = json.loads(schema_path.read_text())
        Draft202012Validator.check_schema(self.schema)
        self.validator = Draft202012Validator(self.schema)

    def problem(self, file, path, message):
        self.problems.append(f"{file}: {json_path(path)}: {message}")

    def check_all(self):
        files = sorted((self.root / "components").glob("*/spec.yaml"))
        for f in files:
            self.check_file(f)
        return len(files)

    def check_file(self, path):
        file = path.relative_to(self.root)
        try:
            spec = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            self.problem(file, [], f"not valid YAML: {e}")
            return
        if not isinstance(spec, dict):
            self.problem(file, [], "a spec must be a mapping")
            return

        for err in sorted(self.validator.iter_errors(spec), key=lambda e: list(e.absolute_path)):
            self.problem(file, list(err.absolute_path), err.message)

        directory = path.parent.name
        if spec.get("name") != directory:
            self.problem(file, ["name"], f"is {spec.get('name')!r} but the directory is {directory!r}")
        driver = (spec.get("x-runtime") or {}).get("driver")
        if driver != spec.get("name"):
            self.problem(file, ["x-runtime", "driver"], f"is {driver!r}, must equal name {spec.get('name')!r}")

        cs = spec.get("configSchema")
        if not isinstance(cs, dict) or not isinstance(cs.get("properties"), dict):
            return  # reported by the schema validation
        try:
            Draft202012Validator.check_schema(cs)
        except Exception as e:  # jsonschema.SchemaError
            self.problem(file, ["configSchema"] + list(e.absolute_path), f"not a valid JSON Schema: {e.message}")
            return
        props = cs["properties"]
        self.check_properties(file, cs, props)
        self.check_references(file, spec, props)
        self.check_constraints(file, spec, props)
        self.check_examples(file, spec, cs, props)

    def check_properties(self, file, cs, props):
        if cs.get("additionalProperties") is not False:
            self.problem(file, ["configSchema", "additionalProperties"], "must be false (unknown keys are errors)")
        for name in cs.get("required", []):
            if name not in props:
                self.problem(file, ["configSchema", "required"], f"{name!r} is not a property")
        for name, schema in props.items():
            where = ["configSchema", "properties", name]
            if not schema.get("description"):
                self.problem(file, where, "has no description")
            if not any(k in schema for k in ("type", "oneOf", "anyOf", "const", "enum")):
                self.problem(file, where, "has no type")
            if "default" in schema:
                for err in Draft202012Validator(schema).iter_errors(schema["default"]):
                    self.problem(file, where + ["default"], f"does not fit the property: {err.message}")

    def check_references(self, file, spec, props):
        fields = spec.get("x-connection-fields") or []
        for i, name in enumerate(connection_fields(spec)):
            if name not in props:
                self.problem(file, ["x-connection-fields", i], f"{name!r} is not a configSchema property")
        if fields and "connection" not in props:
            self.problem(file, ["x-connection-fields"], "declared, but configSchema has no `connection` property")
        lists = [
            (["secrets"], spec.get("secrets")),
            (["x-secret"], spec.get("x-secret")),
            (["redaction", "extras"], (spec.get("redaction") or {}).get("extras")),
            (["loggingPolicy", "sensitivePaths"], (spec.get("loggingPolicy") or {}).get("sensitivePaths")),
        ]
        for where, pointers in lists:
            for i, pointer in enumerate(pointers or []):
                if not isinstance(pointer, str) or not pointer.startswith("/"):
                    continue  # reported by the schema validation
                head = pointer_head(pointer)
                if head not in props:
                    self.problem(file, where + [i], f"{pointer!r}: {head!r} is not a configSchema property")
        aliases = (spec.get("llmHints") or {}).get("inputAliases") or {}
        for name in aliases:
            if name not in props:
                self.problem(file, ["llmHints", "inputAliases", name], "is not a configSchema property")

    def check_constraints(self, file, spec, props):
        rules = (spec.get("constraints") or {}).get("required") or []
        for i, rule in enumerate(rules):
            base = ["constraints", "required", i]
            for field, value in (rule.get("when") or {}).items():
                if field not in props:
                    self.problem(file, base + ["when", field], "is not a configSchema property")
                elif value is not None and not isinstance(value, dict):
                    for err in Draft202012Validator(props[field]).iter_errors(value):
                        self.problem(file, base + ["when", field], f"{value!r} can never match: {err.message}")
            for field, checks in (rule.get("must") or {}).items():
                if field not in props:
                    self.problem(file, base + ["must", field], "is not a configSchema property")
                    continue
                for value in (checks or {}).get("enum", []):
                    for err in Draft202012Validator(props[field]).iter_errors(value):
                        self.problem(file, base + ["must", field, "enum"], f"{value!r} does not fit the field: {err.message}")

    def check_examples(self, file, spec, cs, props):
        conn_fields = set(connection_fields(spec))
        for i, example in enumerate(spec.get("examples") or []):
            config = example.get("config")
            if not isinstance(config, dict):
                continue  # reported by the schema validation
            where = ["examples", i, "config"]
            schema = copy.deepcopy(cs)
            uses_connection = "connection" in config
            if uses_connection:
                schema["required"] = [r for r in schema.get("required", []) if r not in conn_fields]
            for err in Draft202012Validator(schema).iter_errors(config):
                self.problem(file, where + list(err.absolute_path), err.message)
            self.check_example_constraints(file, spec, props, config, uses_connection, conn_fields, where)

    def check_example_constraints(self, file, spec, props, config, uses_connection, conn_fields, where):
        def provided(field):
            if is_set(config.get(field)):
                return config[field]
            if uses_connection and field in conn_fields:
                return FROM_CONNECTION
            return None

        def effective(field):
            value = provided(field)
            if value is None:
                return props.get(field, {}).get("default")
            return value

        rules = (spec.get("constraints") or {}).get("required") or []
        for rule in rules:
            applies = True
            for field, expected in (rule.get("when") or {}).items():
                if isinstance(expected, dict):  # {present: bool}
                    applies = applies and (provided(field) is not None) == expected["present"]
                    continue
                value = effective(field)
                if value is FROM_CONNECTION:
                    applies = False  # unknown until the connection is resolved
                elif expected is None:
                    applies = applies and value is None
                else:
                    applies = applies and value == expected
            if not applies:
                continue
            for field, checks in (rule.get("must") or {}).items():
                value = effective(field)
                failed = False
                if "present" in checks and (provided(field) is not None) != checks["present"]:
                    failed = True
                if value is not None and value is not FROM_CONNECTION:
                    if "minItems" in checks and not (isinstance(value, list) and len(value) >= checks["minItems"]):
                        failed = True
                    if "enum" in checks and value not in checks["enum"]:
                        failed = True
                if failed:
                    self.problem(file, where, f"violates constraint on {field!r}: {rule.get('error')}")


def main():
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
    checker = Checker(root)
    count = checker.check_all()
    for p in checker.problems:
        print(p)
    if checker.problems:
        print(f"{len(checker.problems)} problem(s) in {count} spec(s)")
        return 1
    print(f"ok: {count} spec(s) valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
