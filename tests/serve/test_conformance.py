"""`engine serve` against botocore's own service model for S3 Control (issue 15).

For every job operation the suite provokes the errors the server can give and checks
each code is one the model lists for that operation; drops every required member in
turn (botocore's parameter validation off) and checks the request is refused with a
listed code; and checks DescribeJob returns every JobDescriptor member the engine has
data for. The suite follows the model: an error or member botocore gains that the
server mishandles fails it. The counts of checked pairs are printed at the end of the
run (tests/conftest.py) and recorded in the README's "Fidelity" table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from runner.backends.local import LocalBackend
from runner.serve.server import EngineServer
from runner.spec.models import LocalTarget
from tests.engine.conftest import put_objects

KEY, SECRET = "AKIDCONFORM", "conformance-secret"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/batch"
MODEL = botocore.session.get_session().get_service_model("s3control")
OPERATIONS = (
    "CreateJob",
    "DescribeJob",
    "ListJobs",
    "UpdateJobPriority",
    "UpdateJobStatus",
    "GetJobTagging",
    "PutJobTagging",
    "DeleteJobTagging",
)
MANIFEST = {"etag": ""}
CHECKED: dict[str, set[tuple[str, str]]] = {"errors": set(), "required": set(), "members": set()}

# Where the server knowingly differs from the model, and why (the README's Fidelity table).
DIFFERENCES = {
    ("PutJobTagging", "Tags"): "the model lists no validation error for PutJobTagging; a "
    "request without Tags is refused with BadRequestException rather than read as an empty "
    "tag set, which would delete the job's tags",
}

# JobDescriptor members the engine has no data for in a given job, with the reason.
ABSENT_BY_DESIGN = {
    "FailureReasons": "only a failed job has them",
    "TerminationDate": "only a final job has one",
    "SuspendedDate": "only a job that was suspended has one",
    "SuspendedCause": "only a job that was suspended has one",
    "StatusUpdateReason": "only after an UpdateJobStatus",
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, LocalBackend]]:
    root = tmp_path_factory.mktemp("conformance")
    local = LocalBackend(LocalTarget(state_dir="state", store="dir://objects"), root)
    for bucket in ("logs", "reports"):
        local.store.create_bucket(bucket)
    put_objects(local.store, 5)  # type: ignore[arg-type]
    local.store.put("logs", "m.csv", b"".join(b"logs,data/%06d.txt\n" % i for i in range(5)))
    MANIFEST["etag"] = local.store.head("logs", "m.csv").etag
    server = EngineServer(local, {KEY: SECRET})
    server.start()
    s3control = boto3.client(
        "s3control",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        config=Config(
            inject_host_prefix=False,
            parameter_validation=False,
            retries={"max_attempts": 1, "mode": "standard"},
        ),
    )
    # botocore puts the account in the host name, which does not resolve for 127.0.0.1:
    # send to the endpoint itself, as batchctl's aws backend does.
    s3control.meta.events.register("before-sign.s3-control", _unprefix)
    yield s3control, local
    server.shutdown()
    local.close()


def _unprefix(request: Any, **_: Any) -> None:
    request.url = request.url.replace(f"//{ACCOUNT}.", "//", 1)


def create_args(**overrides: Any) -> dict[str, Any]:
    """A valid CreateJob request (a CSV manifest, a report, a tag operation)."""
    args: dict[str, Any] = {
        "AccountId": ACCOUNT,
        "ConfirmationRequired": True,
        "Operation": {"S3PutObjectTagging": {"TagSet": [{"Key": "a", "Value": "b"}]}},
        "Report": {
            "Bucket": "arn:aws:s3:::reports",
            "Format": "Report_CSV_20180820",
            "Enabled": True,
            "Prefix": "r",
            "ReportScope": "AllTasks",
        },
        "Manifest": {
            "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
            "Location": {"ObjectArn": "arn:aws:s3:::logs/m.csv", "ETag": MANIFEST["etag"]},
        },
        "Priority": 10,
        "RoleArn": ROLE,
        "Tags": [{"Key": "team", "Value": "data"}],
    }
    args.update(overrides)
    return {k: v for k, v in args.items() if v is not None}


def _error(call: Callable[[], Any]) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    status = caught.value.response["ResponseMetadata"]["HTTPStatusCode"]
    return str(error["Code"]), int(status), str(error.get("Message", ""))


def _listed(operation: str, code: str, status: int, message: str) -> None:
    shapes = {e.name: e for e in MODEL.operation_model(operation).error_shapes}
    assert code in shapes, f"{operation} answered {code}; the model lists {sorted(shapes)}"
    expected = shapes[code].metadata.get("error", {}).get("httpStatusCode")
    if expected is not None:
        assert status == expected, (operation, code, status)
    assert 400 <= status < 600
    assert "errors.pydantic.dev" not in message
    CHECKED["errors"].add((operation, code))


def _method(operation: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")


def provocations(client: Any, job: str, done: str) -> list[tuple[str, Callable[[], Any]]]:
    """Requests the real service refuses, one or more for every operation."""
    a = ACCOUNT
    return [
        ("CreateJob", lambda: client.create_job(**create_args(RoleArn="not-an-arn"))),
        (
            "CreateJob",
            lambda: client.create_job(
                **create_args(
                    ManifestGenerator={
                        "S3JobManifestGenerator": {
                            "SourceBucket": "arn:aws:s3:::logs",
                            "EnableManifestOutput": False,
                        }
                    }
                )
            ),
        ),
        ("CreateJob", lambda: client.create_job(**create_args(Priority=-1))),
        ("CreateJob", lambda: client.create_job(**create_args(Operation={}))),
        ("DescribeJob", lambda: client.describe_job(AccountId=a, JobId="no-such-job")),
        ("ListJobs", lambda: client.list_jobs(AccountId=a, NextToken="garbage!")),
        ("ListJobs", lambda: client.list_jobs(AccountId=a, JobStatuses=["Bogus"])),
        (
            "UpdateJobPriority",
            lambda: client.update_job_priority(AccountId=a, JobId="no-such-job", Priority=1),
        ),
        (
            "UpdateJobPriority",
            lambda: client.update_job_priority(AccountId=a, JobId=done, Priority=1),
        ),
        (
            "UpdateJobStatus",
            lambda: client.update_job_status(AccountId=a, JobId=job, RequestedJobStatus="Complete"),
        ),
        (
            "UpdateJobStatus",
            lambda: client.update_job_status(AccountId=a, JobId=done, RequestedJobStatus="Ready"),
        ),
        (
            "UpdateJobStatus",
            lambda: client.update_job_status(
                AccountId=a, JobId="no-such-job", RequestedJobStatus="Cancelled"
            ),
        ),
        ("GetJobTagging", lambda: client.get_job_tagging(AccountId=a, JobId="no-such-job")),
        (
            "PutJobTagging",
            lambda: client.put_job_tagging(
                AccountId=a,
                JobId=job,
                Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)],
            ),
        ),
        (
            "PutJobTagging",
            lambda: client.put_job_tagging(AccountId=a, JobId="no-such-job", Tags=[]),
        ),
        ("DeleteJobTagging", lambda: client.delete_job_tagging(AccountId=a, JobId="no-such-job")),
    ]


@pytest.fixture(scope="module")
def client(served: tuple[Any, LocalBackend]) -> Any:
    return served[0]


@pytest.fixture(scope="module")
def jobs(served: tuple[Any, LocalBackend]) -> tuple[str, str]:
    """A live job (Suspended, awaiting confirmation) and a Cancelled one."""
    client, local = served
    job = client.create_job(**create_args())["JobId"]
    done = client.create_job(**create_args())["JobId"]
    client.update_job_status(
        AccountId=ACCOUNT, JobId=done, RequestedJobStatus="Cancelled", StatusUpdateReason="why"
    )
    local.worker().run(once=True)  # job → Suspended, done → Cancelled
    return job, done


def test_every_error_is_one_the_model_lists(client: Any, jobs: tuple[str, str]) -> None:
    job, done = jobs
    seen = set()
    for operation, call in provocations(client, job, done):
        _listed(operation, *_error(call))
        seen.add(operation)
    assert seen == set(OPERATIONS)


def _without(operation: str, member: str, job: str) -> dict[str, Any]:
    base: dict[str, dict[str, Any]] = {
        "CreateJob": create_args(),
        "DescribeJob": {"AccountId": ACCOUNT, "JobId": job},
        "ListJobs": {"AccountId": ACCOUNT},
        "UpdateJobPriority": {"AccountId": ACCOUNT, "JobId": job, "Priority": 3},
        "UpdateJobStatus": {"AccountId": ACCOUNT, "JobId": job, "RequestedJobStatus": "Ready"},
        "GetJobTagging": {"AccountId": ACCOUNT, "JobId": job},
        "PutJobTagging": {"AccountId": ACCOUNT, "JobId": job, "Tags": []},
        "DeleteJobTagging": {"AccountId": ACCOUNT, "JobId": job},
    }
    return {k: v for k, v in base[operation].items() if k != member}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_required_member_is_enforced(
    operation: str, client: Any, jobs: tuple[str, str]
) -> None:
    model = MODEL.operation_model(operation)
    for member in model.input_shape.required_members:
        shape = model.input_shape.members[member]
        if shape.serialization.get("hostLabel") or shape.metadata.get("idempotencyToken"):
            continue  # the host name and a token botocore fills in itself
        if shape.serialization.get("location") == "uri":
            continue  # without it the request is another path: not this operation
        if (operation, member) in DIFFERENCES:
            continue
        args = _without(operation, member, jobs[0])
        call = getattr(client, _method(operation))
        code, status, message = _error(lambda call=call, args=args: call(**args))
        _listed(operation, code, status, message)
        CHECKED["required"].add((operation, member))


def test_describe_job_returns_every_member_it_has_data_for(
    client: Any, jobs: tuple[str, str]
) -> None:
    job, done = jobs
    members = list(MODEL.shape_for("JobDescriptor").members)
    live = client.describe_job(AccountId=ACCOUNT, JobId=job)["Job"]
    cancelled = client.describe_job(AccountId=ACCOUNT, JobId=done)["Job"]
    generated_id = client.create_job(
        **create_args(
            Manifest=None,
            ManifestGenerator={
                "S3JobManifestGenerator": {
                    "ExpectedBucketOwner": ACCOUNT,
                    "SourceBucket": "arn:aws:s3:::logs",
                    "EnableManifestOutput": False,
                }
            },
        )
    )["JobId"]
    generated = client.describe_job(AccountId=ACCOUNT, JobId=generated_id)["Job"]
    assert live["RoleArn"] == ROLE
    assert cancelled["StatusUpdateReason"] == "why"
    assert generated["ManifestGenerator"]["S3JobManifestGenerator"]["ExpectedBucketOwner"] == (
        ACCOUNT
    )
    assert "GeneratedManifestDescriptor" in generated
    for member in members:
        found = [d for d in (live, cancelled, generated) if member in d]
        if member in ABSENT_BY_DESIGN and not found:
            continue
        assert found, f"DescribeJob never returns {member}"
        CHECKED["members"].add(("DescribeJob", member))
    for operation in ("ListJobs", "CreateJob", "UpdateJobPriority", "UpdateJobStatus"):
        output = MODEL.operation_model(operation).output_shape
        answer = {
            "ListJobs": lambda: client.list_jobs(AccountId=ACCOUNT),
            "CreateJob": lambda: client.create_job(**create_args()),
            "UpdateJobPriority": lambda: client.update_job_priority(
                AccountId=ACCOUNT, JobId=job, Priority=4
            ),
            "UpdateJobStatus": lambda: client.update_job_status(
                AccountId=ACCOUNT,
                JobId=client.create_job(**create_args())["JobId"],
                RequestedJobStatus="Cancelled",
                StatusUpdateReason="go",
            ),
        }[operation]()
        for member in output.members:
            if member == "NextToken":
                continue  # only when there is a next page
            assert member in answer, (operation, member)
            CHECKED["members"].add((operation, member))


def _counts() -> str:
    return (
        f"{len(CHECKED['errors'])} (operation, error) pairs, "
        f"{len(CHECKED['required'])} (operation, required member) pairs, "
        f"{len(CHECKED['members'])} (operation, output member) pairs"
    )


def test_counts_are_recorded_in_the_readme() -> None:
    """Runs last in this file: the README's Fidelity table names what was checked."""
    if not all(CHECKED.values()):
        pytest.skip("run with the other conformance tests")
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert _counts() in readme, _counts()


def test_what_a_rehearsal_was_told_before(client: Any, jobs: tuple[str, str]) -> None:
    """Each answer the emulator gave where the service says otherwise (issue 15)."""
    job, done = jobs
    a = ACCOUNT
    assert _error(lambda: client.list_jobs(AccountId=a, NextToken="garbage!"))[0] == (
        "InvalidNextTokenException"
    )
    assert _error(lambda: client.list_jobs(AccountId=a, JobStatuses=["Bogus"]))[0] == (
        "InvalidRequestException"
    )
    with pytest.raises(client.exceptions.TooManyTagsException):
        client.put_job_tagging(
            AccountId=a, JobId=job, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)]
        )
    both = create_args(
        ManifestGenerator={
            "S3JobManifestGenerator": {
                "SourceBucket": "arn:aws:s3:::logs",
                "EnableManifestOutput": False,
            }
        }
    )
    code, _, message = _error(lambda: client.create_job(**both))
    assert (code, "exactly one" in message) == ("BadRequestException", True)
    for missing in ("RoleArn", "Report", "Priority"):
        args = {k: v for k, v in create_args().items() if k != missing}
        assert _error(lambda args=args: client.create_job(**args))[0] == "BadRequestException"
    assert _error(lambda: client.create_job(**create_args(RoleArn="not-an-arn")))[0] == (
        "BadRequestException"
    )
    code, _, message = _error(lambda: client.create_job(**create_args(Priority=-5)))
    assert "errors.pydantic.dev" not in message
    assert _error(lambda: client.update_job_priority(AccountId=a, JobId=done, Priority=1))[0] == (
        "BadRequestException"
    )
    assert client.describe_job(AccountId=a, JobId=done)["Job"]["StatusUpdateReason"] == "why"
    assert client.describe_job(AccountId=a, JobId=job)["Job"]["RoleArn"] == ROLE
