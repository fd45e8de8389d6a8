"""The planner's prediction holds on the offline API: the 429 share at the peak within 20 %, side by side."""

from offline_stack.sam_template import SamTemplate
from ops.capacity_plan import Configuration, Load
from ops.capacity_validation import validate


def test_the_planned_429_share_is_what_the_offline_api_answers_at_the_peak():
    # Given the template's defaults (reserved concurrency 2, route throttle 4/s with a burst of 1) at twice the rate
    config = Configuration.from_template(SamTemplate.load())
    result = validate(config, Load(peak_rps=8, burst=1, function_seconds=0.1, model_seconds=0.06), seconds=15)
    print(f"\n{result.describe()}")
    # Then the share of 429s the front answered is the planned one, within 20 %
    assert abs(result.share_429 - result.planned.route_429_share) <= 0.2 * result.planned.route_429_share
    assert result.p95_seconds > 0
