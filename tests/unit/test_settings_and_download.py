"""Cold-start configuration fails loudly; the URL fetcher refuses what it must before connecting."""

import socket

import pytest

from dog_breeds.adapters.image_download import download_image, is_globally_routable
from dog_breeds.errors import MalformedRequestError
from dog_breeds.image_request import parse_image_url
from dog_breeds.settings import (
    ControlPlaneSettings,
    EndpointDefaults,
    GateSettings,
    PredictSettings,
    ScalingDefaults,
    SettingsError,
    TrainingDefaults,
)


def test_settings_defaults():
    settings = PredictSettings.from_environment({"ENDPOINT_NAME": "dog-breeds"})
    assert settings.max_image_bytes == 4 * 1024 * 1024
    assert settings.url_allowed_hosts == frozenset()
    assert (settings.timeouts.connect_seconds, settings.timeouts.read_seconds, settings.timeouts.max_attempts) == (
        2,
        10,
        2,
    )


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({}, "ENDPOINT_NAME"),
        ({"ENDPOINT_NAME": "Dog-Breeds"}, "ENDPOINT_NAME"),
        ({"ENDPOINT_NAME": "dog", "MAX_IMAGE_BYTES": "lots"}, "MAX_IMAGE_BYTES"),
        ({"ENDPOINT_NAME": "dog", "ENDPOINT_MAX_ATTEMPTS": "0"}, "ENDPOINT_MAX_ATTEMPTS"),
        ({"ENDPOINT_NAME": "dog", "URL_ALLOWED_HOSTS": "ok.example.com,http://bad"}, "URL_ALLOWED_HOSTS"),
    ],
)
def test_bad_configuration_fails_at_start_naming_the_variable(environ, named):
    with pytest.raises(SettingsError, match=named):
        PredictSettings.from_environment(environ)


CONTROL_PLANE = {
    "AWS_REGION": "us-east-1",
    "BUCKET_NAME": "dog-breeds-artifacts",
    "SAGEMAKER_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/sagemaker",
    "JOB_NAME_PREFIX": "dog-breeds",
    "ENDPOINT_NAME": "dog-breed-classifier",
}


@pytest.mark.parametrize(
    ("settings_class", "environ", "named", "accepted"),
    [
        (ControlPlaneSettings, {**CONTROL_PLANE, "BUCKET_NAME": ""}, "BUCKET_NAME", "is required"),
        (ControlPlaneSettings, {**CONTROL_PLANE, "JOB_NAME_PREFIX": "x" * 33}, "JOB_NAME_PREFIX", "1-32 lower-case"),
        (ControlPlaneSettings, {**CONTROL_PLANE, "ENDPOINT_NAME": "e" * 51}, "ENDPOINT_NAME", "12-character suffix"),
        (TrainingDefaults, {"TRAINING_INSTANCE_COUNT": "six"}, "TRAINING_INSTANCE_COUNT", "is not a whole number"),
        (TrainingDefaults, {"TRAINING_USE_SPOT": "yes"}, "TRAINING_USE_SPOT", "true or false"),
        (TrainingDefaults, {"TRAINING_MAX_RUNTIME_SECONDS": "30"}, "TRAINING_MAX_RUNTIME_SECONDS", "from 60 to"),
        (EndpointDefaults, {"DATA_CAPTURE_PERCENT": "101"}, "DATA_CAPTURE_PERCENT", "from 0 to 100"),
        (EndpointDefaults, {"ROLLOUT_CANARY_PERCENT": "0"}, "ROLLOUT_CANARY_PERCENT", "from 1 to 50"),
        (EndpointDefaults, {"ROLLOUT_BAKE_SECONDS": "7200"}, "ROLLOUT_BAKE_SECONDS", "from 0 to 3600"),
        (ScalingDefaults, {"SCALING_TARGET_INVOCATIONS": "0"}, "SCALING_TARGET_INVOCATIONS", "at least 0.01"),
        (ScalingDefaults, {"SCALING_TARGET_INVOCATIONS": "nan"}, "SCALING_TARGET_INVOCATIONS", "not a finite number"),
        (GateSettings, {"GATE_MINIMUM_TEST_ACCURACY": "60"}, "GATE_MINIMUM_TEST_ACCURACY", "from 0.0 to 1.0"),
    ],
)
def test_every_function_refuses_a_bad_variable_naming_it_and_what_it_accepts(settings_class, environ, named, accepted):
    with pytest.raises(SettingsError, match=named) as refusal:
        settings_class.from_environment(environ)
    assert accepted in str(refusal.value)


def test_the_template_values_read_as_the_function_uses_them():
    endpoint = EndpointDefaults.from_environment(
        {
            "ENDPOINT_INSTANCE_COUNT": "2",
            "ROLLBACK_ALARM_NAMES": "a-model-errors, a-latency-p99,",
            "SAGEMAKER_ENDPOINT_ROLE_ARN": "arn:aws:iam::123456789012:role/endpoint",
        }
    )
    assert (endpoint.instance_count, endpoint.rollback_alarms) == (2, ("a-model-errors", "a-latency-p99"))
    training = TrainingDefaults.from_environment({"TRAINING_USE_SPOT": "True", "TRAINING_INSTANCE_TYPE": "ml.c5.large"})
    assert (training.use_spot, training.instance_type, training.use_debugger) == (True, "ml.c5.large", False)
    hosts = PredictSettings.from_environment({"ENDPOINT_NAME": "dog", "URL_ALLOWED_HOSTS": "Images.Example.com, ,"})
    assert hosts.url_allowed_hosts == frozenset({"images.example.com"})


def _resolver(address: str):
    def resolve(host, port, type=None):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    return resolve


ALLOWED = frozenset({"images.example.com"})


def test_url_input_is_off_without_an_allow_list():
    with pytest.raises(MalformedRequestError, match="disabled"):
        download_image(
            parse_image_url("https://images.example.com/dog.jpg"), frozenset(), 1000, resolve=_resolver("93.184.216.34")
        )


def test_hosts_off_the_allow_list_are_refused():
    with pytest.raises(MalformedRequestError, match="allowed host"):
        download_image(
            parse_image_url("https://evil.example.net/dog.jpg"), ALLOWED, 1000, resolve=_resolver("93.184.216.34")
        )


NOT_GLOBALLY_ROUTABLE = [
    "127.0.0.1",
    "10.0.0.8",
    "169.254.169.254",
    "192.168.1.1",
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",
    "::1",
    "fd00::1",
    "fe80::1",
    "::ffff:169.254.169.254",  # IPv4-mapped
    "::a9fe:a9fe",  # IPv4-compatible
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b:1::808:808",  # local-use NAT64, even of a public address
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "2002:0a00:0001::1",  # 6to4 of 10.0.0.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    # special-purpose blocks a deny-list of "private" ranges lets through (IANA registries, RFC 6890)
    "224.0.0.251",  # multicast (mDNS)
    "239.255.255.250",  # multicast (SSDP)
    "240.0.0.1",  # reserved
    "255.255.255.255",  # limited broadcast
    "192.0.2.10",  # documentation
    "198.18.0.1",  # benchmarking
    "192.88.99.1",  # 6to4 relay anycast
    "fec0::1",  # site-local
    "ff02::1",  # multicast
    "2001:db8::1",  # documentation
    "3fff::1",  # documentation
    "::ffff:93.184.216.34",  # IPv4-mapped, even of a public address: no resolver answers that for a web host
]


@pytest.mark.parametrize("address", NOT_GLOBALLY_ROUTABLE)
def test_private_loopback_and_link_local_addresses_are_refused(address):
    # Given an allowed host name whose DNS answer points inside (the classic SSRF to instance metadata)
    with pytest.raises(MalformedRequestError, match="private or reserved"):
        download_image(parse_image_url("https://images.example.com/dog.jpg"), ALLOWED, 1000, resolve=_resolver(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "64:ff9b::5db8:d822"])
def test_public_addresses_and_their_nat64_forms_pass(address):
    import ipaddress

    assert is_globally_routable(ipaddress.ip_address(address))


def test_only_port_443_is_fetched():
    with pytest.raises(MalformedRequestError, match="https port 443, not 8443"):
        url = parse_image_url("https://images.example.com:8443/dog.jpg")
        download_image(url, ALLOWED, 1000, resolve=_resolver("93.184.216.34"))


def test_slow_name_lookups_do_not_starve_the_next_request():
    # Given lookups of one host that never answer, each abandoned at its request's deadline
    import threading

    from dog_breeds.adapters import image_download

    stuck = threading.Event()

    def hangs(host, port, type):  # noqa: A002 (getaddrinfo's keyword)
        stuck.wait(30)
        raise OSError("gave up")

    url = parse_image_url("https://images.example.com/dog.jpg")
    try:
        stuck_lookups = 3
        for _ in range(stuck_lookups):
            with pytest.raises(MalformedRequestError, match="resolved in time"):
                download_image(url, ALLOWED, 1000, resolve=hangs, deadline_seconds=0.2)
        # When the next request's host answers at once
        with pytest.raises(MalformedRequestError, match="private or reserved"):
            download_image(url, ALLOWED, 1000, resolve=_resolver("10.0.0.1"), deadline_seconds=0.5)
        # Then it was resolved (and judged), not left waiting behind the stuck lookups; and the number of
        # lookups pending at once is bounded
        for _ in range(image_download.MAX_PENDING_LOOKUPS - stuck_lookups):  # every lookup slot held
            with pytest.raises(MalformedRequestError, match="resolved in time"):
                download_image(url, ALLOWED, 1000, resolve=hangs, deadline_seconds=0.05)
        refusals: list[Exception] = []

        def one_more() -> None:
            try:
                download_image(url, ALLOWED, 1000, resolve=_resolver("93.184.216.34"), deadline_seconds=0.5)
            except MalformedRequestError as exc:
                refusals.append(exc)

        asking = threading.Thread(target=one_more, daemon=True)
        asking.start()
        asking.join(5)  # refused at once, never left waiting for a lookup slot to free up
        assert not asking.is_alive(), "the request waited for a lookup slot instead of being refused"
        assert len(refusals) == 1 and "Too many slow name lookups" in str(refusals[0])
        # and a lookup left behind never keeps the process from exiting
        left_behind = [thread for thread in threading.enumerate() if thread.name == "resolve"]
        assert left_behind and all(thread.daemon for thread in left_behind)
    finally:
        stuck.set()


def test_a_number_at_its_bounds_is_accepted_and_one_past_them_refused():
    role = {"SAGEMAKER_ENDPOINT_ROLE_ARN": "arn:aws:iam::123456789012:role/endpoint"}
    assert EndpointDefaults.from_environment(role | {"ENDPOINT_INSTANCE_COUNT": "10"}).instance_count == 10
    assert EndpointDefaults.from_environment(role | {"ENDPOINT_INSTANCE_COUNT": "1"}).instance_count == 1
    for refused in ("11", "0"):
        with pytest.raises(SettingsError, match=f"ENDPOINT_INSTANCE_COUNT='{refused}' must be from 1 to 10"):
            EndpointDefaults.from_environment(role | {"ENDPOINT_INSTANCE_COUNT": refused})
    with pytest.raises(SettingsError, match="MAX_IMAGE_BYTES='0' must be at least 1"):
        PredictSettings.from_environment({"ENDPOINT_NAME": "dog", "MAX_IMAGE_BYTES": "0"})


def test_an_acceptable_serverless_endpoint_has_no_refusal():
    from dog_breeds.settings import serverless_refusal

    role = {"SAGEMAKER_ENDPOINT_ROLE_ARN": "arn:aws:iam::123456789012:role/endpoint"}
    assert serverless_refusal(EndpointDefaults.from_environment(role)) == ""
