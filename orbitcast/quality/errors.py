"""The one error of orbitcast.quality: a measurement that cannot run as asked (an unknown feed,
an ffmpeg without libvmaf, a source that fails, a results file that is not one)."""


class QualityError(Exception):
    """The picture-quality measurement cannot go on; the message says why, in one line."""
