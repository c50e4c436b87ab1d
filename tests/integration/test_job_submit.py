"""The `ray job submit` path: a head started with `ray start --head`, the pipeline submitted as a
job with `--working-dir .`, a segment played over HTTP, then the job and the head stopped."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml

from pipelines.local import local_serve_env
from tests.conftest import ROOT, TEST_LADDER, free_port

pytestmark = [pytest.mark.own_cluster, pytest.mark.ray]

BIN = Path(sys.executable).parent


def _ray(*args: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "ray"), *args], capture_output=True, text=True, timeout=timeout, env=env)


def _job_status(address: str, job_id: str, env: dict) -> str:
    from ray.job_submission import JobSubmissionClient

    return str(JobSubmissionClient(address).get_job_status(job_id).value)


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except requests.RequestException as err:
            last = err
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}: {last}")


def test_pipeline_runs_as_a_ray_job(tmp_path: Path):
    gcs_port, dash_port, http_port = free_port(), free_port(), free_port()
    config = {
        "feeds": [{"name": "iss", "source": "lavfi:testsrc2=size=426x240:rate=25,format=yuv420p[out0];sine=frequency=440:sample_rate=48000[out1]"}],
        "ladder": {"rungs": TEST_LADDER["rungs"][1:]},
        "store": str(tmp_path / "store"),
        "transcoders": 1,
        "serve": {"host": "127.0.0.1", "port": http_port},
    }
    # The config travels with the working dir, as a user's orbitcast.yaml would.
    job_dir = tmp_path / "job"
    shutil.copytree(ROOT, job_dir, ignore=shutil.ignore_patterns(".venv", ".git", ".pytest_cache", "orbitcast-data", "__pycache__", "*.egg-info"))
    (job_dir / "job.yaml").write_text(yaml.safe_dump(config))

    # Ray puts Unix sockets under its temp dir: keep the path short (108-byte socket paths).
    temp_dir = tempfile.mkdtemp(prefix="ocray-", dir="/tmp")
    # A throwaway head on loopback: no token, so the CLI needs none either.
    # `python` in the job entrypoint is the one on the head's PATH, as on a cluster node.
    # The head gets the Serve ingress settings as cluster.yaml's `ray start` gives them.
    env = {**os.environ, **local_serve_env(), "RAY_ADDRESS": "", "RAY_AUTH_MODE": "disabled",
           "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    head_log = open(tmp_path / "head.log", "w")
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", f"--port={gcs_port}", f"--dashboard-port={dash_port}",
         "--dashboard-host=127.0.0.1", "--num-cpus=2", "--include-dashboard=true", f"--temp-dir={temp_dir}",
         "--disable-usage-stats"],
        stdout=head_log, stderr=subprocess.STDOUT, start_new_session=True, env=env,
    )
    address = f"http://127.0.0.1:{dash_port}"
    job_id = None
    try:
        _wait(lambda: _ray("job", "list", "--address", address, env=env, timeout=30).returncode == 0, 120, "the head's job server")
        job_id = f"orbitcast-test-{uuid.uuid4().hex[:12]}"

        def submitted() -> subprocess.CompletedProcess | None:
            sub = _ray("job", "submit", "--address", address, "--working-dir", str(job_dir), "--no-wait",
                       "--submission-id", job_id, "--", "python", "-m", "pipelines.live", "job.yaml", env=env)
            # The job server answers before the head's job agent has started (a busy machine
            # widens that window): the submission is refused with this message, and can be retried.
            if sub.returncode != 0 and "No available agent" in sub.stderr:
                return None
            return sub

        sub = _wait(submitted, 120, "the head's job agent")
        assert sub.returncode == 0, sub.stdout + sub.stderr

        base = f"http://127.0.0.1:{http_port}/live/iss"

        def playable():
            # a whole segment listed (parts of the first one come before it)
            pl = requests.get(f"{base}/240p/index.m3u8", timeout=5)
            return pl.text if pl.ok and any(line.endswith(".m4s") for line in pl.text.splitlines()) else None

        try:
            text = _wait(playable, 180, "the job's first segment")
        except AssertionError as err:
            logs = _ray("job", "logs", "--address", address, job_id, env=env).stdout
            raise AssertionError(f"{err}\njob logs:\n{logs[-3000:]}") from None
        seg = next(line for line in text.splitlines() if line.endswith(".m4s"))
        init = requests.get(f"{base}/240p/init.mp4", timeout=5).content
        data = requests.get(f"{base}/240p/{seg}", timeout=5).content
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", "-"],
            input=init + data, capture_output=True, timeout=30,
        )
        assert probe.returncode == 0 and b"h264,426,240" in probe.stdout, probe.stderr

        stop = _ray("job", "stop", "--address", address, job_id, env=env)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        status = _wait(
            lambda: (s := _job_status(address, job_id, env)) in ("STOPPED", "SUCCEEDED") and s,
            60, "the job to stop",
        )
        assert status in ("STOPPED", "SUCCEEDED")
    finally:
        if job_id and head.poll() is None:
            _ray("job", "stop", "--address", address, job_id, env=env, timeout=60)
        if head.poll() is None:
            os.killpg(head.pid, signal.SIGTERM)
            try:
                head.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(head.pid, signal.SIGKILL)
                head.wait()
        head_log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)
