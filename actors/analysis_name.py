"""The name a feed's `AnalysisActor` is registered under. Apart from actors/analysis.py: the
edge and the packager look the analyser up by it, and importing that module (PyAV, Pillow,
0.13-0.15 s here) would lengthen their restart after a crash."""


def actor_name(feed: str) -> str:
    return f"analysis:{feed}"
