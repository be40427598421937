"""Checks deploy/kubernetes/*.yaml against the Kubernetes API schema, offline.

    python deploy/kubernetes/validate.py [FILE...]

The schema is the one the `kubernetes` Python client (pinned in
testing_env/requirements-dagster.txt) is generated from, the API's OpenAPI document: its models
refuse unknown keys (a typo never passes silently), missing required fields and values of the
wrong type. Without arguments it also checks that cronjob.yaml runs the Job of job.yaml.
Prints one `file: kind name: problem` per line and exits 1 if there is any.
Run by tests/it/orchestration.rs.
"""

import sys
from pathlib import Path

import pydantic
import yaml
from kubernetes.client import models

HERE = Path(__file__).resolve().parent
KINDS = {
    ("v1", "ConfigMap"): models.V1ConfigMap,
    ("v1", "Secret"): models.V1Secret,
    ("v1", "PersistentVolumeClaim"): models.V1PersistentVolumeClaim,
    ("batch/v1", "Job"): models.V1Job,
    ("batch/v1", "CronJob"): models.V1CronJob,
}


def validate(path: Path) -> list[str]:
    problems = []
    for n, doc in enumerate(yaml.safe_load_all(path.read_text())):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            problems.append(f"document {n}: not a mapping")
            continue
        kind = (doc.get("apiVersion"), doc.get("kind"))
        model = KINDS.get(kind)
        if model is None:
            problems.append(f"document {n}: apiVersion/kind {kind} is not one of {sorted(KINDS)}")
            continue
        name = (doc.get("metadata") or {}).get("name")
        if not name:
            problems.append(f"{doc['kind']} (document {n}): metadata.name is missing")
        try:
            model.model_validate(doc)
        except pydantic.ValidationError as e:
            for err in e.errors():
                where = ".".join(str(p) for p in err["loc"])
                problems.append(f"{doc['kind']} {name}: {where}: {err['msg']}")
    return [f"{path.name}: {p}" for p in problems]


def same_job(job: Path, cronjob: Path) -> list[str]:
    """The CronJob runs exactly the Job of job.yaml (the two files must not drift apart)."""
    job_spec = yaml.safe_load(job.read_text())["spec"]
    cron_spec = yaml.safe_load(cronjob.read_text())["spec"]["jobTemplate"]["spec"]
    if job_spec != cron_spec:
        return [f"{cronjob.name}: spec.jobTemplate.spec differs from the spec of {job.name}"]
    return []


def main(argv: list[str]) -> int:
    files = [Path(a) for a in argv] or sorted(HERE.glob("*.yaml"))
    problems = [p for f in files for p in validate(f)]
    if not argv:
        problems += same_job(HERE / "job.yaml", HERE / "cronjob.yaml")
    for p in problems:
        print(p)
    print(f"{len(files)} files, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
