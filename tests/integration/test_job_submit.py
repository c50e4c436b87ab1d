"""The `ray job submit` path as the README walks it: a token made with `ray get-auth-token
--generate`, a head started with `ray start --head` under token authentication (as cluster.yaml
starts it), the pipeline submitted as a job with `--working-dir .` by a client holding the
token, a segment played over HTTP, then `ray job stop`, which leaves no Serve application; then
the same job submitted again on the same store: seqs go on from where they were, the ledger keeps
its key and its leaves, a recording made before the restart verifies against the ledger after
it with `orbitcast verify`, and a time-shift range across the restart plays in ffmpeg with the
seqs never made listed as gaps."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import m3u8
import pytest
import requests
import yaml

from pipelines.local import local_serve_env
from tests.conftest import ROOT, TEST_LADDER, free_port
from tests.hls import seq_of

pytestmark = [pytest.mark.own_cluster, pytest.mark.ray]

BIN = Path(sys.executable).parent


def _ray(*args: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "ray"), *args], capture_output=True, text=True, timeout=timeout, env=env)


def _job_status(address: str, job_id: str, token: str) -> str:
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(address, headers={"Authorization": f"Bearer {token}"})
    return str(client.get_job_status(job_id).value)


def _serve_apps(address: str, env: dict) -> dict:
    """The Serve applications the cluster has, with their status, as `serve status` prints them."""
    out = subprocess.run([str(BIN / "serve"), "status", "--address", address], capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    return {name: app["status"] for name, app in (yaml.safe_load(out.stdout).get("applications") or {}).items()}


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


def timeshift_across_the_restart(base: str, first_run_end: datetime, last_before: int, first_after: int) -> None:
    """A time-shift range from the first run's last seconds into the second run's media: the
    seqs the pipeline never made while it was down are EXT-X-GAP segments (the media timeline
    is the wall clock, so both runs share it) or the restart is an EXT-X-DISCONTINUITY, and
    ffmpeg plays the range from the archive, pictures of both runs."""
    start = first_run_end - timedelta(seconds=3)

    def a_range_with_the_second_run() -> tuple[str, m3u8.M3U8] | None:
        # Time-shift reads the catalog, whose rows a packager writes every few segments: the
        # second run's first ones show there a few seconds after the live playlist lists them.
        run_two = m3u8.loads(requests.get(f"{base}/240p/index.m3u8", timeout=5).text)
        end = max(s.current_program_date_time for s in run_two.segments if s.uri)
        window = f"start={start.timestamp():.3f}&end={end.timestamp():.3f}"
        r = requests.get(f"{base}/240p/index.m3u8?{window}", timeout=10)
        assert r.status_code == 200, r.text
        got = m3u8.loads(r.text)
        return (window, got) if seq_of(got.segments[-1]) >= first_after and not got.segments[-1].gap_tag else None

    window, pl = _wait(a_range_with_the_second_run, 60, "the second run's media in the catalog")
    assert pl.playlist_type == "vod" and pl.is_endlist
    seqs = [seq_of(seg) for seg in pl.segments]  # the URIs name them
    gaps = [seq for seq, seg in zip(seqs, pl.segments) if seg.gap_tag]
    made = [seq for seq, seg in zip(seqs, pl.segments) if not seg.gap_tag]
    # media of both runs (the first ran on a little after `last_before` was seen), each run's
    # seqs one after another
    one, two = [q for q in made if q < first_after], [q for q in made if q >= first_after]
    assert one and two and max(one) >= last_before, (made, last_before, first_after)
    assert one == list(range(one[0], one[-1] + 1)) and two == list(range(first_after, two[-1] + 1)), made
    # Between them, the seqs never made are gaps; where the second run's first segment starts
    # more than half a segment into its seq (its timeline began at the wall clock, mid-seq) or
    # its init segment differs, the restart is a discontinuity instead (orbitcast/delivery/
    # timeshift.py), and no seq is listed that was never made.
    first_two = pl.segments[seqs.index(first_after)]
    assert gaps == list(range(max(one) + 1, first_after)) or (not gaps and first_two.discontinuity), (gaps, made)
    proc = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", f"{base}/240p/index.m3u8?{window}",
                           "-map", "0:v:0", "-f", "framecrc", "-"], capture_output=True, timeout=120, text=True)
    frames = [line for line in proc.stdout.splitlines() if line and not line.startswith("#")]
    assert proc.returncode == 0, proc.stderr
    # 25 fps: every picture of the segments that were made (the first and last may be partial)
    assert len(frames) >= 25 * (len(made) - 2), (len(frames), len(made), proc.stderr[-2000:])


def test_the_readme_cluster_path_with_a_token_runs_job_stop_leaves_no_serve_app_and_a_restart_continues(tmp_path: Path):
    gcs_port, dash_port, http_port = free_port(), free_port(), free_port()
    config = {
        "feeds": [{"name": "iss", "source": "lavfi:testsrc2=size=426x240:rate=25,format=yuv420p[out0];sine=frequency=440:sample_rate=48000[out1]"}],
        "ladder": {"rungs": TEST_LADDER["rungs"][1:]},
        # relative, as in orbitcast.example.yaml: anchored to the node's ORBITCAST_HOME, not to the
        # job's temporary working dir
        "store": "orbitcast-data",
        "transcoders": 1,
        "serve": {"host": "127.0.0.1", "port": http_port},
        # a job binds the node's cluster address by default ('auto'); tests listen on loopback only
        "clock": {"ntp_host": "127.0.0.1", "ntp_port": 0},
    }
    # The config travels with the working dir, as a user's orbitcast.yaml would.
    job_dir = tmp_path / "job"
    shutil.copytree(ROOT, job_dir, ignore=shutil.ignore_patterns(".venv", ".git", ".pytest_cache", "orbitcast-data", "__pycache__", "*.egg-info"))
    (job_dir / "job.yaml").write_text(yaml.safe_dump(config))

    # Ray puts Unix sockets under its temp dir: keep the path short (108-byte socket paths).
    temp_dir = tempfile.mkdtemp(prefix="ocray-", dir="/tmp")
    # The token as the README makes it (`ray get-auth-token --generate` writes ~/.ray/auth_token;
    # here a HOME of the test's own), carried to head and client by RAY_AUTH_TOKEN_PATH as
    # cluster.yaml's file mount carries it to every node.
    home = tmp_path / "home"
    home.mkdir()
    made = _ray("get-auth-token", "--generate", env={**os.environ, "HOME": str(home)})
    assert made.returncode == 0, made.stderr
    token_file = home / ".ray" / "auth_token"
    assert token_file.read_text().strip() == made.stdout.strip()
    # `python` in the job entrypoint is the one on the head's PATH, as on a cluster node.
    # The head gets the Serve ingress settings as cluster.yaml's `ray start` gives them.
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    home_data = tmp_path / "node-home"
    env = {**base_env, **local_serve_env(), "RAY_ADDRESS": "", "RAY_AUTH_MODE": "token", "ORBITCAST_HOME": str(home_data),
           "RAY_AUTH_TOKEN_PATH": str(token_file), "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    no_token = {**env, "RAY_AUTH_MODE": "disabled"}
    no_token.pop("RAY_AUTH_TOKEN_PATH")
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
        # Without the token the cluster takes no job (what a user sees before the README's token step).
        refused = _ray("job", "list", "--address", address, env=no_token, timeout=30)
        assert refused.returncode != 0 and "Authentication required" in refused.stdout + refused.stderr, refused
        job_id = f"orbitcast-test-{uuid.uuid4().hex[:12]}"

        def submit(submission_id: str) -> None:
            def submitted() -> subprocess.CompletedProcess | None:
                sub = _ray("job", "submit", "--address", address, "--working-dir", str(job_dir), "--no-wait",
                           "--submission-id", submission_id, "--", "python", "-m", "pipelines.live", "job.yaml", env=env)
                # The job server answers before the head's job agent has started (a busy machine
                # widens that window): the submission is refused with this message, and can be retried.
                if sub.returncode != 0 and "No available agent" in sub.stderr:
                    return None
                return sub

            sub = _wait(submitted, 240, "the head's job agent")
            assert sub.returncode == 0, sub.stdout + sub.stderr

        base = f"http://127.0.0.1:{http_port}/live/iss"

        def segments(submission_id: str) -> list[str]:
            def playable():
                # a whole segment listed (parts of the first one come before it)
                pl = requests.get(f"{base}/240p/index.m3u8", timeout=5)
                listed = [line for line in pl.text.splitlines() if line.endswith(".m4s")] if pl.ok else []
                return listed or None

            try:
                return _wait(playable, 180, "the job's first segment")
            except AssertionError as err:
                logs = _ray("job", "logs", "--address", address, submission_id, env=env).stdout
                raise AssertionError(f"{err}\njob logs:\n{logs[-3000:]}") from None

        def stop_job(submission_id: str) -> None:
            stop = _ray("job", "stop", "--address", address, submission_id, env=env)
            assert stop.returncode == 0, stop.stdout + stop.stderr
            seen: list[str] = []

            def stopped() -> bool:
                seen.append(_job_status(address, submission_id, token_file.read_text().strip()))
                return seen[-1] in ("STOPPED", "SUCCEEDED")

            try:
                _wait(stopped, 60, "the job to stop")
            except AssertionError as err:
                raise AssertionError(f"{err}\n`ray job status` said: {seen[-1:]}") from None
            # The README: `ray job stop` removes the pipeline's Serve applications (the controller
            # may take a few seconds to tear the replicas down once asked).
            _wait(lambda: not _serve_apps(address, env), 60, "the Serve applications to go")

        submit(job_id)
        seg = segments(job_id)[0]
        init = requests.get(f"{base}/240p/init.mp4", timeout=5).content
        data = requests.get(f"{base}/240p/{seg}", timeout=5).content
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", "-"],
            input=init + data, capture_output=True, timeout=30,
        )
        assert probe.returncode == 0 and b"h264,426,240" in probe.stdout, probe.stderr
        assert set(_serve_apps(address, env)) >= {"orbitcast", "ledger", "threema"}
        # The ledger's key and the archive are where a redeploy finds them again (cluster.yaml).
        assert (home_data / "orbitcast-data" / "ledger" / "ed25519.key").is_file()

        # A recording of the segment (what `orbitcast receive` writes: init + segments), and the
        # ledger's key pinned on first use, both before the restart.
        recording = tmp_path / "before.mp4"
        recording.write_bytes(init + data)
        known = tmp_path / "known_ledgers"
        ledger = f"http://127.0.0.1:{http_port}/ledger/iss"
        last_before = max(int(line.split(".")[0]) for line in segments(job_id))
        run_one = m3u8.loads(requests.get(f"{base}/240p/index.m3u8", timeout=5).text)
        # the time-shift range below starts inside the first run's media (its own dates: a paced
        # source on a busy machine may run behind the wall clock)
        first_run_end = max(s.current_program_date_time + timedelta(seconds=s.duration) for s in run_one.segments if s.uri)

        def verify(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([str(BIN / "orbitcast"), "verify", "--known-ledgers", str(known), *args],
                                  capture_output=True, text=True, timeout=120)

        # the segment is in a signed tree head once the ledger has certified it
        _wait(lambda: verify("--recording", str(recording), "--ledger", ledger).returncode == 0, 30,
              "the segment's certification before the restart")

        stop_job(job_id)

        # The whole pipeline again, on the same store: nothing of the first run is reused or lost.
        job_id = f"orbitcast-test-{uuid.uuid4().hex[:12]}"
        submit(job_id)
        after = [int(line.split(".")[0]) for line in segments(job_id)]
        assert min(after) > last_before, (last_before, after)
        # Same ledger key (the pinned one is accepted), and the leaf certified before the restart
        # is still proved by the tree the restarted ledger signs.
        again = verify("--recording", str(recording), "--ledger", ledger)
        assert again.returncode == 0, again.stdout + again.stderr
        timeshift_across_the_restart(base, first_run_end, last_before, min(after))
        stop_job(job_id)
        job_id = None
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
