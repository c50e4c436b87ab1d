"""The `orbitcast` command line."""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Callable

from orbitcast.config import ConfigError, load_config


def _demo(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as err:
        print(f"orbitcast: {err}", file=sys.stderr)
        return 2
    if args.port is not None:
        config = config.model_copy(update={"serve": config.serve.model_copy(update={"port": args.port})})
    import ray

    from orbitcast.analysis.demo import for_demo
    from pipelines.live import run_until_stopped, start
    from pipelines.local import init_local_ray

    config, analysis = for_demo(config, from_file=args.config is not None)
    print(analysis, flush=True)
    print("orbitcast: starting local Ray and Serve…", flush=True)
    init_local_ray()
    try:
        run_until_stopped(start(config))
    finally:
        from ray import serve

        serve.shutdown()
        ray.shutdown()
    return 0


def _run(args: argparse.Namespace) -> int:
    from pipelines.live import main as live_main

    return live_main([args.config])


def _verify(args: argparse.Namespace) -> int:
    from pipelines.verify_cli import run as verify_run

    return verify_run(args)


def _keys_new(args: argparse.Namespace) -> int:
    from orbitcast.sealing.errors import SealingError
    from orbitcast.sealing.keys import write_new_identity_key

    try:
        path, pair = write_new_identity_key(args.identity, args.dir)
    except FileExistsError:
        print(f"orbitcast: {args.dir}/{args.identity}.key exists; not overwriting a private key", file=sys.stderr)
        return 1
    except SealingError as err:
        print(f"orbitcast: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path} (mode 0600)", file=sys.stderr)
    print(pair.public_string)
    return 0


def _receive(args: argparse.Namespace) -> int:
    from pipelines.receive_cli import run as receive_run

    return receive_run(args)


def _export(args: argparse.Namespace) -> int:
    from pipelines.export_cli import run as export_run

    return export_run(args)


def _transcode(args: argparse.Namespace) -> int:
    from pipelines.vod_cli import run

    return run(args)


def _token(args: argparse.Namespace) -> int:
    import time

    from orbitcast.delivery.signed_urls import PREFIX, sign

    try:
        config = load_config(args.config)
    except ConfigError as err:
        print(f"orbitcast token: {err}", file=sys.stderr)
        return 2
    keys = config.serve.viewer_auth.keys
    if not keys:
        print("orbitcast token: no serve.viewer_auth.keys in the config", file=sys.stderr)
        return 2
    if args.feed not in {f.name for f in config.feeds}:
        print(f"orbitcast token: no feed {args.feed!r} in the config", file=sys.stderr)
        return 2
    key_id = args.key or list(keys)[-1]  # the newest key signs; the older stays accepted
    if key_id not in keys:
        print(f"orbitcast token: no viewer key {key_id!r} in the config", file=sys.stderr)
        return 2
    token = sign(keys, key_id, args.feed, int(time.time() + args.ttl), args.ip)
    base = (args.base or f"http://127.0.0.1:{config.serve.port}").rstrip("/")
    print(f"{base}{PREFIX}{token}/{args.feed}/master.m3u8")
    print(f"viewer page: {base}/?feed={args.feed}&token={token}", file=sys.stderr)
    return 0


def _energy_day(args: argparse.Namespace) -> datetime.date | None:
    """--date, or today; None (after saying why) when it is not a date."""
    try:
        return datetime.date.fromisoformat(args.date) if args.date else datetime.date.today()
    except ValueError:
        print(f"orbitcast energy: --date {args.date!r} is not a date (YYYY-MM-DD)", file=sys.stderr)
        return None


def _energy_plan(args: argparse.Namespace) -> int:
    from orbitcast.energy.errors import EnergyError

    day = _energy_day(args)
    if day is None:
        return 2
    try:
        config = load_config(args.config)
        from orbitcast.energy.planner import plan_for_config
        from orbitcast.energy.report import plan_report

        plan = plan_for_config(config, day, args.soc)
    except (ConfigError, EnergyError) as err:
        print(f"orbitcast energy: {err}", file=sys.stderr)
        return 2
    print(plan_report(plan, args.config))
    if args.png:
        from orbitcast.energy.plot import plot_plan

        return _energy_png(args.png, lambda: plot_plan(plan, args.png))
    return 0


def _energy_png(png: str, plot: Callable[[], object]) -> int:
    """Write a plan's PNG with `plot` (which returns the path written): 0, or the exit code."""
    from orbitcast.energy.errors import EnergyError

    try:
        print(f"wrote {plot()}", file=sys.stderr)
    except EnergyError as err:
        print(f"orbitcast energy: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"orbitcast energy: cannot write {png}: {err.strerror or err}", file=sys.stderr)
        return 1
    return 0


def _energy_simulate(args: argparse.Namespace) -> int:
    import math

    from orbitcast.energy.errors import EnergyError

    day = _energy_day(args)
    if day is None:
        return 2
    if not (math.isfinite(args.minutes) and 0 <= args.minutes <= 24 * 60):
        print(f"orbitcast energy: --minutes {args.minutes} must be within 0..1440 (0: as fast as it can)", file=sys.stderr)
        return 2
    try:
        config = load_config(args.config)
        from orbitcast.energy.plot import plot_plan
        from orbitcast.energy.simulate import HOUR_HEADER, hour_line, simulate_for_config, summary_line

        rows = None
        if args.catalog is not None:
            from orbitcast.catalog import Catalog
            from orbitcast.store import Store

            try:
                rows = Catalog(Store(args.catalog)).read().select(["feed", "rendition", "duration", "joules"]).to_pylist()
            except (OSError, ValueError) as err:  # a bad URI, an unreadable folder or file (pyarrow's errors)
                print(f"orbitcast energy: cannot read the catalog at {args.catalog}: {err}", file=sys.stderr)
                return 2
        print(f"a day in {args.minutes:g} minutes: {day} at {args.config}", flush=True)
        print(HOUR_HEADER, flush=True)
        sim = simulate_for_config(config, day, minutes=args.minutes, soc=args.soc, catalog_rows=rows,
                                  on_hour=lambda h: print(hour_line(h), flush=True))
    except (ConfigError, EnergyError) as err:
        print(f"orbitcast energy: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(summary_line(sim))
    return _energy_png(args.png, lambda: plot_plan(sim.as_plan(), args.png, f"a simulated day {day} ({sim.load_source} load)"))


def _playtest(args: argparse.Namespace) -> int:
    from pathlib import Path

    import deployments

    try:
        from orbitcast.playtest import (BrowserSetup, PlaytestError, PlaytestOptions, ViewerOptions, find_chromium,
                                        player_config_json, run_playtest, table, viewer_page_config)
    except ImportError as err:
        print(f"orbitcast playtest: {err.name} is missing: pip install 'orbitcast[playtest]'", file=sys.stderr)
        return 2

    static = Path(deployments.__file__).parent / "static"  # the viewer page: its hls.js copy and settings
    quality = None
    if args.quality:
        from orbitcast.quality import QualityError, load_quality

        try:
            quality = load_quality(args.quality)
        except QualityError as err:
            print(f"orbitcast playtest: --quality {err}", file=sys.stderr)
            return 2
    browsers = args.browsers if args.browsers is not None else len([p for p in (args.profiles or "").split(",") if p.strip()])
    try:
        setup = None
        if browsers:
            config = viewer_page_config((static / "index.html").read_text())
            if args.player_config:
                config.update(player_config_json(args.player_config))
            setup = BrowserSetup(find_chromium(args.chromium), (static / "hls.min.js").read_text(), config)
        options = PlaytestOptions(
            url=args.url, seconds=args.seconds, viewers=args.viewers, browsers=browsers, profiles=args.profiles,
            out=Path(args.out), max_stall_ratio=args.max_stall_ratio, max_latency=args.max_latency, ramp=args.ramp,
            viewer=ViewerOptions(preload_hints=not args.no_preload_hints, log_requests=args.request_log),
            browser=setup, audio_kbps=args.audio_kbps, quality=quality,
            progress=lambda line: print(line, file=sys.stderr, flush=True))
        report = run_playtest(options)
    except PlaytestError as err:
        print(f"orbitcast playtest: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"orbitcast playtest: {err.strerror or err}: {err.filename or ''}", file=sys.stderr)
        return 2
    print(table(report))
    print(f"wrote {options.report_path} and {options.report_path.with_name(report['files']['html'])}", file=sys.stderr)
    return 0 if report["budget"]["passed"] else 1


def _quality(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from orbitcast.quality import QualityError, measure, text_table

    try:
        config = load_config(args.config)
        result = measure(config, args.feed, args.seconds, source=args.source, ffmpeg=args.ffmpeg,
                         keep=Path(args.keep) if args.keep else None,
                         progress=lambda line: print(line, file=sys.stderr, flush=True))
    except (ConfigError, QualityError) as err:
        print(f"orbitcast quality: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # --keep where nothing can be written, a full disk
        print(f"orbitcast quality: {err.strerror or err}: {err.filename or ''}", file=sys.stderr)
        return 2
    print(text_table(result))
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(result, indent=1))
        except OSError as err:
            print(f"orbitcast quality: cannot write {args.json}: {err.strerror or err}", file=sys.stderr)
            return 1
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orbitcast", description="Live video delivery on Ray: ladder, sealing, ledger, one clock, HLS.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="local Ray + Serve with a synthetic feed 'iss'; prints the viewer URL")
    demo.add_argument("--port", type=int, default=None, help="HTTP port (default: the config's, 8000)")
    demo.add_argument("--config", default=None, help="orbitcast.yaml (default: built-in demo settings)")
    demo.set_defaults(func=_demo)
    run = sub.add_parser("run", help="the live pipeline from a config, on the cluster at RAY_ADDRESS (same as python -m pipelines.live FILE)")
    run.add_argument("config", help="orbitcast.yaml")
    run.set_defaults(func=_run)
    from pipelines.verify_cli import add_arguments as verify_arguments

    verify = sub.add_parser("verify", help="check every segment of a live stream (or a recording) against the certification ledger")
    verify_arguments(verify)
    verify.set_defaults(func=_verify)
    keys = sub.add_parser("keys", help="Threema key pairs")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    new = keys_sub.add_parser("new", help="a new key pair: writes DIR/IDENTITY.key (mode 0600), prints public:<hex>")
    new.add_argument("identity", help="Threema identity, 8 characters, e.g. '*SUBSCR1'")
    new.add_argument("--dir", default=".", help="where to write the key file (default: here)")
    new.set_defaults(func=_keys_new)
    receive = sub.add_parser("receive", help="a subscriber: receives sealed segments, writes a playable fMP4")
    from pipelines.receive_cli import add_arguments as receive_arguments

    receive_arguments(receive)
    receive.set_defaults(func=_receive)
    export = sub.add_parser("export", help="a clip of a feed's archive as one MP4, by stream copy from the certified "
                                           "segments (orbitcast verify --recording proves it); docs/archive.md")
    from pipelines.export_cli import add_arguments as export_arguments

    export_arguments(export)
    export.set_defaults(func=_export)
    transcode = sub.add_parser("transcode", help="a recording through the ladder, chunk-parallel on the cluster at "
                                                 "RAY_ADDRESS, with progress: served at /vod/NAME/master.m3u8; "
                                                 "a job run again resumes (docs/vod.md)")
    from pipelines.vod_cli import add_arguments as transcode_arguments

    transcode_arguments(transcode)
    transcode.set_defaults(func=_transcode)
    token = sub.add_parser("token", help="a signed viewer URL for a feed (serve.viewer_auth in the config)")
    token.add_argument("feed")
    token.add_argument("--config", required=True, help="orbitcast.yaml with serve.viewer_auth.keys")
    token.add_argument("--ttl", type=float, default=3600, help="seconds it stays valid (default %(default)s)")
    token.add_argument("--ip", default=None, help="bind it to this client address")
    token.add_argument("--key", default=None, help="key id to sign with (default: the last one listed)")
    token.add_argument("--base", default=None, help="the viewer base URL (default: http://127.0.0.1:<serve.port>)")
    token.set_defaults(func=_token)
    energy = sub.add_parser("energy", help="energy accounting and the solar budget (docs/energy.md)")
    energy_sub = energy.add_subparsers(dest="energy_command", required=True)
    plan = energy_sub.add_parser("plan", help="the site's 24 h plan: PV, load, battery and ladder step per hour")
    plan.add_argument("--config", required=True, help="orbitcast.yaml with energy.site")
    plan.add_argument("--date", default=None, help="local date YYYY-MM-DD (default: today)")
    plan.add_argument("--soc", type=float, default=None, help="battery state of charge at midnight, 0..1 (default: energy.site.initial_soc)")
    plan.add_argument("--png", default=None, help="also plot it to this PNG")
    plan.set_defaults(func=_energy_plan)
    simulate = energy_sub.add_parser("simulate", help="a day in minutes: the planner re-planning every site hour on a "
                                                      "compressed clock; prints each hour, plots the day")
    simulate.add_argument("--config", required=True, help="orbitcast.yaml with energy.site")
    simulate.add_argument("--date", default=None, help="local date YYYY-MM-DD (default: today)")
    simulate.add_argument("--minutes", type=float, default=2.0,
                          help="wall minutes the 24 site hours take (default %(default)s; 0: as fast as it can)")
    simulate.add_argument("--soc", type=float, default=None, help="battery state of charge at midnight, 0..1 (default: energy.site.initial_soc)")
    simulate.add_argument("--catalog", default=None, metavar="STORE",
                          help="scale the load to the joules per media second measured in this store's catalog "
                               "(e.g. the config's store); default: the config's model")
    simulate.add_argument("--png", default="energy-day.png", help="the plot of the day (default %(default)s)")
    simulate.set_defaults(func=_energy_simulate)
    playtest = sub.add_parser("playtest", help="play a stream in browsers under device profiles and as simulated "
                                               "viewers; report startup, stalls, latency (docs/playtest.md)")
    playtest.add_argument("url", help="the multivariant (or media) playlist, e.g. http://127.0.0.1:8000/live/iss/master.m3u8")
    playtest.add_argument("--seconds", type=float, default=60.0, help="length of the run (default %(default)s)")
    playtest.add_argument("--viewers", type=int, default=0, help="simulated LL-HLS viewers (default %(default)s)")
    playtest.add_argument("--browsers", type=int, default=None,
                          help="hls.js players in headless Chromium (default: one per --profiles entry, else 0)")
    playtest.add_argument("--profiles", default=None,
                          help="device profiles for the browsers, in turn: console, 4g, 3g, stairs; NAME@RATE sets "
                               "the downlink (3g@600k) (default: all four)")
    playtest.add_argument("--out", default="playtest/report.json",
                          help="the JSON report; report.html, plots and P.1203 inputs go beside it (default %(default)s)")
    playtest.add_argument("--max-stall-ratio", type=float, default=None,
                          help="exit 1 when stalled / watched time over all players exceeds this")
    playtest.add_argument("--max-latency", type=float, default=None,
                          help="exit 1 when the p95 glass-to-glass latency (s) over all players exceeds this")
    playtest.add_argument("--ramp", type=float, default=None,
                          help="seconds over which the simulated viewers join (default: a quarter of the run, at most 30)")
    playtest.add_argument("--no-preload-hints", action="store_true",
                          help="simulated viewers do not ask for preload-hinted parts (as hls.js 1.7)")
    playtest.add_argument("--request-log", action="store_true",
                          help="also write every request of the simulated viewers to requests.jsonl")
    playtest.add_argument("--audio-kbps", type=float, default=128.0,
                          help="audio bitrate for the P.1203 inputs (playlists do not state it; default %(default)s)")
    playtest.add_argument("--chromium", default=None, help="the Chromium binary (default: chromium on PATH)")
    playtest.add_argument("--player-config", default=None, metavar="JSON",
                          help="hls.js settings over the viewer page's, for the browsers "
                               "(e.g. '{\"abrEwmaDefaultEstimate\": 5000000}': a first guess of 5 Mbit/s)")
    playtest.add_argument("--quality", default=None, metavar="FILE.json",
                          help="the JSON of `orbitcast quality --json`: a picture-quality table in the report, and "
                               "the VMAF each player watched")
    playtest.set_defaults(func=_playtest)
    quality = sub.add_parser("quality", help="VMAF, PSNR and SSIM of every rung against the feed's source, over a "
                                             "window encoded as the live pipeline does (docs/quality.md)")
    quality.add_argument("feed", help="a feed of the config, e.g. iss")
    quality.add_argument("--config", default=None, help="orbitcast.yaml (default: built-in demo settings)")
    quality.add_argument("--seconds", type=float, default=10.0, help="length of the window (default %(default)s)")
    quality.add_argument("--source", default=None, help="measure this source instead of the feed's (its ladder stays)")
    quality.add_argument("--json", default=None, help="also write the results here (for orbitcast playtest --quality)")
    quality.add_argument("--keep", default=None, help="keep the reference, the rung files and libvmaf's logs in this folder")
    quality.add_argument("--ffmpeg", default=None,
                         help="an ffmpeg with libvmaf (default: imageio-ffmpeg's, or $IMAGEIO_FFMPEG_EXE)")
    quality.set_defaults(func=_quality)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
