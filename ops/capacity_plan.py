"""``make plan``: what traffic a configuration carries, what it costs, and what to change for a target load.

    python -m ops.capacity_plan --peak-rps 10 [--burst 5] [--function-ms 120] [--model-ms 60]
        [--parameter-overrides Name=Value ...] [--validate] [--plot plan.png]

The configuration is the template's parameters (with your overrides). Latencies are given, or measured
(``--function-ms``: the prediction function's duration, endpoint call included; ``--model-ms``: one request on
one endpoint instance; ``make bench`` measures the model). The arithmetic:

- The function carries at most ``reserved concurrency / duration`` requests a second (Little's law: requests
  in flight = arrival rate x time in the system). Above that Lambda throttles, and API Gateway answers 500.
- The route throttle (a token bucket: ``rate`` a second, ``burst`` at once) should answer 429 first, so its rate
  stays under what the function carries and its burst under the reserved concurrency. Its 429 share at the
  peak is simulated for independent callers (Poisson arrivals), which a small burst serves worse than an
  even stream.
- An endpoint instance serves ``1000 / model-ms`` requests a second with one worker. Auto-scaling's target is
  ``SageMakerVariantInvocationsPerInstance``, counted PER MINUTE: 15 means about 0.25 requests a second per
  instance, not 15.
- Monthly cost from list prices (``PRICES``, dated): Lambda requests and GB-seconds, HTTP API requests, and
  endpoint instance-hours at the average instance count.
- ``--requests-per-day`` compares the two endpoint kinds (``EndpointKind``) for that traffic: an instance endpoint
  (auto-scaled between ScalingMinCapacity and ScalingMaxCapacity, billed per instance-hour whatever the traffic)
  against a serverless one (billed per second of each request's duration and per GB of memory, plus the data in
  and out, nothing while idle; provisioned concurrency billed while provisioned). It prints each one's monthly
  cost and cost per 1,000 predictions, the break-even traffic, and the serverless cold start beside it (measured
  by ``make bench``: a container started and the model loaded; AWS's own provisioning adds to it).

``--validate`` runs the offline API (route throttle and reserved concurrency as configured, a model that
takes ``--model-ms``) at the peak for a few seconds and prints the predicted and measured 429 share and p95
latency side by side.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from offline_stack.sam_template import SamTemplate


# List prices, us-east-1, as of 2026-11 (https://aws.amazon.com/lambda/pricing/, /api-gateway/pricing/,
# /sagemaker/pricing/). Other regions differ by up to about 30 %.
@dataclass(frozen=True)
class Prices:
    as_of: str
    lambda_per_million_requests: float
    lambda_per_gb_second: float
    http_api_per_million_requests: float
    endpoint_per_hour: Mapping[str, float]
    training_per_hour: Mapping[str, float]
    # Serverless Inference (on-demand): per second of request duration, per GB of MemorySizeInMB; data in and out
    serverless_per_gb_second: float
    serverless_per_gb_processed: float
    # Provisioned concurrency: per second provisioned, per GB; and the requests it serves, per second, per GB
    provisioned_per_gb_second: float
    provisioned_inference_per_gb_second: float


PRICES = Prices(
    as_of="2026-11",
    lambda_per_million_requests=0.20,
    lambda_per_gb_second=0.0000166667,
    http_api_per_million_requests=1.00,
    endpoint_per_hour={"ml.m5.large": 0.115, "ml.m5.xlarge": 0.23, "ml.c5.large": 0.102, "ml.c5.xlarge": 0.204},
    # Training instances, on-demand (docs/deploy.md's cost table; TrainingInstanceType's default first)
    training_per_hour={"ml.m5.2xlarge": 0.461, "ml.m5.xlarge": 0.23, "ml.g4dn.xlarge": 0.736},
    # https://aws.amazon.com/sagemaker/pricing/, "Serverless Inference" (1024 MB: $0.0000200 a second; the price
    # is proportional to the memory), "Data processed in and out" $0.016 a GB, provisioned concurrency
    serverless_per_gb_second=0.0000200,
    serverless_per_gb_processed=0.016,
    provisioned_per_gb_second=0.0000048,
    provisioned_inference_per_gb_second=0.0000100,
)

HOURS_PER_MONTH = 730
SECONDS_PER_MONTH = 3600 * HOURS_PER_MONTH
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
# Auto-scaling aims instances at this share of what one can serve, leaving room for the minute it takes to react
TARGET_UTILISATION = 0.7
UNRESERVED_ACCOUNT_CONCURRENCY = 10  # a new account's default: what an unreserved function can count on


@dataclass(frozen=True)
class Configuration:
    reserved_concurrency: int | None
    throttle_rate: float
    throttle_burst: int
    min_instances: int
    max_instances: int
    target_per_instance_per_minute: float
    memory_mb: int
    instance_type: str

    @classmethod
    def from_template(cls, template: SamTemplate) -> Configuration:
        parameters = template.parameters
        reserved = parameters["PredictReservedConcurrency"]
        return cls(
            reserved_concurrency=None if reserved == "none" else int(reserved),
            throttle_rate=float(parameters["ApiThrottleRateLimit"]),
            throttle_burst=int(parameters["ApiThrottleBurstLimit"]),
            min_instances=int(parameters["ScalingMinCapacity"]),
            max_instances=int(parameters["ScalingMaxCapacity"]),
            target_per_instance_per_minute=float(parameters["ScalingTargetInvocationsPerInstance"]),
            memory_mb=int(template.document["Globals"]["Function"]["MemorySize"]),
            instance_type=parameters["EndpointInstanceType"],
        )


@dataclass(frozen=True)
class Load:
    peak_rps: float
    burst: int
    function_seconds: float
    model_seconds: float
    average_share: float = 0.3  # average traffic over the month, as a share of the peak
    function_p95_seconds: float | None = None  # when measured; the duration otherwise


@dataclass(frozen=True)
class Plan:
    function_capacity_rps: float
    admitted_rps: float
    route_429_share: float
    lambda_throttled_share: float
    instance_capacity_rps: float
    instances_needed: int
    instances_at_peak: int
    endpoint_overloaded: bool
    scaling_target_now_rps: float
    recommended_throttle_rate: float
    recommended_throttle_burst: int
    recommended_reserved_concurrency: int
    recommended_target_per_minute: float
    predicted_p95_seconds: float
    monthly_cost: dict


def plan(config: Configuration, load: Load) -> Plan:
    concurrency = config.reserved_concurrency or UNRESERVED_ACCOUNT_CONCURRENCY
    function_capacity = concurrency / load.function_seconds
    route_429 = refused_share(load.peak_rps, config.throttle_rate, config.throttle_burst)
    admitted = load.peak_rps * (1 - route_429)
    lambda_throttled = max(0.0, admitted - function_capacity) / load.peak_rps
    instance_capacity = 1 / load.model_seconds
    needed = max(config.min_instances, math.ceil(admitted / (instance_capacity * TARGET_UTILISATION)))
    at_peak = min(needed, config.max_instances)
    rate, burst = throttle_for(load.peak_rps, load.burst)
    wanted_concurrency = math.ceil(rate * load.function_seconds / TARGET_UTILISATION)
    average_rps = load.peak_rps * load.average_share
    requests = average_rps * 3600 * HOURS_PER_MONTH
    served = min(average_rps, admitted) * 3600 * HOURS_PER_MONTH
    average_instances = max(config.min_instances, min(at_peak, math.ceil(needed * load.average_share)))
    hourly = PRICES.endpoint_per_hour.get(config.instance_type, PRICES.endpoint_per_hour["ml.m5.large"])
    cost = {
        "lambda": served / 1e6 * PRICES.lambda_per_million_requests
        + served * load.function_seconds * config.memory_mb / 1024 * PRICES.lambda_per_gb_second,
        "http_api": requests / 1e6 * PRICES.http_api_per_million_requests,
        "endpoint": average_instances * HOURS_PER_MONTH * hourly,
    }
    cost["total"] = sum(cost.values())
    return Plan(
        function_capacity_rps=function_capacity,
        admitted_rps=admitted,
        route_429_share=route_429,
        lambda_throttled_share=lambda_throttled,
        instance_capacity_rps=instance_capacity,
        instances_needed=needed,
        instances_at_peak=at_peak,
        endpoint_overloaded=needed > config.max_instances,
        scaling_target_now_rps=config.target_per_instance_per_minute / 60,
        recommended_throttle_rate=rate,
        recommended_throttle_burst=burst,
        recommended_reserved_concurrency=max(wanted_concurrency, burst + 1),
        recommended_target_per_minute=round(60 * instance_capacity * TARGET_UTILISATION, 1),
        # Admitted requests do not queue (the function has room for them): their time is the function's own
        predicted_p95_seconds=load.function_p95_seconds or load.function_seconds,
        monthly_cost=cost,
    )


@dataclass(frozen=True)
class Traffic:
    """A traffic profile for choosing the endpoint kind."""

    requests_per_day: float
    peak_rps: float
    model_seconds: float  # one request on one instance (make bench)
    serverless_seconds: float  # one request's billed duration on a serverless endpoint
    payload_bytes: int = 100_000  # the image in; the answer out is a few hundred bytes


@dataclass(frozen=True)
class EndpointKindCosts:
    """Monthly endpoint cost of each kind for one traffic profile (Lambda and API Gateway cost the same for both)."""

    requests_per_month: float
    instances_average: int
    instances: float
    serverless: float
    serverless_provisioned: float  # with ProvisionedConcurrency warm all month (no cold start)

    def per_thousand(self, monthly: float) -> float:
        return monthly / (self.requests_per_month / 1000) if self.requests_per_month else math.inf


def instance_endpoint_cost(config: Configuration, traffic: Traffic) -> tuple[float, int]:
    """(monthly cost, average instance count): auto-scaling keeps each instance at ``TARGET_UTILISATION`` of what it
    serves, never fewer than ScalingMinCapacity nor more than ScalingMaxCapacity, and every hour is billed."""
    average_rps = traffic.requests_per_day / 86400
    per_instance = TARGET_UTILISATION / traffic.model_seconds
    needed = math.ceil(average_rps / per_instance - 1e-9)  # (exactly full is not one more instance)
    instances = min(config.max_instances, max(config.min_instances, needed))
    hourly = PRICES.endpoint_per_hour.get(config.instance_type, PRICES.endpoint_per_hour["ml.m5.large"])
    return instances * HOURS_PER_MONTH * hourly, instances


def serverless_endpoint_cost(memory_mb: int, traffic: Traffic, provisioned_concurrency: int = 0) -> float:
    """Monthly cost of a serverless endpoint: each request's duration x memory, the data in and out, and the
    provisioned concurrency kept all month (whose requests are billed at its lower inference rate)."""
    gigabytes = memory_mb / 1024
    requests = traffic.requests_per_day * DAYS_PER_MONTH
    data = requests * (traffic.payload_bytes + 1000) / 1e9 * PRICES.serverless_per_gb_processed
    duration = requests * traffic.serverless_seconds * gigabytes
    if not provisioned_concurrency:
        return duration * PRICES.serverless_per_gb_second + data
    kept = provisioned_concurrency * gigabytes * SECONDS_PER_MONTH * PRICES.provisioned_per_gb_second
    return kept + duration * PRICES.provisioned_inference_per_gb_second + data


def endpoint_kind_costs(config: Configuration, traffic: Traffic, memory_mb: int) -> EndpointKindCosts:
    instances, average = instance_endpoint_cost(config, traffic)
    return EndpointKindCosts(
        requests_per_month=traffic.requests_per_day * DAYS_PER_MONTH,
        instances_average=average,
        instances=instances,
        serverless=serverless_endpoint_cost(memory_mb, traffic),
        serverless_provisioned=serverless_endpoint_cost(memory_mb, traffic, provisioned_concurrency=1),
    )


def break_even_requests_per_day(config: Configuration, traffic: Traffic, memory_mb: int) -> float | None:
    """The least traffic (requests a day) at which serverless costs as much as the instance endpoint, or None if
    serverless stays cheaper up to what ScalingMaxCapacity instances serve."""

    def serverless_dearer(per_day: float) -> bool:
        at = Traffic(
            per_day, traffic.peak_rps, traffic.model_seconds, traffic.serverless_seconds, traffic.payload_bytes
        )
        return serverless_endpoint_cost(memory_mb, at) >= instance_endpoint_cost(config, at)[0]

    ceiling = config.max_instances * TARGET_UTILISATION / traffic.model_seconds * 86400
    if not serverless_dearer(ceiling):
        return None
    low, high = 0.0, ceiling  # serverless is cheaper at 0; dearer at the ceiling
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (low, middle) if serverless_dearer(middle) else (middle, high)
    return high


def kinds_report(config: Configuration, traffic: Traffic, memory_mb: int, cold_start_seconds: float | None) -> str:
    costs = endpoint_kind_costs(config, traffic, memory_mb)
    even = break_even_requests_per_day(config, traffic, memory_mb)
    ratio = costs.instances / costs.serverless if costs.serverless else math.inf
    cold = f"{cold_start_seconds:.1f} s measured offline" if cold_start_seconds is not None else "not measured"
    lines = [
        f"Endpoint kind for {traffic.requests_per_day:,.0f} predictions a day ({costs.requests_per_month:,.0f} a "
        f"month; list prices {PRICES.as_of}, us-east-1):",
        f"- instances: {costs.instances_average} x {config.instance_type} on average "
        f"(ScalingMinCapacity {config.min_instances}), ${costs.instances:,.2f} a month, "
        f"${costs.per_thousand(costs.instances):,.4f} per 1,000 predictions",
        f"- serverless ({memory_mb} MB, {traffic.serverless_seconds * 1000:.0f} ms a request): "
        f"${costs.serverless:,.2f} a month, ${costs.per_thousand(costs.serverless):,.4f} per 1,000 predictions "
        f"({ratio:,.1f}x less than instances); cold start after idle: {cold}",
        f"- serverless with ProvisionedConcurrency=1 (no cold start for one request at a time): "
        f"${costs.serverless_provisioned:,.2f} a month",
        (
            f"- break-even: serverless costs as much as instances at {even:,.0f} predictions a day "
            f"({even / 86400:.2f} a second on average); below it choose EndpointKind=serverless"
            if even is not None
            else "- break-even: serverless stays cheaper up to what ScalingMaxCapacity instances serve"
        ),
        "  (Lambda and API Gateway cost the same with either kind and are left out here.)",
    ]
    return "\n".join(lines)


def kind_cost_curves(config: Configuration, traffic: Traffic, memory_mb: int) -> dict[str, list[float]]:
    """Monthly endpoint cost of each kind at 1 prediction a day, then ten steps a decade (x 10^0.1), up to what
    ScalingMaxCapacity instances serve (beyond it the instance endpoint refuses): what ``plot_kinds`` draws."""
    ceiling = config.max_instances * TARGET_UTILISATION / traffic.model_seconds * 86400
    steps = range(0, 10 * math.ceil(math.log10(ceiling)) + 1)
    days = [10 ** (step / 10) for step in steps if 10 ** (step / 10) <= ceiling]
    at = [
        Traffic(d, traffic.peak_rps, traffic.model_seconds, traffic.serverless_seconds, traffic.payload_bytes)
        for d in days
    ]
    return {
        "predictions_a_day": days,
        "instances": [instance_endpoint_cost(config, t)[0] for t in at],
        "serverless": [serverless_endpoint_cost(memory_mb, t) for t in at],
        "serverless_provisioned": [serverless_endpoint_cost(memory_mb, t, provisioned_concurrency=1) for t in at],
    }


def plot_kinds(config: Configuration, traffic: Traffic, memory_mb: int, path: Path) -> None:
    """Monthly endpoint cost against predictions a day, both kinds, the break-even marked."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    curves = kind_cost_curves(config, traffic, memory_mb)
    days = curves["predictions_a_day"]
    figure, axes = pyplot.subplots(figsize=(7, 4.5), constrained_layout=True)
    axes.plot(days, curves["instances"], label=f"instances ({config.instance_type})")
    axes.plot(days, curves["serverless"], label=f"serverless ({memory_mb} MB)")
    axes.plot(days, curves["serverless_provisioned"], linestyle="--", label="serverless, 1 provisioned")
    even = break_even_requests_per_day(config, traffic, memory_mb)
    if even is not None:
        axes.axvline(even, color="grey", linestyle=":", label=f"break-even {even:,.0f}/day")
    axes.axvline(traffic.requests_per_day, color="black", linestyle="-.", linewidth=0.8, label="your traffic")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("predictions a day")
    axes.set_ylabel(f"endpoint cost a month (USD, list prices {PRICES.as_of})")
    axes.legend()
    figure.suptitle("Which endpoint kind costs less")
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def refused_share(offered_rps: float, rate: float, burst: int, arrivals: int = 20000) -> float:
    """The share of requests a token bucket (``rate`` a second, ``burst`` at most) refuses when they arrive
    independently of each other (a Poisson process, as many separate callers make), simulated. It is more than
    ``1 - rate / offered``: a small bucket cannot save the tokens of a quiet moment for a busy one."""
    generator = random.Random(0)  # noqa: S311 (a simulation, not security)
    tokens, refused, now, last = float(max(burst, 1)), 0, 0.0, 0.0
    capacity = float(max(burst, 1))  # API Gateway admits one request even with a burst of 0
    for _ in range(arrivals):
        now += generator.expovariate(offered_rps)
        tokens, last = min(capacity, tokens + (now - last) * rate), now
        if tokens >= 1:
            tokens -= 1
        else:
            refused += 1
    return refused / arrivals


def throttle_for(peak_rps: float, burst: int, refused_at_most: float = 0.01) -> tuple[float, int]:
    """A route throttle that refuses at most ``refused_at_most`` of independent callers at the peak: a rate a
    quarter above it, and the smallest bucket (at least ``burst``) that absorbs their bunching."""
    rate = round(1.25 * peak_rps, 2)
    for size in range(max(burst, 1), 1000):
        if refused_share(peak_rps, rate, size, arrivals=5000) <= refused_at_most:
            return rate, size
    return rate, 1000


def report(config: Configuration, load: Load, result: Plan) -> str:
    reserved = config.reserved_concurrency or f"none (the account's pool; {UNRESERVED_ACCOUNT_CONCURRENCY} assumed)"
    lines = [
        f"Load: peak {load.peak_rps:g} requests/s, bursts of {load.burst}, "
        f"function {load.function_seconds * 1000:.0f} ms, "
        f"model {load.model_seconds * 1000:.0f} ms per request per instance",
        f"Configuration: reserved concurrency {reserved}, route throttle {config.throttle_rate:g}/s burst "
        f"{config.throttle_burst}, {config.min_instances}-{config.max_instances} x {config.instance_type}, "
        f"scaling target {config.target_per_instance_per_minute:g} invocations per instance PER MINUTE "
        f"(= {config.target_per_instance_per_minute / 60:.2f} requests/s per instance)",
        "",
        f"- the function carries at most {result.function_capacity_rps:.1f} requests/s "
        f"(reserved concurrency / duration, Little's law)",
        f"- the route admits {result.admitted_rps:.1f} requests/s; at the peak {result.route_429_share:.0%} get 429 "
        f"from API Gateway, {result.lambda_throttled_share:.0%} would be throttled by Lambda (500)",
        f"- one {config.instance_type} serves about {result.instance_capacity_rps:.1f} requests/s; at "
        f"{TARGET_UTILISATION:.0%} utilisation the admitted traffic needs {result.instances_needed} instance(s)"
        + (
            f", more than ScalingMaxCapacity {config.max_instances}: the endpoint is the bottleneck"
            if result.endpoint_overloaded
            else ""
        ),
        f"- the scaling target asks for a new instance above {result.scaling_target_now_rps:.2f} requests/s per "
        f"instance; for this model, {result.recommended_target_per_minute:g} per minute keeps each at "
        f"{TARGET_UTILISATION:.0%}",
        f"- predicted p95 latency of answered requests: {result.predicted_p95_seconds * 1000:.0f} ms",
        "",
        "To carry the peak (at most 1 % of independent callers refused, instances at 70 %):",
        f"  PredictReservedConcurrency={result.recommended_reserved_concurrency} "
        f"ApiThrottleRateLimit={result.recommended_throttle_rate:g} "
        f"ApiThrottleBurstLimit={result.recommended_throttle_burst} "
        f"ScalingMaxCapacity={max(config.max_instances, result.instances_needed)} "
        f"ScalingTargetInvocationsPerInstance={result.recommended_target_per_minute:g}",
        "",
        f"Monthly cost at {load.average_share:.0%} of the peak on average (list prices {PRICES.as_of}, us-east-1): "
        + ", ".join(f"{name} ${value:,.2f}" for name, value in result.monthly_cost.items()),
    ]
    return "\n".join(lines)


def capacity_curves(config: Configuration, load: Load) -> dict[str, list[float]]:
    """What this configuration answers and costs from 5 % to twice the peak, in 5 % steps: what ``plot`` draws."""
    offered = [load.peak_rps * step / 20 for step in range(1, 41)]
    plans = [
        plan(config, Load(rps, load.burst, load.function_seconds, load.model_seconds, load.average_share))
        for rps in offered
    ]
    return {
        "offered_rps": offered,
        # what the route admits and the function carries (past its capacity Lambda throttles: 500, not answered)
        "answered_rps": [min(p.admitted_rps, p.function_capacity_rps) for p in plans],
        "function_capacity_rps": [p.function_capacity_rps for p in plans],
        "route_429_percent": [100 * p.route_429_share for p in plans],
        "monthly_cost": [p.monthly_cost["total"] for p in plans],
    }


def plot(config: Configuration, load: Load, path: Path) -> None:
    """Admitted traffic, 429 share and monthly cost against offered traffic, for this configuration."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    curves = capacity_curves(config, load)
    offered = curves["offered_rps"]
    figure, (traffic, cost) = pyplot.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    traffic.plot(offered, curves["answered_rps"], label="answered (requests/s)")
    traffic.plot(offered, curves["function_capacity_rps"], linestyle="--", label="function capacity")
    traffic.axvline(load.peak_rps, color="grey", linestyle=":", label="your peak")
    share = traffic.twinx()
    share.plot(offered, curves["route_429_percent"], color="tab:red", label="429 share (%, right)")
    share.set_ylabel("429 share (%)")
    share.set_ylim(0, 100)
    traffic.set_xlabel("offered traffic (requests/s)")
    traffic.set_ylabel("requests/s")
    traffic.set_ylim(bottom=0)
    lines = traffic.get_lines() + share.get_lines()
    traffic.legend(lines, [line.get_label() for line in lines], loc="upper left")
    cost.plot(offered, curves["monthly_cost"], color="tab:green")
    cost.set_ylim(bottom=0)
    cost.set_xlabel("peak traffic (requests/s)")
    cost.set_ylabel(f"monthly cost (USD, list prices {PRICES.as_of})")
    figure.suptitle("Capacity and cost of this configuration")
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def latencies_from_bench(path: Path) -> tuple[float, float]:
    """(model ms, function overhead ms) from make bench's JSON: a 500x375 JPEG served, and the handler's own time."""
    bench = json.loads(path.read_text())
    request = next(row for row in bench["endpoint_requests"] if row["image"] == "500x375")
    return request["project"]["median_ms"], bench["handler_overhead"]["project_overhead_ms"]


def cold_start_from_bench(path: Path) -> float | None:
    """A model container's start (process, model load, fast path) in ms, from make bench's JSON, if it has one."""
    bench = json.loads(path.read_text())
    start = bench.get("endpoint_cold_start")
    return start["project"]["median_ms"] if start else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peak-rps", type=float, required=True, help="requests a second at the peak")
    parser.add_argument("--burst", type=int, default=1, help="requests that arrive at the same moment")
    parser.add_argument("--function-ms", type=float, default=120.0, help="prediction function duration, p50")
    parser.add_argument("--model-ms", type=float, default=60.0, help="one request on one endpoint instance")
    parser.add_argument("--average-share", type=float, default=0.3, help="average traffic as a share of the peak")
    parser.add_argument(
        "--from-bench",
        type=Path,
        nargs="?",
        const=Path(".offline/bench/bench.json"),
        default=None,
        help="take --model-ms (a 500x375 JPEG request, served) and the handler's overhead from make bench's JSON, "
        "plus --network-ms for the function's call to the endpoint",
    )
    parser.add_argument("--network-ms", type=float, default=20.0, help="the function's round trip to the endpoint")
    parser.add_argument("--parameter-overrides", nargs="*", default=[], metavar="Name=Value")
    parser.add_argument("--plot", type=Path, default=None, help="write the capacity and cost plot here (PNG)")
    parser.add_argument("--validate", action="store_true", help="run the offline API at the peak and compare")
    parser.add_argument(
        "--requests-per-day", type=float, default=None, help="compare the endpoint kinds for this traffic"
    )
    parser.add_argument("--p99-ms", type=float, default=None, help="latency the callers need at the 99th percentile")
    parser.add_argument(
        "--serverless-ms", type=float, default=None, help="one request's duration on serverless (default: --model-ms)"
    )
    parser.add_argument("--cold-start-ms", type=float, default=None, help="a serverless cold start (default: bench)")
    parser.add_argument("--kinds-plot", type=Path, default=None, help="write the endpoint-kind cost plot here (PNG)")
    args = parser.parse_args(argv)
    if args.peak_rps <= 0 or args.function_ms <= 0 or args.model_ms <= 0 or args.burst < 0:
        parser.error("--peak-rps, --function-ms and --model-ms must be above 0, --burst at least 0")
    if not 0 < args.average_share <= 1:
        parser.error("--average-share is a fraction above 0, at most 1")
    for name in ("requests_per_day", "p99_ms", "serverless_ms", "cold_start_ms"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name.replace('_', '-')} must be above 0 (got {value:g})")
    if args.from_bench:
        try:
            args.model_ms, overhead_ms = latencies_from_bench(args.from_bench)
        except (OSError, ValueError, KeyError, StopIteration) as exc:
            parser.error(f"--from-bench {args.from_bench}: not make bench's JSON ({exc!r}); run make bench first")
        args.function_ms = args.model_ms + overhead_ms + args.network_ms
        if args.cold_start_ms is None:
            args.cold_start_ms = cold_start_from_bench(args.from_bench)
    overrides = dict(item.split("=", 1) for item in args.parameter_overrides if "=" in item)
    try:
        config = Configuration.from_template(SamTemplate.load(overrides=overrides))
    except KeyError as exc:
        parser.error(str(exc))
    load = Load(args.peak_rps, args.burst, args.function_ms / 1000, args.model_ms / 1000, args.average_share)
    result = plan(config, load)
    print(report(config, load, result))
    if args.plot:
        plot(config, load, args.plot)
        print(f"\nplot: {args.plot}")
    if args.requests_per_day is not None:
        memory_mb = int(SamTemplate.load(overrides=overrides).parameters["ServerlessMemorySizeMB"])
        traffic = Traffic(
            args.requests_per_day, args.peak_rps, args.model_ms / 1000, (args.serverless_ms or args.model_ms) / 1000
        )
        cold = args.cold_start_ms / 1000 if args.cold_start_ms is not None else None
        print(f"\n{kinds_report(config, traffic, memory_mb, cold)}")
        if args.p99_ms is not None and cold is not None and cold * 1000 > args.p99_ms:
            print(
                f"  p99 target {args.p99_ms:g} ms: a cold start takes longer, so serverless meets it only while under "
                "1 % of requests follow an idle period, or with ServerlessProvisionedConcurrency"
            )
        if args.kinds_plot:
            plot_kinds(config, traffic, memory_mb, args.kinds_plot)
            print(f"plot: {args.kinds_plot}")
    if args.validate:
        from ops.capacity_validation import validate

        measured = validate(config, load)
        print(f"\n{measured.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
