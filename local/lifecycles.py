"""Move the control plane's training jobs and endpoints through their states, doing the work on this machine.

What SageMaker does after a CreateTrainingJob or a Create/UpdateEndpoint call, for a state machine that
polls (the pipeline) to see:

- a training job is InProgress while ``LocalTrainingExecutor`` runs it, then Completed (with its
  ``FinalMetricDataList`` read from the log with the job's metric definitions, as SageMaker reads them),
  Failed (with its ``FailureReason``) or, after ``StopTrainingJob``, Stopped;
- an endpoint is Creating or Updating until ``LocalEndpoints`` serves its new config. A new endpoint whose
  container cannot start becomes Failed; an update whose container cannot start is rolled back, as
  SageMaker does: InService on the old config, with the ``FailureReason``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from local.control_plane import sagemaker_state
from local.local_endpoints import LocalEndpoints
from local.training_executor import LocalTrainingExecutor


class Lifecycles:
    def __init__(
        self,
        executor: LocalTrainingExecutor,
        endpoints: LocalEndpoints,
        log: Callable[[str], None] = print,
        interval_seconds: float = 0.2,
    ) -> None:
        self.executor, self.endpoints, self.log = executor, endpoints, log
        self._started: set[str] = set()
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
            state = sagemaker_state()
            for name, job in list(state.training_jobs.items()):
                if job.training_job_status == "InProgress" and name not in self._started:
                    self._started.add(name)
                    worker = threading.Thread(target=self._train, args=(name,), name=f"train-{name}", daemon=True)
                    self._workers.append(worker)
                    worker.start()
            for name, endpoint in list(state.endpoints.items()):
                if endpoint.endpoint_status in ("Creating", "Updating"):
                    self._serve(name, endpoint)

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

    def _serve(self, name: str, endpoint) -> None:
        previous = self.endpoints.serving(name)
        try:
            self.endpoints.serve_config(name, endpoint.endpoint_config_name)
        except Exception as exc:
            reason = f"The container for {endpoint.endpoint_config_name} did not start: {str(exc)[-600:]}"
            if previous is None:
                endpoint.endpoint_status, endpoint.failure_reason = "Failed", reason
            else:  # SageMaker keeps the old fleet serving and says why the update did not happen
                config = sagemaker_state().endpoint_configs[previous]
                endpoint.endpoint_config_name, endpoint.endpoint_status = previous, "InService"
                endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
                endpoint.failure_reason = f"Update rolled back. {reason}"
            self.log(f"endpoint {name}: {endpoint.failure_reason}")
            return
        endpoint.endpoint_status = "InService"
