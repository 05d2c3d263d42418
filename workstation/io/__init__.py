"""Reading scans (DICOM, video, images, image folders) into one lazily decoded cine type.

No Qt here: the GUI, the CLI and the batch tools all read scans through this package.
"""
from workstation.io.cine import (DEFAULT_FPS, MAX_FRAMES, MAX_SIDE_PX, ArrayFrames, Cine, FrameSequence,
                                 StudyInfo, to_gray)
from workstation.io.dicom_write import write_multiframe_us
from workstation.io.loader import load

__all__ = ["ArrayFrames", "Cine", "DEFAULT_FPS", "FrameSequence", "MAX_FRAMES", "MAX_SIDE_PX", "StudyInfo", "load",
           "to_gray", "write_multiframe_us"]
