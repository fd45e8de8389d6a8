"""How a training process finds its place in a job (torchrun's variables, SageMaker's hosts, or alone), and what the
process group's collectives give back, with two real processes over gloo on loopback (a few seconds)."""

from __future__ import annotations

import json
import socket

import pytest
import torch
import torch.multiprocessing as multiprocessing

from breed_classifier.distributed import (
    SAGEMAKER_MASTER_PORT,
    DistributedSetupError,
    ProcessGroupSpec,
    detect_process_group,
    gather_from_processes,
    start_process_group,
    stop_process_group,
    sum_across_processes,
)


def test_torchruns_variables_come_first_with_their_defaults():
    assert detect_process_group({"RANK": "1", "WORLD_SIZE": "4"}) == ProcessGroupSpec(1, 4, "127.0.0.1", 29500)
    spec = detect_process_group(
        {
            "RANK": "0",
            "WORLD_SIZE": "2",
            "MASTER_ADDR": "10.0.0.5",
            "MASTER_PORT": "1234",
            "SM_HOSTS": '["algo-1"]',
            "SM_CURRENT_HOST": "algo-1",
        }
    )
    assert spec == ProcessGroupSpec(0, 2, "10.0.0.5", 1234) and spec.is_main and spec.is_distributed


def test_sagemaker_hosts_give_the_rank_in_their_order_and_the_first_host_leads():
    hosts = json.dumps(["algo-1", "algo-2", "algo-3"])
    spec = detect_process_group({"SM_HOSTS": hosts, "SM_CURRENT_HOST": "algo-3"})
    assert spec == ProcessGroupSpec(2, 3, "algo-1", int(SAGEMAKER_MASTER_PORT)) and not spec.is_main
    assert detect_process_group({"SM_HOSTS": hosts, "SM_CURRENT_HOST": "algo-2", "MASTER_PORT": "7"}).master_port == 7
    with pytest.raises(DistributedSetupError, match="SM_CURRENT_HOST='algo-9' is not in SM_HOSTS"):
        detect_process_group({"SM_HOSTS": hosts, "SM_CURRENT_HOST": "algo-9"})


def test_alone_it_is_one_process_and_the_collectives_are_identities():
    spec = detect_process_group({"SM_HOSTS": "", "SM_CURRENT_HOST": "algo-1"})
    assert spec == ProcessGroupSpec(0, 1, "127.0.0.1", 0) and spec.is_main and not spec.is_distributed
    start_process_group(spec)  # nothing to start
    assert sum_across_processes([1.0, 2.0], torch.device("cpu")) == [1.0, 2.0]
    assert gather_from_processes("mine") == ["mine"]
    stop_process_group()


def _worker(rank: int, port: int, results) -> None:
    spec = ProcessGroupSpec(rank, 2, "127.0.0.1", port)
    start_process_group(spec, timeout_seconds=30)
    try:
        summed = sum_across_processes([rank + 1.0, 10.0 * rank], torch.device("cpu"))
        gathered = gather_from_processes({"rank": rank})
        results.put((rank, summed, gathered))
    finally:
        stop_process_group()


def test_two_processes_sum_element_wise_and_gather_in_rank_order():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    context = multiprocessing.get_context("spawn")
    results = context.SimpleQueue()
    processes = [context.Process(target=_worker, args=(rank, port, results)) for rank in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert [process.exitcode for process in processes] == [0, 0]
    answers = sorted(results.get() for _ in range(2))
    for _rank, summed, gathered in answers:
        assert summed == [3.0, 10.0]  # 1 + 2, 0 + 10
        assert gathered == [{"rank": 0}, {"rank": 1}]
