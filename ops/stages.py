"""The release pipeline's stages as `samconfig.toml` names them: one place to read a stage's stack, region and
parameters, for every tool that acts on a stage (`make integration-test`, `promote-model`, the offline rehearsal).

A stage is a `sam deploy --config-env <stage>` environment. Feature-branch stacks are the testing stage's
configuration under another stack name (`STACK_NAME=...`).
"""

from __future__ import annotations

import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

SAMCONFIG = Path(__file__).resolve().parent.parent / "samconfig.toml"
STAGES = ("testing", "prod")


@dataclass(frozen=True)
class Stage:
    name: str
    stack_name: str
    region: str
    parameter_overrides: dict[str, str]


def read_stage(name: str, stack_name: str | None = None, samconfig: Path = SAMCONFIG) -> Stage:
    """The ``[<name>]`` environment of samconfig.toml; ``stack_name`` replaces its stack (a feature branch's)."""
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}: samconfig.toml has {', '.join(STAGES)}")
    environment = tomllib.loads(samconfig.read_text()).get(name)
    if environment is None:
        raise ValueError(f"samconfig.toml has no [{name}] environment")
    shared = environment.get("global", {}).get("parameters", {})
    deploy = environment.get("deploy", {}).get("parameters", {})
    overrides = dict(pair.split("=", 1) for pair in shlex.split(deploy.get("parameter_overrides", "")) if "=" in pair)
    return Stage(name, stack_name or shared["stack_name"], shared.get("region", "us-east-1"), overrides)
