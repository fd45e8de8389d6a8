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


PRICES = Prices(
    as_of="2026-11",
    lambda_per_million_requests=0.20,
    lambda_per_gb_second=0.0000166667,
    http_api_per_million_requests=1.00,
    endpoint_per_hour={"ml.m5.large": 0.115, "ml.m5.xlarge": 0.23, "ml.c5.large": 0.102, "ml.c5.xlarge": 0.204},
)
HOURS_PER_MONTH = 730
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


def plot(config: Configuration, load: Load, path: Path) -> None:
    """Admitted traffic, 429 share and monthly cost against offered traffic, for this configuration."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    offered = [load.peak_rps * step / 20 for step in range(1, 41)]
    plans = [
        plan(config, Load(rps, load.burst, load.function_seconds, load.model_seconds, load.average_share))
        for rps in offered
    ]
    figure, (traffic, cost) = pyplot.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    traffic.plot(offered, [p.admitted_rps for p in plans], label="answered (requests/s)")
    traffic.plot(offered, [p.function_capacity_rps for p in plans], linestyle="--", label="function capacity")
    traffic.axvline(load.peak_rps, color="grey", linestyle=":", label="your peak")
    share = traffic.twinx()
    share.plot(offered, [100 * p.route_429_share for p in plans], color="tab:red", label="429 share (%, right)")
    share.set_ylabel("429 share (%)")
    share.set_ylim(0, 100)
    traffic.set_xlabel("offered traffic (requests/s)")
    traffic.set_ylabel("requests/s")
    traffic.set_ylim(bottom=0)
    lines = traffic.get_lines() + share.get_lines()
    traffic.legend(lines, [line.get_label() for line in lines], loc="upper left")
    cost.plot(offered, [p.monthly_cost["total"] for p in plans], color="tab:green")
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
    args = parser.parse_args(argv)
    if args.peak_rps <= 0 or args.function_ms <= 0 or args.model_ms <= 0 or args.burst < 0:
        parser.error("--peak-rps, --function-ms and --model-ms must be above 0, --burst at least 0")
    if not 0 < args.average_share <= 1:
        parser.error("--average-share is a fraction above 0, at most 1")
    if args.from_bench:
        try:
            args.model_ms, overhead_ms = latencies_from_bench(args.from_bench)
        except (OSError, ValueError, KeyError, StopIteration) as exc:
            parser.error(f"--from-bench {args.from_bench}: not make bench's JSON ({exc!r}); run make bench first")
        args.function_ms = args.model_ms + overhead_ms + args.network_ms
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
    if args.validate:
        from ops.capacity_validation import validate

        measured = validate(config, load)
        print(f"\n{measured.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
