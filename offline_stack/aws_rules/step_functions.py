"""Step Functions' execution-history budget, and how many history events each state writes.

Rules (``docs/aws-semantics.md`` lists each with its offline test):

- **A Standard workflow execution fails at 25,000 history events.** Source: Step Functions developer guide,
  "Step Functions service quotas", "Quotas related to state machine executions" (maximum execution history
  size, not adjustable).
- **Events per state**: a Task that succeeds first time writes TaskStateEntered, TaskScheduled, TaskStarted,
  TaskSucceeded and TaskStateExited (5); a Wait, Choice or Pass state writes its StateEntered and StateExited
  (2); a retry adds TaskScheduled, TaskStarted and TaskFailed (3) per attempt. Source: Step Functions API
  reference, ``HistoryEvent`` (its ``type`` values), and the developer guide's execution history examples.

``training_poll_events`` walks the pipeline's own definition round its training poll loop for a job of a
given length, so the budget is counted from the file that is deployed, not from a copy of its shape.
"""

from __future__ import annotations

from collections import Counter

HISTORY_EVENT_LIMIT = 25_000
EVENTS_PER_STATE = {"Task": 5, "Wait": 2, "Choice": 2, "Pass": 2}


def training_poll_events(definition: dict, poll: dict[str, float], job_seconds: float) -> tuple[int, float]:
    """History events the training poll loop writes while a job runs ``job_seconds``, and its last interval.

    ``poll`` is the execution's ``$.poll`` object as ReadInput makes it (``training_seconds``,
    ``training_step_seconds``, ``training_max_seconds``). The job is InProgress at every describe. The walk
    ends as soon as the count passes ``HISTORY_EVENT_LIMIT``: the execution has failed there, so a loop whose
    waits never add up to the job's length (a zero or shrinking interval) is answered too, not walked forever.
    """
    states, poll = definition["States"], dict(poll)
    name, elapsed, events = "WaitForTraining", 0.0, 0
    while elapsed < job_seconds and events <= HISTORY_EVENT_LIMIT:
        state = states[name]
        events += EVENTS_PER_STATE[state["Type"]]
        if state["Type"] == "Wait":
            elapsed += poll[state["SecondsPath"].removeprefix("$.poll.")]
            name = state["Next"]
        elif state["Type"] == "Task":
            name = state["Next"]
        elif state["Type"] == "Pass":
            poll = {key.removesuffix(".$"): _pass_value(value, poll) for key, value in state["Parameters"].items()}
            name = state["Next"]
        else:  # Choice: the job's status is InProgress, and the poll choice compares the intervals
            name = _choose(state, poll)
    return events, poll["training_seconds"]


def _choose(state: dict, poll: dict[str, float]) -> str:
    for choice in state["Choices"]:
        if "NumericLessThanPath" in choice:
            left = poll[choice["Variable"].removeprefix("$.poll.")]
            if left < poll[choice["NumericLessThanPath"].removeprefix("$.poll.")]:
                return choice["Next"]
    return state["Default"]


def _pass_value(expression: str, poll: dict[str, float]) -> float:
    if expression.startswith("States.MathAdd("):
        left, right = (part.strip() for part in expression.removeprefix("States.MathAdd(").rstrip(")").split(","))
        return poll[left.removeprefix("$.poll.")] + poll[right.removeprefix("$.poll.")]
    return poll[expression.removeprefix("$.poll.")]


def events_by_state_type(history: list[dict], state_types: dict[str, str]) -> Counter:
    """From a real execution's history: (state type, events written) -> how many times, per state run."""
    runs: Counter = Counter()
    current, written = None, 0
    for event in history:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            current, written = event["stateEnteredEventDetails"]["name"], 1
        elif current is not None:
            written += 1
            if kind.endswith("StateExited"):
                runs[(state_types[current], written)] += 1
                current = None
    return runs
