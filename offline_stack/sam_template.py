"""Read template.yaml the way SAM does: CloudFormation tags, parameter defaults, Ref and Sub."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = PROJECT_ROOT / "template.yaml"

# What the pseudo parameters resolve to offline.
PSEUDO_PARAMETERS = {
    "AWS::AccountId": "123456789012",
    "AWS::Region": "us-east-1",
    "AWS::Partition": "aws",
    "AWS::StackName": "dog-breed-classifier",
    "AWS::URLSuffix": "amazonaws.com",
}


class _CloudFormationLoader(yaml.SafeLoader):
    """Loads ``!Ref x`` as ``{"Ref": x}``, ``!Sub s`` as ``{"Fn::Sub": s}``, and so on."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node):
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CloudFormationLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict:
    return yaml.load(path.read_text(), Loader=_CloudFormationLoader)  # noqa: S506 (a SafeLoader subclass)


_NO_VALUE = {"Ref": "AWS::NoValue"}


@dataclass
class SamTemplate:
    """A loaded template with the parameter values in force (defaults unless overridden)."""

    document: dict
    parameters: dict[str, str]
    root: Path

    @classmethod
    def load(cls, path: Path = TEMPLATE_PATH, overrides: Mapping[str, str] | None = None) -> SamTemplate:
        document = load_template(path)
        parameters = {name: str(spec.get("Default", "")) for name, spec in document.get("Parameters", {}).items()}
        unknown = set(overrides or {}) - set(parameters)
        if unknown:
            raise KeyError(f"parameter overrides name parameters the template lacks: {sorted(unknown)}")
        parameters.update({k: str(v) for k, v in (overrides or {}).items()})
        return cls(document, parameters, path.parent)

    @property
    def resources(self) -> dict:
        return self.document["Resources"]

    def resource(self, logical_id: str) -> dict:
        if logical_id not in self.resources:
            raise KeyError(f"template.yaml has no resource {logical_id}")
        return self.resources[logical_id]

    def resolve(self, value):
        """Resolve Ref, GetAtt ``.Arn``, Sub and If in ``value`` with offline names; other intrinsics stay.
        ``Ref`` of a ``CommaDelimitedList`` parameter is its list; ``AWS::NoValue`` removes the key or item."""
        if isinstance(value, dict) and len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref" and argument in self.parameters:
                if self.document["Parameters"][argument].get("Type") == "CommaDelimitedList":
                    return [item.strip() for item in self.parameters[argument].split(",")]
                return self.parameters[argument]
            if key == "Ref" and argument in PSEUDO_PARAMETERS:
                return PSEUDO_PARAMETERS[argument]
            if key == "Ref" and argument in self.resources:
                return self.physical_id(argument)
            if key == "Fn::GetAtt" and argument[0] in self.resources and argument[1] == "Arn":
                return self.arn(argument[0])
            if key == "Fn::Sub" and isinstance(argument, str):
                return self.substitute(argument)
            if key == "Fn::Join":
                separator, items = argument
                resolved = self.resolve(items)
                if isinstance(resolved, list) and all(isinstance(item, str) for item in resolved):
                    return separator.join(resolved)
            if key == "Fn::Split":
                separator, text = argument
                resolved = self.resolve(text)
                if isinstance(resolved, str):
                    return resolved.split(separator)
            if key == "Fn::If":  # the branch the condition chooses with the parameter values in force
                condition, when_true, when_false = argument
                return self.resolve(when_true if self.condition(condition) else when_false)
        if isinstance(value, dict):
            resolved = {k: self.resolve(v) for k, v in value.items()}
            return {k: v for k, v in resolved.items() if v != _NO_VALUE}
        if isinstance(value, list):
            return [v for v in (self.resolve(v) for v in value) if v != _NO_VALUE]
        return value

    def substitute(self, text: str) -> str:
        """Resolve ``${Parameter}``, ``${AWS::Pseudo}``, ``${Resource}`` and ``${Resource.Arn}`` in ``text``."""

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name in self.parameters:
                return self.parameters[name]
            if name in PSEUDO_PARAMETERS:
                return PSEUDO_PARAMETERS[name]
            logical_id, _, attribute = name.partition(".")
            if logical_id in self.resources and attribute in ("", "Arn"):
                return self.physical_id(logical_id) if not attribute else self.arn(logical_id)
            raise KeyError(f"cannot resolve ${{{name}}} offline")

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    def physical_id(self, logical_id: str) -> str:
        """The name a resource gets offline: its template name, or the stack-derived name it is given."""
        properties = self.resource(logical_id).get("Properties", {})
        for key in ("FunctionName", "Name", "RoleName", "BucketName", "AlarmName"):
            if key in properties:
                return self.resolve(properties[key])
        stack = PSEUDO_PARAMETERS["AWS::StackName"]
        return (
            f"{stack}-{logical_id}".lower()
            if self.resource(logical_id)["Type"] == "AWS::S3::Bucket"
            else f"{stack}-{logical_id}"
        )

    def arn(self, logical_id: str) -> str:
        kind = self.resource(logical_id)["Type"]
        region, account = PSEUDO_PARAMETERS["AWS::Region"], PSEUDO_PARAMETERS["AWS::AccountId"]
        name = self.physical_id(logical_id)
        path = self.resolve(self.resource(logical_id).get("Properties", {}).get("Path", "/"))
        formats = {
            "AWS::IAM::Role": f"arn:aws:iam::{account}:role{path}{name}",
            "AWS::Serverless::Function": f"arn:aws:lambda:{region}:{account}:function:{name}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            # a key's id is random in AWS; offline it is derived from the stack and the key's logical id
            # (offline_stack/stack.py creates the key with it)
            "AWS::KMS::Key": f"arn:aws:kms:{region}:{account}:key/{uuid.uuid5(uuid.NAMESPACE_URL, name)}",
            "AWS::Serverless::StateMachine": f"arn:aws:states:{region}:{account}:stateMachine:{name}",
        }
        if kind not in formats:
            raise KeyError(f"no offline ARN format for {kind}")
        return formats[kind]

    def condition(self, name: str) -> bool:
        """The value of one of the template's Conditions with the parameter values in force."""
        return bool(self._evaluate(self.document["Conditions"][name]))

    def rendered(self) -> dict:
        """The template as CloudFormation would deploy it with these parameter values.

        Conditions are evaluated, resources whose condition is false are dropped, ``Fn::If`` takes its
        branch (``AWS::NoValue`` removes the property), and each parameter's default becomes the value
        in force, so linters judge exactly what this variant deploys.
        """
        document = {key: value for key, value in self.document.items() if key != "Conditions"}
        document["Parameters"] = {
            name: {**spec, "Default": self._typed_default(spec, self.parameters[name])}
            for name, spec in self.document.get("Parameters", {}).items()
        }
        document["Resources"] = {
            logical_id: self._choose_branches({k: v for k, v in resource.items() if k != "Condition"})
            for logical_id, resource in self.resources.items()
            if "Condition" not in resource or self.condition(resource["Condition"])
        }
        document["Outputs"] = {
            name: self._choose_branches({k: v for k, v in output.items() if k != "Condition"})
            for name, output in self.document.get("Outputs", {}).items()
            if "Condition" not in output or self.condition(output["Condition"])
        }
        return document

    def _choose_branches(self, value):
        if isinstance(value, dict) and set(value) == {"Fn::If"}:
            name, when_true, when_false = value["Fn::If"]
            return self._choose_branches(when_true if self.condition(name) else when_false)
        if isinstance(value, dict):
            chosen = {key: self._choose_branches(item) for key, item in value.items()}
            return {key: item for key, item in chosen.items() if item != {"Ref": "AWS::NoValue"}}
        if isinstance(value, list):
            return [item for item in map(self._choose_branches, value) if item != {"Ref": "AWS::NoValue"}]
        return value

    def _evaluate(self, expression):
        if not isinstance(expression, dict):
            return expression
        ((key, argument),) = expression.items()
        operations = {
            "Fn::Equals": lambda: self._evaluate(argument[0]) == self._evaluate(argument[1]),
            "Fn::Not": lambda: not self._evaluate(argument[0]),
            "Fn::And": lambda: all(self._evaluate(item) for item in argument),
            "Fn::Or": lambda: any(self._evaluate(item) for item in argument),
            "Condition": lambda: self.condition(argument),
            "Fn::Join": lambda: argument[0].join(self._list_value(argument[1])),
        }
        if key in operations:
            return operations[key]()
        return self.resolve(expression)

    def _list_value(self, value) -> list[str]:
        resolved = self._evaluate(value)
        return [item for item in resolved.split(",") if item] if isinstance(resolved, str) else resolved

    @staticmethod
    def _typed_default(spec: dict, value: str):
        return value if spec.get("Type") != "Number" else (float(value) if "." in value else int(value))

    def state_machine_definition(self, logical_id: str, substitutions: Mapping[str, str] | None = None) -> str:
        """The ASL text CloudFormation would give Step Functions: ``DefinitionUri``'s file, substituted.

        ``substitutions`` replace some of the template's ``DefinitionSubstitutions`` (the offline stack
        polls every second, not every minute); every ``${Name}`` left must be one of them.
        """
        properties = self.resource(logical_id)["Properties"]
        values = {name: str(self.resolve(value)) for name, value in properties["DefinitionSubstitutions"].items()}
        unknown = set(substitutions or {}) - set(values)
        if unknown:
            raise KeyError(f"{logical_id} has no DefinitionSubstitutions {sorted(unknown)}")
        values.update(substitutions or {})
        text = (self.root / properties["DefinitionUri"]).read_text()

        def replace(match: re.Match) -> str:
            if match.group(1) not in values:
                raise KeyError(f"{properties['DefinitionUri']} uses ${{{match.group(1)}}}, which is not substituted")
            return values[match.group(1)]

        return re.sub(r"\$\{([A-Za-z0-9]+)\}", replace, text)

    def function_properties(self, logical_id: str) -> dict:
        """The function's properties merged over Globals.Function (environment variables merged too)."""
        resource = self.resource(logical_id)
        if resource["Type"] != "AWS::Serverless::Function":
            raise KeyError(f"{logical_id} is a {resource['Type']}, not an AWS::Serverless::Function")
        global_properties = self.document.get("Globals", {}).get("Function", {})
        properties = {**global_properties, **resource["Properties"]}
        variables = {
            **global_properties.get("Environment", {}).get("Variables", {}),
            **resource["Properties"].get("Environment", {}).get("Variables", {}),
        }
        properties["Environment"] = {"Variables": variables}
        return properties
