"""Move the control plane's training jobs and endpoints through their states, doing the work on this machine.

What SageMaker does after a CreateTrainingJob or a Create/UpdateEndpoint call, for a state machine that
polls (the pipeline) to see:

- a training job is InProgress while ``LocalTrainingExecutor`` runs it, then Completed (with its
  ``FinalMetricDataList`` read from the log with the job's metric definitions, as SageMaker reads them),
  Failed (with its ``FailureReason``) or, after ``StopTrainingJob``, Stopped;
- a transform job (the release gate's golden-set scoring) is InProgress while ``LocalTransformExecutor`` answers
  every object, then Completed, Failed (with its ``FailureReason``) or, after ``StopTransformJob``, Stopped;
- an endpoint is Creating or Updating until ``LocalEndpoints`` serves its new config. A new endpoint whose
  container cannot start becomes Failed; an update whose container cannot start is rolled back, as
  SageMaker does: InService on the old config, with the ``FailureReason``.
- an update with deployment guardrails (a ``DeploymentConfig`` with a canary) moves the canary share of
  requests first, bakes, moves the rest, bakes again, and rolls back when one of its alarms fires. The alarms
  are the template's ``AWS::CloudWatch::Alarm`` resources, evaluated on every request the endpoint answered since
  the update began, both fleets' (SageMaker's invocation metrics are per endpoint and variant, not per fleet);
  CloudWatch would use one-minute periods, offline bakes last seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from offline_stack.aws_rules.cloudwatch import Alarm, moto_datapoints
from offline_stack.control_plane import sagemaker_state
from offline_stack.local_endpoints import LocalEndpoints, RolledBack
from offline_stack.sam_template import SamTemplate
from offline_stack.training_executor import LocalTrainingExecutor
from offline_stack.transform_executor import LocalTransformExecutor


def template_alarms(template: SamTemplate) -> dict[str, Alarm]:
    """The template's ``AWS::CloudWatch::Alarm`` resources, by alarm name, as CloudWatch would evaluate them."""
    return {
        template.physical_id(logical_id): Alarm.from_properties(template.resolve(resource["Properties"]))
        for logical_id, resource in template.resources.items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
        and ("Condition" not in resource or template.condition(resource["Condition"]))
    }


class Lifecycles:
    def __init__(
        self,
        executor: LocalTrainingExecutor,
        endpoints: LocalEndpoints,
        log: Callable[[str], None] = print,
        interval_seconds: float = 0.2,
        template: Callable[[], SamTemplate] = SamTemplate.load,
        active: Callable[[], bool] = lambda: True,
        transforms: LocalTransformExecutor | None = None,
    ) -> None:
        """``active``: whether this stack's control plane emulates lifecycles (another stack in the process
        shares moto's backends, and must not have its jobs run twice)."""
        self.executor, self.endpoints, self.log, self.template = executor, endpoints, log, template
        self.active, self.transforms = active, transforms
        self._started: set[str] = set()
        self._moving: set[str] = set()  # endpoints whose change is in progress
        self._workers: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(interval_seconds,), name="lifecycles", daemon=True)

    def start(self) -> Lifecycles:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)
        for worker in self._workers:
            worker.join(timeout=30)

    def _watch(self, interval_seconds: float) -> None:
        while not self._stopping.wait(interval_seconds):
            if not self.active():
                continue
            state = sagemaker_state()
            for name, job in list(state.training_jobs.items()):
                if job.training_job_status == "InProgress" and name not in self._started:
                    self._started.add(name)
                    worker = threading.Thread(target=self._train, args=(name,), name=f"train-{name}", daemon=True)
                    self._workers.append(worker)
                    worker.start()
            for name, transform in list(state.transform_jobs.items()):
                if self.transforms and transform.transform_job_status == "InProgress" and name not in self._started:
                    self._started.add(name)
                    worker = threading.Thread(
                        target=self._transform, args=(name,), name=f"transform-{name}", daemon=True
                    )
                    self._workers.append(worker)
                    worker.start()
            for name, endpoint in list(state.endpoints.items()):
                if endpoint.endpoint_status in ("Creating", "Updating") and name not in self._moving:
                    self._moving.add(name)
                    worker = threading.Thread(
                        target=self._serve, args=(name, endpoint), name=f"serve-{name}", daemon=True
                    )
                    self._workers.append(worker)
                    worker.start()

    def _train(self, name: str) -> None:
        job = sagemaker_state().training_jobs[name]
        try:
            outcome = self.executor.run(name, should_stop=lambda: job.training_job_status == "Stopping")
        except Exception as exc:  # the job could not even start (a missing channel, a bad source)
            job.training_job_status, job.secondary_status, job.failure_reason = "Failed", "Failed", repr(exc)
            return
        job.final_metric_data_list = [
            {"MetricName": metric, "Value": value, "Timestamp": job.creation_time}
            for metric, value in sorted(outcome.final_metrics.items())
        ]
        if outcome.stopped:
            job.training_job_status, job.secondary_status = "Stopped", "Stopped"
        elif outcome.succeeded:
            job.training_job_status, job.secondary_status = "Completed", "Completed"
        else:
            job.training_job_status, job.secondary_status = "Failed", "Failed"
            job.failure_reason = outcome.failure_reason

    def _transform(self, name: str) -> None:
        job = sagemaker_state().transform_jobs[name]
        try:
            assert self.transforms is not None
            self.transforms.run(name, should_stop=lambda: job.transform_job_status == "Stopping")
        except Exception as exc:  # TransformFailed, or a model that could not be read or started
            job.transform_job_status, job.failure_reason = "Failed", str(exc)[-1000:]
            self.log(f"transform job {name}: Failed: {job.failure_reason}")
        else:
            job.transform_job_status = "Stopped" if job.transform_job_status == "Stopping" else "Completed"
        job.transform_end_time = datetime.now(UTC)

    def _serve(self, name: str, endpoint) -> None:
        previous = self.endpoints.serving(name)
        try:
            guardrails = getattr(endpoint, "last_deployment_config", None) if previous else None
            if guardrails and endpoint.endpoint_status == "Updating":
                self._roll_out(name, endpoint.endpoint_config_name, guardrails)
            else:
                self.endpoints.serve_config(name, endpoint.endpoint_config_name)
        except Exception as exc:
            if isinstance(exc, RolledBack):
                reason = f"Update rolled back: {exc}"
            else:
                reason = f"The container for {endpoint.endpoint_config_name} did not start: {str(exc)[-600:]}"
            if previous is None:
                endpoint.endpoint_status, endpoint.failure_reason = "Failed", reason
            else:  # SageMaker keeps the old fleet serving and says why the update did not happen
                config = sagemaker_state().endpoint_configs[previous]
                endpoint.endpoint_config_name, endpoint.endpoint_status = previous, "InService"
                endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
                endpoint.failure_reason = (
                    reason if reason.startswith("Update rolled back") else f"Update rolled back. {reason}"
                )
            self.log(f"endpoint {name}: {endpoint.failure_reason}")
        else:
            endpoint.endpoint_status = "InService"
        finally:
            endpoint.previous_fleet = None  # the old fleet has retired (or serves alone again)
            self._moving.discard(name)

    def _roll_out(self, name: str, config_name: str, guardrails: dict) -> None:
        routing = guardrails["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
        known = template_alarms(self.template())
        watched = [
            known[alarm["AlarmName"]]
            for alarm in guardrails.get("AutoRollbackConfiguration", {}).get("Alarms", [])
            if alarm["AlarmName"] in known
        ]
        began = datetime.now(UTC)
        states = {alarm.name: False for alarm in watched}  # each alarm's state at its last evaluation

        def tripped() -> str | None:
            """An alarm in ALARM on what CloudWatch holds since the update began, read as CloudWatch reads it."""
            self.endpoints.metrics.flush()
            datapoints = moto_datapoints(began)
            for alarm in watched:
                states[alarm.name] = alarm.in_alarm(datapoints, states[alarm.name])
                if states[alarm.name]:
                    return alarm.describe(datapoints)
            return None

        self.endpoints.roll_out(
            name,
            config_name,
            canary_share(routing, self.endpoints.instance_count(name)),
            routing.get("WaitIntervalInSeconds", 0),
            tripped,
        )


def canary_share(routing: dict, instance_count: int) -> float:
    """The share of traffic the first step of a blue/green update sends to the new fleet (1.0: all at once)."""
    if routing["Type"] != "CANARY":
        return 1.0
    size = routing["CanarySize"]
    if size["Type"] == "INSTANCE_COUNT":
        return min(1.0, size["Value"] / max(instance_count, 1))
    return size["Value"] / 100
