"""Negative probes for every policy in policies/ (the application roles' and, for each identity set, the release
pipeline's): the nearest requests a mistake would admit.

For every statement, from its own Resource and Condition: the same action on a sibling of each resource (another
prefix of the bucket, another object of the same type whose name shares the prefix, another bucket, Region or
account) with the statement's conditions met, and on the resource itself with one condition not met (the condition
key's other value, or the key absent). A probe is kept when the whole policy denies it today, so each one is a request
the role must keep being refused.

The probes are pinned in ``tests/unit/policy_probes.json`` and checked by ``tests/unit/test_policy_narrowness.py``:
a widened Resource or a dropped Condition lets a pinned probe through, and the failure names the policy and the
statement. After a deliberate change to a policy, write them again and review the diff:

    PYTHONPATH=.:layers/shared/python:training_jobs python -m tests.support.policy_probes --write
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from pathlib import Path

from offline_stack.aws_rules.iam import Permission, Policy
from offline_stack.sam_template import PROJECT_ROOT, SamTemplate

POLICIES_DIR = PROJECT_ROOT / "policies"
PINNED = PROJECT_ROOT / "tests" / "unit" / "policy_probes.json"
ACCOUNT, OTHER_ACCOUNT = "123456789012", "210987654321"
REGION, OTHER_REGION = "us-east-1", "eu-west-3"
OTHER = "zz-other"
PIPELINE_REPOSITORY = "octo-org/dog-breeds"  # the repository the pipeline's roles trust, in the offline rendering
# Statements whose Resource is "*" with no condition have nothing narrower to probe: AWS offers no resource-level
# permission for their actions (the Sid says so). Their exact shape is pinned instead (test_policy_narrowness.py).
_ARN = re.compile(r"(arn:[^:]+:[^:]+:[^:]*:[^:]*:)(.*)")


def policy_files() -> list[Path]:
    return sorted(POLICIES_DIR.glob("*.json"))


def rendered(path: Path, template: SamTemplate | None = None) -> dict:
    """The policy as deployed offline: the template's parameters, names and ARNs substituted."""
    return json.loads((template or SamTemplate.load()).substitute(path.read_text()))


def pipeline_documents() -> dict[str, dict]:
    """policies/pipeline/*.json as each identity set's bootstrap stack deploys them (``ops.bootstrap.render``):
    ``pipeline/<file>@<set>`` -> the document with that set's scope, bucket and role names."""
    from ops.bootstrap import IDENTITY_SETS, render

    documents = {}
    for identity_set in IDENTITY_SETS:
        identities = render(identity_set, PIPELINE_REPOSITORY)
        documents[f"pipeline/pipeline-execution.json@{identity_set}"] = identities.pipeline_policy
        documents[f"pipeline/cloudformation-execution.json@{identity_set}"] = identities.cloudformation_policy
        documents[f"pipeline/permissions-boundary.json@{identity_set}"] = identities.boundary_policy
        if identities.registry_reader is not None:
            documents[f"pipeline/registry-reader.json@{identity_set}"] = identities.registry_reader.pipeline_policy
    return documents


BUCKET_POLICY = "template.yaml:ArtifactsBucketPolicy"


def documents(template: SamTemplate | None = None) -> dict[str, dict]:
    """Every policy in policies/ as deployed offline: the application roles' (by file name) and the pipeline's
    (by file and identity set); and the artifacts bucket's, inline in template.yaml (its Denies hold every
    principal, so they are probed as an identity policy's Denies are)."""
    template = template or SamTemplate.load()
    bucket = template.resolve(template.resources["ArtifactsBucketPolicy"]["Properties"]["PolicyDocument"])
    return (
        {path.name: rendered(path, template) for path in policy_files()}
        | pipeline_documents()
        | {BUCKET_POLICY: bucket}
    )


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def concrete(pattern: str) -> str:
    """A resource the pattern matches."""
    return pattern.replace("*", "x").replace("?", "x")


def split_resource(pattern: str) -> tuple[str, str]:
    """(the ARN's fixed head, its resource part): ``arn:aws:s3:::`` + ``bucket/key``; ``arn:aws:sagemaker:r:a:`` +
    ``endpoint/name``."""
    if pattern.startswith("arn:aws:s3:::"):
        return "arn:aws:s3:::", pattern.removeprefix("arn:aws:s3:::")
    match = _ARN.fullmatch(pattern)
    return (match.group(1), match.group(2)) if match else ("", pattern)


def resource_neighbours(pattern: str) -> list[str]:
    """Resources a widened ``pattern`` would admit and the pattern does not: siblings at every level of its path,
    another bucket, Region and account."""
    head, rest = split_resource(pattern)
    literal = rest.split("*")[0].split("?")[0]
    found = []
    s3_object = head == "arn:aws:s3:::" and "/" in rest
    tail = "/x" if s3_object else ""
    for index, character in enumerate(literal):
        if character in "/:":
            found.append(head + literal[: index + 1] + OTHER + tail)  # another name at this level
    if literal and literal[-1] in "/:-" and len(literal) > 1:
        found.append(head + literal[:-1] + OTHER + tail)  # a sibling prefix that shares the name's start
    if literal and literal[-1] not in "/:-":
        found.append(head + literal + OTHER + tail)  # a longer name that starts with this one
    segments = concrete(rest).split("/")
    for index in range(len(segments)):  # every level, those after a wildcard too: another name there
        found.append(head + "/".join([*segments[:index], OTHER, *segments[index + 1 :]]))
    if head == "arn:aws:s3:::":
        bucket, _, key = concrete(rest).partition("/")
        found.append(f"{head}{OTHER}-bucket" + (f"/{key}" if key else ""))
    if f":{REGION}:" in pattern:
        found.append(concrete(pattern).replace(f":{REGION}:", f":{OTHER_REGION}:", 1))
    if f":{ACCOUNT}:" in pattern:
        found.append(concrete(pattern).replace(f":{ACCOUNT}:", f":{OTHER_ACCOUNT}:", 1))
    own = Policy([{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": pattern}]}])
    unique = dict.fromkeys(found)
    return [resource for resource in unique if not own.allows(Permission("x:Y", resource))]


def satisfying(condition: dict) -> dict:
    """A request context that meets every condition of a statement."""
    context: dict = {}
    for operator, keys in condition.items():
        qualifier, _, base = operator.rpartition(":")
        for key, expected in keys.items():
            value = _meeting(base.removesuffix("IfExists"), as_list(expected))
            if value is None:
                context.pop(key, None)
            elif base == "Null":  # "false": present, with whatever value another condition asks of it
                context.setdefault(key, value)
            else:
                context[key] = (value,) if qualifier else value
    return context


def _meeting(operator: str, expected: list) -> str | None:
    if operator == "Null":
        return None if str(expected[0]).lower() == "true" else "present"
    if operator.startswith("ArnNot"):  # the nearest ARN it leaves out: a sibling of the first it names
        head, slash, _ = str(expected[0]).rpartition("/")
        return f"{head}/{OTHER}" if slash else OTHER
    if operator.startswith("StringNot"):
        return OTHER
    if operator == "Bool":
        return str(expected[0]).lower()
    if operator.endswith("Like"):
        return concrete(str(expected[0]))
    return str(expected[0])  # Equals: the value itself ("*" in s3:if-none-match is the header's own value)


def violating(condition: dict) -> Iterator[tuple[str, dict]]:
    """(the condition key, a context that meets every other condition and not this one)."""
    base_context = satisfying(condition)
    for operator, keys in condition.items():
        qualifier, _, base = operator.rpartition(":")
        base = base.removesuffix("IfExists")
        for key, expected in keys.items():
            expected = [str(value) for value in as_list(expected)]
            if base == "Null":
                other = "present" if expected[0].lower() == "true" else None
            elif base == "Bool":
                other = "false" if expected[0].lower() == "true" else "true"
            elif base.startswith(("StringNot", "ArnNot")):
                other = concrete(expected[0])
            else:
                other = OTHER
            context = dict(base_context)
            if other is None:
                context.pop(key, None)
            else:
                context[key] = (other,) if qualifier else other
            yield key, context
            if not base.startswith(("StringNot", "ArnNot", "Null", "Bool")):
                absent = {name: value for name, value in base_context.items() if name != key}
                yield key, absent


ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}


def denies(document: dict, permission: Permission) -> bool:
    """A Deny of ``document`` refuses the request, whatever else would allow it."""
    return not Policy([{"Statement": [*document["Statement"], ALLOW_ALL]}]).allows(permission)


def deny_probes(statement: dict, document: dict) -> list[dict]:
    """A Deny's two kinds of probe: what it must keep refusing (each action on its own resource, its conditions met,
    by the nearest principal its exception leaves out), and what it must not reach (the resource's neighbours, and
    its own resource with a condition not met): a narrowed Resource or widened exception lets a refused one through;
    a widened Resource or a dropped Condition refuses one it must not."""
    actions = [action for action in as_list(statement["Action"]) if "*" not in action]
    service = as_list(statement["Action"])[0].split(":")[0]
    actions = actions or [f"{service}:{name}" for name in ("GetObject", "PutObject")]  # ``s3:*``: a read, a write
    condition = statement.get("Condition", {})
    met = satisfying(condition)
    probes = []
    resources = as_list(statement.get("Resource", "*"))
    for pattern in resources:
        for action in actions:
            own = Permission(action, pattern.replace("*", OTHER), met)
            if denies(document, own):
                probes.append({"action": action, "resource": own.resource, "context": met, "probes": "refused"})
        for neighbour in resource_neighbours(pattern):
            if not denies(document, Permission(actions[0], neighbour, met)):
                probes.append({"action": actions[0], "resource": neighbour, "context": met, "probes": "resource"})
    for key, context in violating(condition):
        target = resources[0].replace("*", OTHER)
        if not denies(document, Permission(actions[0], target, context)):
            probes.append({"action": actions[0], "resource": target, "context": context, "probes": f"condition {key}"})
    return [_jsonable(probe) for probe in probes]


def statement_probes(statement: dict, policy: Policy, document: dict | None = None) -> list[dict]:
    """The statement's probes that ``policy`` (its whole policy) denies today; a Deny's from ``deny_probes``."""
    if statement["Effect"] != "Allow":
        return deny_probes(statement, document or {"Statement": policy.statements})
    actions = [action for action in as_list(statement["Action"]) if "*" not in action]
    resources = [resource for resource in as_list(statement.get("Resource", "*")) if resource != "*"]
    condition = statement.get("Condition", {})
    met = satisfying(condition)
    probes = []
    for pattern in resources:
        for neighbour in resource_neighbours(pattern):
            for action in actions:
                if not policy.allows(Permission(action, neighbour, met)):
                    probes.append({"action": action, "resource": neighbour, "context": met, "probes": "resource"})
                    break
    targets = [concrete(pattern) for pattern in resources] or ["*"]
    for key, context in violating(condition):
        for action in actions:
            permission = Permission(action, targets[0], context)
            if not policy.allows(permission):
                probes.append(
                    {"action": action, "resource": targets[0], "context": context, "probes": f"condition {key}"}
                )
                break
    return [_jsonable(probe) for probe in probes]


def _jsonable(probe: dict) -> dict:
    probe["context"] = {
        key: list(value) if isinstance(value, tuple) else value for key, value in probe["context"].items()
    }
    return probe


def permission_of(probe: dict) -> Permission:
    context = {key: tuple(value) if isinstance(value, list) else value for key, value in probe["context"].items()}
    return Permission(probe["action"], probe["resource"], context)


def all_probes(template: SamTemplate | None = None) -> dict[str, dict[str, list[dict]]]:
    """{policy file: {Sid: [probe, ...]}} for every statement that has any."""
    found: dict[str, dict[str, list[dict]]] = {}
    for name, document in documents(template).items():
        policy = Policy([document])
        for statement in document["Statement"]:
            probes = statement_probes(statement, policy, document)
            if probes:
                found.setdefault(name, {})[statement["Sid"]] = probes
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"write them to {PINNED.relative_to(PROJECT_ROOT)}")
    args = parser.parse_args(argv)
    probes = all_probes()
    text = json.dumps(probes, indent=1, sort_keys=True) + "\n"
    if args.write:
        PINNED.write_text(text)
        count = sum(len(items) for statements in probes.values() for items in statements.values())
        print(f"{PINNED.relative_to(PROJECT_ROOT)}: {count} probes")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
